"""Where settings come from: defaults < config file(s) < environment < flags,
and what a mistake in each looks like (one line, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccfarm import config
from ccfarm.config import default_files, env_values, load
from ccfarm.daemon import main as daemon_main
from ccfarm.daemon.config import PRIVATE_NETWORKS, DaemonConfig
from ccfarm.errors import ConfigError
from ccfarm.scheduler import main as scheduler_main
from ccfarm.scheduler.config import SchedulerConfig


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /etc/ccfarm."""
    where = tmp_path / "etc"
    where.mkdir()
    monkeypatch.setattr(config, "SYSTEM_CONFIG_DIR", str(where))
    return where


def _load(argv: list[str], env: dict[str, str]) -> DaemonConfig:
    return load(DaemonConfig, daemon_main.parser(), argv, env)


def test_default_files_are_the_systems_then_the_users() -> None:
    assert default_files("ccfarmd", {"HOME": "/home/u"}) == [
        "/etc/ccfarm/ccfarmd.toml",
        "/home/u/.config/ccfarm/ccfarmd.toml",
    ]
    assert default_files("ccfarmd", {"HOME": "/h", "XDG_CONFIG_HOME": "/x"})[1] == (
        "/x/ccfarm/ccfarmd.toml"
    )
    assert default_files("ccfarm-scheduler", {}) == ["/etc/ccfarm/ccfarm-scheduler.toml"]


def test_defaults_then_files_then_environment_then_flags(etc: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "ccfarm").mkdir(parents=True)
    assert _load([], {"HOME": str(home)}) == DaemonConfig()  # no file: the declared defaults
    (etc / "ccfarmd.toml").write_text('[ccfarmd]\njobs = 3\nnice = 4\ncompiler-path = "/etc"\n')
    (home / ".config/ccfarm/ccfarmd.toml").write_text("jobs = 5\n")
    env = {"HOME": str(home)}
    got = _load([], env)
    assert (got.jobs, got.nice, got.compiler_path) == (5, 4, "/etc")  # the user's over /etc's
    got = _load([], {**env, "DISTCCD_PATH": "/env"})
    assert got.compiler_path == "/env"  # the environment over the files
    got = _load(["--compiler-path", "/flag", "-j", "7"], {**env, "DISTCCD_PATH": "/env"})
    assert (got.compiler_path, got.jobs, got.nice) == ("/flag", 7, 4)  # flags over all


def test_config_replaces_the_default_files(etc: Path, tmp_path: Path) -> None:
    (etc / "ccfarmd.toml").write_text("jobs = 3\nnice = 4\n")
    mine = tmp_path / "mine.toml"
    mine.write_text("jobs = 9\n")
    got = _load(["--config", str(mine)], {})
    assert (got.jobs, got.nice) == (9, 0)


def test_environment_values_are_converted_and_checked() -> None:
    assert env_values(DaemonConfig, {"DISTCCD_PATH": "/a:/b", "OTHER": "x"}) == {
        "compiler_path": "/a:/b"
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('jobs = "four"', "jobs must be an integer, not 'four'"),
        ('allow = "10.0.0.0/8"', "allow must be a list of strings, not '10.0.0.0/8'"),
        ("jobz = 4", "unknown key jobz (did you mean jobs?)"),
        ("jobs = ", "cannot read config file"),
        ("detach = 1", "detach must be true or false, not 1"),
        ('log-level = "loud"', "log-level must be one of debug, info"),
        ("[ccfarmd]\nport = 3.5", "port must be an integer, not 3.5"),
    ],
)
def test_a_mistake_in_a_file_is_one_line_and_status_101(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, says: str
) -> None:
    path = tmp_path / "d.toml"
    path.write_text(text + "\n")
    assert daemon_main.main(["--config", str(path)]) == 101
    err = capsys.readouterr().err
    assert err.startswith("ccfarmd: ") and str(path) in err and says in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_unreadable_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert scheduler_main.main(["--config", str(tmp_path / "absent.toml")]) == 101
    err = capsys.readouterr().err
    assert "cannot read config file" in err and "No such file" in err and err.count("\n") == 1
    assert scheduler_main.main(["--hosts-info", str(tmp_path)]) == 101  # a directory
    err = capsys.readouterr().err
    assert err.startswith(f"ccfarm-scheduler: cannot read {tmp_path}:") and err.count("\n") == 1


@pytest.mark.parametrize("bad", ["h:", "h:notaport", "h:99999", "[::1"])
def test_a_bad_scheduler_address_stops_ccfarmd_before_it_starts(
    capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    assert daemon_main.main(["--scheduler", bad, "--no-detach"]) == 101
    err = capsys.readouterr().err
    assert err.startswith(f"ccfarmd: bad address {bad!r}") and err.count("\n") == 1


def test_allow_private_adds_distccds_networks() -> None:
    got = daemon_main.load_config(["--allow-private", "-a", "1.2.3.4"])
    assert got.allow == ("1.2.3.4", *PRIVATE_NETWORKS)
    assert "10.0.0.0/8" in PRIVATE_NETWORKS and "192.168.0.0/16" in PRIVATE_NETWORKS
    assert daemon_main.load_config([]).allow == ()


def test_a_bad_allow_network_is_refused_at_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert daemon_main.main(["-a", "10.0.0.0/33", "--no-detach"]) == 101
    assert "bad --allow value '10.0.0.0/33'" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--zeroconf", "--inetd"])
def test_distccds_flags_ccfarmd_lacks_are_refused_with_distccds_status(
    capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        daemon_main.main([flag, "--allow", "10.0.0.0/8"])
    assert exited.value.code == 101
    err = capsys.readouterr().err
    assert err.startswith(f"ccfarmd: {flag} is not supported: ") and err.count("\n") == 1


def test_the_job_slots_default_to_the_cpus_this_host_may_use() -> None:
    from ccfarm.cgroups import CpuCgroup, cpu_slots, machine_cpus

    def group(limit: float | None) -> CpuCgroup:
        return CpuCgroup(2, limit, None)  # type: ignore[arg-type]

    assert cpu_slots(group(None)) == machine_cpus()
    assert cpu_slots(group(0.3)) == 1  # a fraction of a CPU is still one job
    assert cpu_slots(group(1.5)) == min(2, machine_cpus())
    assert cpu_slots(group(1000.0)) == machine_cpus()  # a quota above the affinity mask


def test_the_scheduler_is_not_a_background_service_unless_asked() -> None:
    assert not SchedulerConfig().detach
    assert scheduler_main.load_config(["--detach", "--pid-file", "/p"]).pid_file == "/p"


def test_jobs_out_of_range_and_bad_variables_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="--jobs must be between 1 and 1000"):
        daemon_main.load_config(["-j", "0"])
    assert env_values(SchedulerConfig, {"DISTCCD_PATH": "/x"}) == {}  # not the scheduler's


def test_debians_init_script_command_line_is_accepted() -> None:
    # what /etc/init.d/distcc passes (ZEROCONF off), the binary swapped
    argv = [
        "--pid-file=/var/run/distcc.pid", "--log-file=/var/log/distccd.log", "--daemon",
        "--allow", "10.0.0.0/8", "--allow", "127.0.0.1", "--listen", "127.0.0.1",
        "--nice", "10", "--jobs", "4",
    ]  # fmt: skip
    got = daemon_main.load_config(argv)
    assert (got.pid_file, got.log_file, got.allow) == (
        "/var/run/distcc.pid",
        "/var/log/distccd.log",
        ("10.0.0.0/8", "127.0.0.1"),
    )
    assert (got.listen, got.nice, got.jobs, got.detach) == ("127.0.0.1", 10, 4, True)
