"""Config declared once: flags, TOML keys and --help generated from the fields.

The flag sets below were listed from the hand-written parsers this replaced,
so a spelling that scripts, tests or operators use cannot silently vanish.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from ccfarm.addresses import DAEMON_PORT, SCHEDULER_PORT
from ccfarm.config import build, command_line, file_values, group, options, read_toml, setting
from ccfarm.daemon import main as daemon_main
from ccfarm.daemon.config import DaemonConfig
from ccfarm.errors import ConfigError
from ccfarm.scheduler import main as scheduler_main
from ccfarm.scheduler.config import SchedulerConfig
from ccfarm.scheduler.policy import Policy

# fmt: off
OLD_DAEMON_FLAGS = {
    "-h", "--help", "--version", "--config", "-p", "--port", "--listen", "-a", "--allow",
    "-j", "--jobs", "--queue", "-N", "--nice", "--job-lifetime", "--io-timeout", "--compiler",
    "--allow-compiler", "--compiler-path", "--tmpdir", "--scheduler", "--advertise", "--speed",
    "--heartbeat", "--desktop-activity", "--desktop-idle", "--daemon", "--no-detach",
    "--log-file", "--log-stderr", "--log-level", "-P", "--pid-file",
}
OLD_SCHEDULER_FLAGS = {
    "-h", "--help", "--version", "--config", "--port", "--listen", "--hosts-info",
    "--tier-ratio", "--load-low", "--load-high", "--desktop-slots", "--host-timeout",
    "--lease-timeout", "--max-wait", "--no-prefer-fast", "--patience", "--usage-half-life",
    "--express", "--express-min-cost", "--log-file", "--log-level",
}
#: settings that were TOML-only gained a flag; booleans gained their other half
NEW_DAEMON_FLAGS = {"--drain-timeout", "--detach", "--no-log-stderr"}
#: the job sandbox and the daemon's user
NEW_DAEMON_FLAGS |= {
    "--user", "--sandbox", "--sandbox-path", "--limit-cpu", "--limit-memory",
    "--limit-file-size", "--limit-processes", "--warm-pool",
}
NEW_SCHEDULER_FLAGS = {"--io-timeout", "--prefer-fast", "--no-express", "--local-margin"}
#: the farm secret
NEW_DAEMON_FLAGS |= {"--secret-file", "--distcc-clients", "--no-distcc-clients"}
NEW_SCHEDULER_FLAGS |= {"--secret-file"}
#: the health and speed-evidence knobs, new settings
NEW_SCHEDULER_FLAGS |= {
    "--quarantine", "--quarantine-max", "--probation-slots",
    "--speed-evidence", "--no-speed-evidence", "--speed-evidence-jobs", "--speed-tolerance",
}
#: distccd's flags, accepted (or refused with distccd's status) since
DISTCCD_FLAGS = {
    "--allow-private", "--no-allow-private", "--stats", "--no-stats", "--stats-port",
    "--zeroconf", "--inetd",
}
#: the scheduler as a service
SCHEDULER_SERVICE_FLAGS = {"--detach", "--no-detach", "--pid-file"}
#: bounds on connections, time and memory (docs/security.md, "Limits and load")
NEW_DAEMON_FLAGS |= {
    "--idle-timeout", "--request-timeout", "--max-connections", "--max-client-connections",
    "--body-memory", "--max-body",
}
NEW_SCHEDULER_FLAGS |= {
    "--idle-timeout", "--max-connections", "--max-client-connections", "--max-waiting",
    "--max-client-waiting",
}
#: TLS on the port (and the host agent's connections)
TLS_FLAGS = {"--tls-cert", "--tls-key", "--tls-ca", "--tls-require", "--no-tls-require"}
NEW_DAEMON_FLAGS |= TLS_FLAGS
NEW_SCHEDULER_FLAGS |= TLS_FLAGS
#: where ccfarmd keeps its speed probe across restarts
NEW_DAEMON_FLAGS |= {"--state-dir"}

DAEMON_ARGV = [
    "-p", "4000", "--listen", "127.0.0.2", "-a", "10.0.0.0/8", "--allow", "127.0.0.0/8",
    "-j", "3", "--queue", "7", "-N", "5", "--job-lifetime", "30", "--io-timeout", "9",
    "--compiler", "gcc", "--compiler", "cc", "--allow-compiler", "tcc",
    "--compiler-path", "/a:/b", "--tmpdir", "/t", "--scheduler", "h1", "--scheduler", "h2:5",
    "--advertise", "1.2.3.4", "--speed", "2.5", "--heartbeat", "0.5",
    "--desktop-activity", "file:/x", "--desktop-idle", "10", "--daemon", "--no-detach",
    "--log-file", "/l", "--log-stderr", "--log-level", "notice", "-P", "/p",
]
SCHEDULER_ARGV = [
    "--port", "4001", "--listen", "127.0.0.3", "--hosts-info", "/h", "--tier-ratio", "1.5",
    "--load-low", "100", "--load-high", "200", "--desktop-slots", "1", "--host-timeout", "2",
    "--lease-timeout", "50", "--max-wait", "3", "--no-prefer-fast", "--patience", "4",
    "--usage-half-life", "6", "--express", "--express-min-cost", "0",
    "--log-file", "/l", "--log-level", "debug",
]
# fmt: on


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "farm.toml"
    path.write_text(text)
    return str(path)


# -- the old command lines ---------------------------------------------------


@pytest.mark.parametrize(
    ("parser", "old", "new"),
    [
        (daemon_main.parser, OLD_DAEMON_FLAGS, NEW_DAEMON_FLAGS | DISTCCD_FLAGS),
        (scheduler_main.parser, OLD_SCHEDULER_FLAGS, NEW_SCHEDULER_FLAGS | SCHEDULER_SERVICE_FLAGS),
    ],
)
def test_every_old_flag_is_still_accepted(
    parser: Callable[[], argparse.ArgumentParser], old: set[str], new: set[str]
) -> None:
    assert _flags(parser()) == old | new


def test_the_daemons_full_command_line_parses_as_before() -> None:
    assert daemon_main.load_config(DAEMON_ARGV) == DaemonConfig(
        port=4000,
        listen="127.0.0.2",
        allow=("10.0.0.0/8", "127.0.0.0/8"),
        jobs=3,
        queue=7,
        nice=5,
        job_lifetime=30.0,
        io_timeout=9.0,
        compilers=("gcc", "cc"),
        allow_compiler=("tcc",),
        compiler_path="/a:/b",
        tmpdir="/t",
        scheduler=("h1", "h2:5"),
        advertise="1.2.3.4",
        speed=2.5,
        heartbeat=0.5,
        desktop_activity="file:/x",
        desktop_idle=10.0,
        detach=False,
        log_file="/l",
        log_stderr=True,
        log_level="notice",
        pid_file="/p",
    )


def test_the_schedulers_full_command_line_parses_as_before() -> None:
    policy = Policy(
        tier_ratio=1.5,
        load_low=100.0,
        load_high=200.0,
        desktop_slots=1,
        host_timeout=2.0,
        lease_timeout=50.0,
        max_wait=3.0,
        prefer_fast=False,
        patience=4.0,
        usage_half_life=6.0,
        express=True,
        express_min_cost=0.0,
    )
    assert scheduler_main.load_config(SCHEDULER_ARGV) == SchedulerConfig(
        port=4001,
        listen="127.0.0.3",
        hosts_info="/h",
        policy=policy,
        log_file="/l",
        log_level="debug",
    )


def test_no_flags_means_the_declared_defaults() -> None:
    assert daemon_main.load_config([]) == DaemonConfig()
    assert scheduler_main.load_config([]).policy == Policy()
    assert (DaemonConfig().port, SchedulerConfig().port) == (DAEMON_PORT, SCHEDULER_PORT)
    assert DaemonConfig().detach and DaemonConfig().queue_limit == 4 * DaemonConfig().jobs


def test_policy_keeps_its_names_defaults_and_keywords() -> None:
    assert (Policy.tier_ratio, Policy.max_wait, Policy.express) == (1.25, 60.0, False)
    policy = Policy(patience=5, max_wait=60, express=True)
    assert policy.express and policy == Policy(express=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_wait = 1  # type: ignore[misc]


# -- what is generated from the fields -----------------------------------------


@pytest.mark.parametrize("config", [DaemonConfig, SchedulerConfig])
def test_every_setting_has_a_flag_a_key_and_its_default_in_the_help(config: type) -> None:
    parser = command_line(config, "prog", "")
    by_dest = {action.dest: action for action in parser._actions}
    for option in options(config):
        action = by_dest[option.dest]
        assert action.option_strings[: len(option.flags)] == list(option.flags)
        assert option.name in option.keys
        env = f"; env {option.spec.env}" if option.spec.env else ""
        assert f"(default: {option.shown_default()}{env})" in (action.help or "")
    text = parser.format_help()
    assert all(flag in text for option in options(config) for flag in option.flags)


def test_the_ports_in_the_help_come_from_the_constants() -> None:
    assert f"(default: {DAEMON_PORT})" in daemon_main.parser().format_help()
    assert f"(default: {SCHEDULER_PORT})" in scheduler_main.parser().format_help()


def test_policy_knobs_are_flattened_under_their_own_names() -> None:
    names = {o.name for o in options(SchedulerConfig) if o.path[0] == "policy"}
    assert names == {f.name for f in dataclasses.fields(Policy)}
    assert "scheduling policy" in scheduler_main.parser().format_help()
    config = scheduler_main.load_config(["--load-low", "100", "--max-wait", "2"])
    assert (config.policy.load_low, config.policy.max_wait) == (100.0, 2.0)


@dataclasses.dataclass(frozen=True)
class _Bare:
    port: int = 1


@dataclasses.dataclass(frozen=True)
class _Inner:
    port: int = setting(1, "inner port")


@dataclasses.dataclass(frozen=True)
class _Clash:
    port: int = setting(2, "outer port")
    inner: _Inner = group(_Inner, "inner")


@dataclasses.dataclass(frozen=True)
class _Odd:
    ratio: complex = setting(1j, "no flag type for this")


def test_a_field_without_setting_or_sharing_a_key_is_a_declaration_error() -> None:
    with pytest.raises(TypeError, match="no flag or key"):
        options(_Odd)
    with pytest.raises(TypeError, match="without setting"):
        options(_Bare)
    with pytest.raises(TypeError, match="share port"):
        options(_Clash)


# -- TOML ----------------------------------------------------------------------


def test_a_file_sets_what_no_flag_gives_and_flags_win(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        '[ccfarmd]\njobs = 4\nnice = 3\nallow = ["10.0.0.0/8"]\nlog-file = "d.log"\n'
        'compiler = ["gcc"]\nheartbeat = 1\ndetach = false\n',
    )
    config = daemon_main.load_config(["--config", path, "-j", "2", "--allow", "127.0.0.1"])
    assert (config.jobs, config.nice, config.allow) == (2, 3, ("127.0.0.1",))
    assert (config.log_file, config.compilers, config.heartbeat) == ("d.log", ("gcc",), 1.0)
    assert config.port == DAEMON_PORT and not config.detach
    assert daemon_main.load_config(["--config", path, "--detach"]).detach


def test_top_level_keys_when_the_file_has_no_table_for_the_program(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'load_low = 0.5\nexpress = true\n[ccfarmd]\njobs = "not mine"\n')
    config = scheduler_main.load_config(["--config", path])
    assert config.policy.load_low == 0.5 and config.policy.express
    assert not scheduler_main.load_config(["--config", path, "--no-express"]).policy.express


def test_booleans_from_a_flag_alone() -> None:
    assert scheduler_main.load_config(["--express"]).policy.express
    assert not scheduler_main.load_config(["--no-prefer-fast"]).policy.prefer_fast
    assert daemon_main.load_config(["--log-stderr"]).log_stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('jobs = "four"', "jobs must be an integer, not 'four'"),
        ("jobs = 4.5", "jobs must be an integer"),
        ("jobs = true", "jobs must be an integer"),
        ("speed = true", "speed must be a number"),
        ("detach = 0", "detach must be true or false"),
        ('allow = "10.0.0.0/8"', "allow must be a list of strings, not '10.0.0.0/8'"),
        ('allow = ["10.0.0.0/8", 8]', "allow must be a list of strings"),
        ('log_level = "loud"', "log_level must be one of debug, info, notice"),
        ("jobz = 4", "unknown key jobz (did you mean jobs?)"),
        ("config = 'x'\nfoo = 1", "unknown keys config, foo"),
        ('log-file = "a"\nlog_file = "b"', "log_file and log-file are the same setting"),
        ("queue = {limit = 3}", "queue must be an integer"),
        ("limits = {jobs = 3}", "unknown key limits"),
    ],
)
def test_a_bad_value_is_a_one_line_error_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _toml(tmp_path, f"[ccfarmd]\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        read_toml(DaemonConfig, path, "ccfarmd")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_an_unreadable_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_toml(DaemonConfig, str(tmp_path / "absent.toml"), "ccfarmd")
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_toml(DaemonConfig, _toml(tmp_path, "jobs = = 3"), "ccfarmd")
    with pytest.raises(ConfigError, match=r"\[ccfarmd\] must be a table"):
        read_toml(DaemonConfig, _toml(tmp_path, "ccfarmd = 3"), "ccfarmd")


def test_scheduler_keys_include_the_policys(tmp_path: Path) -> None:
    values = file_values(SchedulerConfig, {"max-wait": 2, "port": 1, "log_level": "error"})
    config = build(SchedulerConfig, values)
    assert (config.policy.max_wait, config.port, config.log_level) == (2.0, 1, "error")
    with pytest.raises(ConfigError, match="log_level must be one of"):
        file_values(SchedulerConfig, {"log_level": "notice"})


@pytest.mark.parametrize(
    ("main", "message"),
    [
        (daemon_main, "ccfarmd: {path}: jobs must be an integer, not 'four'\n"),
        (scheduler_main, "ccfarm-scheduler: {path}: load_low must be a number, not 'low'\n"),
    ],
)
def test_the_programs_print_the_error_and_exit_101(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], main: ModuleType, message: str
) -> None:
    path = _toml(tmp_path, '[ccfarmd]\njobs = "four"\n[ccfarm-scheduler]\nload_low = "low"\n')
    assert main.main(["--config", path]) == 101
    assert capsys.readouterr().err == message.format(path=path)


def test_the_daemons_job_count_is_still_bounded() -> None:
    with pytest.raises(ConfigError, match="--jobs must be between 1 and 1000"):
        daemon_main.load_config(["-j", "0"])
