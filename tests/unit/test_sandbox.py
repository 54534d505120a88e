"""The job sandbox's pure part: the bwrap command line, the limits, the refusal,
and the choice of the daemon's account."""

from __future__ import annotations

import pwd
import resource

import pytest

from ccfarm.daemon.sandbox import (
    REAPER,
    HostLayout,
    JobLimits,
    Sandbox,
    compiler_dirs,
    refusal,
)
from ccfarm.daemon.user import DEFAULT_USERS, choose_account
from ccfarm.errors import ConfigError
from ccfarm.protocol import CCFARM, CCFARM_CPP, LZO, PLAIN, PUMP

MERGED_USR = HostLayout(
    top=(("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64"), ("/sbin", "usr/sbin")),
    readonly=("/usr", "/etc/ld.so.cache", "/etc/alternatives"),
)
SANDBOX = Sandbox("/usr/bin/bwrap", MERGED_USR)


def _pairs(argv: list[str], option: str, arity: int = 2) -> list[tuple[str, ...]]:
    """The arguments of every `option` in `argv`."""
    return [tuple(argv[i + 1 : i + 1 + arity]) for i, a in enumerate(argv) if a == option]


def _command(**kwargs: object) -> list[str]:
    args = {"job_dir": "/tmp/ccfarmd-x1", "cwd": "/tmp/ccfarmd-x1", **kwargs}
    return SANDBOX.command("/usr/bin/gcc", ["-c", "in.i", "-o", "out.o"], **args)  # type: ignore[arg-type]


def test_the_compiler_runs_last_after_a_separator() -> None:
    argv = _command()
    assert argv[0] == "/usr/bin/bwrap"
    end = argv.index("--")
    # run by a shell, the sandbox's first process (`REAPER`), as its child
    assert argv[end + 1 :] == [*REAPER, "/usr/bin/gcc", "-c", "in.i", "-o", "out.o"]


def test_namespaces_capabilities_and_lifetime() -> None:
    options = _command()[: _command().index("--")]
    assert "--unshare-all" in options  # user, mount, pid, net, ipc, uts, cgroup
    assert "--share-net" not in options  # no network
    assert "--die-with-parent" in options
    assert "--as-pid-1" in options  # bwrap's reaper inside would hide the compiler's CPU
    assert REAPER[:3] == ("/bin/sh", "-c", '"$@"; exit $?')  # not PID 1 itself: signals work
    assert _pairs(options, "--cap-drop", 1) == [("ALL",)]
    assert ("/dev",) in _pairs(options, "--dev", 1) and ("/proc",) in _pairs(options, "--proc", 1)


def test_only_the_job_directory_is_writable() -> None:
    argv = _command()
    assert _pairs(argv, "--bind") == [("/tmp/ccfarmd-x1", "/tmp/ccfarmd-x1")]
    assert _pairs(argv, "--dev-bind") == []
    # the root becomes read-only after everything is mounted, before the compiler runs
    assert _pairs(argv, "--remount-ro", 1) == [("/",)]
    assert argv.index("--remount-ro") > argv.index("--bind")
    assert _pairs(argv, "--chdir", 1) == [("/tmp/ccfarmd-x1",)]


def test_the_system_is_read_only_and_links_are_rebuilt() -> None:
    argv = _command()
    assert _pairs(argv, "--ro-bind") == [
        ("/usr", "/usr"),
        ("/etc/ld.so.cache", "/etc/ld.so.cache"),
        ("/etc/alternatives", "/etc/alternatives"),
    ]
    assert ("usr/bin", "/bin") in _pairs(argv, "--symlink")
    assert ("usr/lib64", "/lib64") in _pairs(argv, "--symlink")


def test_real_top_level_directories_are_mounted_read_only() -> None:
    layout = HostLayout(top=(("/bin", ""), ("/lib", "")), readonly=("/usr",))
    argv = Sandbox("bwrap", layout).command("/usr/bin/cc", [], job_dir="/j", cwd="/j")
    assert _pairs(argv, "--ro-bind") == [("/bin", "/bin"), ("/lib", "/lib"), ("/usr", "/usr")]
    assert _pairs(argv, "--symlink") == []


def test_a_compiler_outside_usr_gets_its_installation() -> None:
    dirs = compiler_dirs("/opt/gcc-13/bin/gcc", "/opt/gcc-13/bin/gcc-13.2")
    assert dirs == ("/opt/gcc-13",)
    argv = _command(compiler_dirs=dirs)
    assert ("/opt/gcc-13", "/opt/gcc-13") in _pairs(argv, "--ro-bind")
    assert argv.index("--ro-bind", argv.index("/etc/alternatives")) < argv.index("--bind")


def test_compiler_directories_under_usr_add_nothing() -> None:
    dirs = compiler_dirs("/usr/bin/gcc", "/usr/bin/x86_64-linux-gnu-gcc-12")
    assert dirs == ("/usr",)
    assert _pairs(_command(compiler_dirs=dirs), "--ro-bind") == _pairs(_command(), "--ro-bind")


def test_a_link_and_its_target_in_different_places() -> None:
    dirs = compiler_dirs("/home/ci/tools/gcc", "/opt/cross/bin/arm-gcc")
    assert dirs == ("/home/ci/tools", "/opt/cross")


def test_the_root_and_the_job_directory_never_become_read_only_mounts() -> None:
    assert compiler_dirs("/gcc", "/gcc") == ()
    assert compiler_dirs("/bin/gcc", "/bin/gcc") == ()  # a bin directory's parent: the root
    # a compiler in a directory above the job's would show every other job
    argv = _command(compiler_dirs=("/tmp",))
    assert ("/tmp", "/tmp") not in _pairs(argv, "--ro-bind")


def test_extra_paths_are_mounted_once() -> None:
    layout = HostLayout(top=(), readonly=("/usr", "/opt/sdk"))
    argv = Sandbox("bwrap", layout).command(
        "/opt/sdk/bin/cc", [], job_dir="/j", cwd="/j", compiler_dirs=("/opt/sdk", "/opt/sdk/x")
    )
    assert _pairs(argv, "--ro-bind") == [("/usr", "/usr"), ("/opt/sdk", "/opt/sdk")]


def test_the_working_directory_is_the_one_given() -> None:
    argv = _command(cwd="/tmp/ccfarmd-x1/root/home/me/src")
    assert _pairs(argv, "--chdir", 1) == [("/tmp/ccfarmd-x1/root/home/me/src",)]


# -- limits -------------------------------------------------------------------------


def test_default_limits() -> None:
    limits = dict((r, (soft, hard)) for r, soft, hard in JobLimits().rlimits())
    assert limits == {
        resource.RLIMIT_CPU: (300, 305),
        resource.RLIMIT_AS: (4096 << 20, 4096 << 20),
        resource.RLIMIT_FSIZE: (1024 << 20, 1024 << 20),
        resource.RLIMIT_NPROC: (256, 256),
    }


def test_limits_given_and_zero_for_none() -> None:
    limits = JobLimits(cpu_seconds=2, memory_mib=0, file_size_mib=1, processes=0).rlimits()
    assert limits == (
        (resource.RLIMIT_CPU, 2, 7),
        (resource.RLIMIT_FSIZE, 1 << 20, 1 << 20),
    )
    assert JobLimits(0, 0, 0, 0).rlimits() == ()


def test_the_config_defaults_are_the_limits_defaults() -> None:
    from ccfarm.daemon.config import DaemonConfig

    config = DaemonConfig()
    assert (
        JobLimits(
            config.limit_cpu, config.limit_memory, config.limit_file_size, config.limit_processes
        )
        == JobLimits()
    )
    assert config.sandbox == "auto" and config.job_lifetime == 300.0


# -- refusal without a sandbox ---------------------------------------------------------


@pytest.mark.parametrize("version", [PLAIN, LZO, CCFARM_CPP])
def test_preprocessed_jobs_are_always_served(version: int) -> None:
    assert refusal(version, serves_files=False) is None
    assert refusal(version, serves_files=True) is None


@pytest.mark.parametrize("version", [PUMP, CCFARM])
def test_jobs_that_ship_files_need_the_sandbox(version: int) -> None:
    why = refusal(version, serves_files=False)
    assert why is not None and "sandbox" in why
    assert refusal(version, serves_files=True) is None


# -- the daemon's account ---------------------------------------------------------------


def _account(name: str, uid: int, gid: int | None = None) -> pwd.struct_passwd:
    gid = uid if gid is None else gid
    return pwd.struct_passwd((name, "x", uid, gid, "", "/nonexistent", "/usr/sbin/nologin"))


def _lookup(*accounts: pwd.struct_passwd):  # type: ignore[no-untyped-def]
    table = {a.pw_name: a for a in accounts}

    def lookup(name: str) -> pwd.struct_passwd:
        return table[name]

    return lookup


def test_the_first_default_account_that_exists() -> None:
    assert DEFAULT_USERS == ("ccfarmd", "distcc", "nobody")
    nobody = _account("nobody", 65534)
    distcc = _account("distcc", 120)
    assert choose_account("", _lookup(nobody)) == nobody
    assert choose_account("", _lookup(nobody, distcc)) == distcc
    ccfarmd = _account("ccfarmd", 121)
    assert choose_account("", _lookup(nobody, distcc, ccfarmd)) == ccfarmd


def test_the_account_asked_for() -> None:
    builder = _account("builder", 1500)
    assert choose_account("builder", _lookup(builder, _account("ccfarmd", 121))) == builder
    with pytest.raises(ConfigError, match="no such user"):
        choose_account("ghost", _lookup(builder))


def test_never_root() -> None:
    with pytest.raises(ConfigError, match="root"):
        choose_account("root", _lookup(_account("root", 0)))
    with pytest.raises(ConfigError, match="root"):
        choose_account("", _lookup(_account("ccfarmd", 0)))  # a default name that is root
    with pytest.raises(ConfigError, match="root"):
        choose_account("wheel", _lookup(_account("wheel", 1000, 0)))  # root's group


def test_no_account_at_all() -> None:
    with pytest.raises(ConfigError, match="create one or give --user"):
        choose_account("", _lookup())
