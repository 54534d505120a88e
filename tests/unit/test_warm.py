"""The warm rooms' pure part: the script a waiting shell runs, what its output
means, and the pool's rules. The script is also run by a real shell here
(dash on Debian: the shell the rooms use), since what it means is the
shell's business."""

from __future__ import annotations

import subprocess

import pytest

from ccfarm.daemon.warm import (
    MARKER,
    PoolRules,
    backoff,
    compiler_env,
    job_script,
    pick,
    retire,
    returncode,
    shell_name,
    started_output,
)

ROOM_ENV = {"PATH": "/usr/bin:/bin", "TMPDIR": "/tmp/ccfarmd-x1", "LANG": "C"}


def _script(env: dict[str, str], room_env: dict[str, str] = ROOM_ENV, **kw: object) -> str:
    args = {"cwd": "/tmp/ccfarmd-x1", **kw}
    made = job_script("/usr/bin/env", [], env=env, room_env=room_env, **args)  # type: ignore[arg-type]
    assert made is not None
    return made.decode()


def _run(script: bytes, room_env: dict[str, str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    """The script run as a room runs it: /bin/sh -s, started with `room_env`."""
    return subprocess.run(
        ["/bin/sh", "-s"], input=script, env=room_env, cwd=cwd, capture_output=True, check=False
    )


# -- the script ----------------------------------------------------------------------


def test_the_script_is_one_group_ending_in_exec_with_no_input() -> None:
    script = _script(ROOM_ENV)
    assert script.startswith("{ cd -- /tmp/ccfarmd-x1 &&")
    assert script.rstrip().endswith("}")
    last = script.splitlines()[-2].strip()
    assert last == "exec /usr/bin/env </dev/null"
    assert "printf 'ccfarmd-exec\\n' &&" in script


def test_only_what_differs_is_set_and_the_shells_own_variables_always() -> None:
    env = {**ROOM_ENV, "LC_ALL": "fr_FR.UTF-8", "PWD": "/tmp/ccfarmd-x1"}
    del env["LANG"]
    script = _script(env)
    assert "export LC_ALL=fr_FR.UTF-8 PWD=/tmp/ccfarmd-x1" in script
    assert "unset LANG OLDPWD" in script
    assert "PATH=" not in script and "TMPDIR=" not in script


def test_values_and_arguments_are_quoted() -> None:
    env = {**ROOM_ENV, "SOURCE_DATE_EPOCH": "1; rm -rf / $(x) `y` 'z'\n"}
    made = job_script(
        "/usr/bin/gcc", ["-DX=$(id)", "a b", "'"], cwd="/tmp/a dir", env=env, room_env=ROOM_ENV
    )
    assert made is not None
    text = made.decode()
    assert "cd -- '/tmp/a dir'" in text
    assert "'-DX=$(id)' 'a b'" in text


def test_names_a_shell_cannot_set_mean_no_script() -> None:
    assert job_script("/bin/true", [], cwd="/", env={"A-B": "1"}, room_env={}) is None
    assert job_script("/bin/true", [], cwd="/", env={"1A": "1"}, room_env={}) is None
    assert job_script("/bin/true", [], cwd="/", env={"A": "x\0y"}, room_env={}) is None
    assert job_script("/bin/true", ["a\0"], cwd="/", env={}, room_env={}) is None
    # a bad name only the room had was dropped by its shell: nothing to do
    assert job_script("/bin/true", [], cwd="/", env={}, room_env={"A-B": "1"}) is not None


@pytest.mark.parametrize("name", ["A", "_", "a_1", "LC_ALL", "_x9"])
def test_shell_names(name: str) -> None:
    assert shell_name(name)


@pytest.mark.parametrize("name", ["", "1", "A-B", "A B", "A=B", "é", "A\n"])
def test_not_shell_names(name: str) -> None:
    assert not shell_name(name)


def test_the_compiler_gets_exactly_the_jobs_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Run by the real shell: the program's environment is `env`, whatever the
    room's was and whatever the shell sets itself (PWD, OLDPWD, IFS, PPID...)."""
    room_env = {
        **ROOM_ENV,
        "PWD": "/elsewhere",
        "OLDPWD": "/old",
        "IFS": "x",
        "PPID": "1",
        "PS4": "+",
        "GONE": "1",
        "A-B": "dropped by the shell",
    }
    env = {
        "PATH": "/usr/bin:/bin",
        "TMPDIR": "/tmp/ccfarmd-x1",
        "LANG": "de_DE.UTF-8",
        "IFS": "y z",
        "PPID": "7",
        "PWD": str(tmp_path),
        "NEW": "a'b\"c$d\ne",
    }
    made = job_script("/usr/bin/env", ["-0"], cwd=str(tmp_path), env=env, room_env=room_env)
    assert made is not None
    done = _run(made, room_env, "/")
    assert done.returncode == 0, done.stderr
    out = started_output(done.stdout)
    assert out is not None
    got = dict(item.split("=", 1) for item in out.decode().split("\0") if item)
    assert got == env


def test_the_program_runs_in_cwd_with_no_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    made = job_script(
        "/bin/sh", ["-c", "pwd; cat; echo end"], cwd=str(tmp_path), env={}, room_env={}
    )
    assert made is not None
    done = _run(made, {}, "/")
    assert started_output(done.stdout) == f"{tmp_path}\nend\n".encode()


def test_a_failing_step_runs_nothing_and_prints_no_marker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "ran"
    made = job_script(
        "/bin/sh", ["-c", f"touch {marker}"], cwd=str(tmp_path / "missing"), env={}, room_env={}
    )
    assert made is not None
    done = _run(made, {}, "/")
    assert started_output(done.stdout) is None
    assert not marker.exists()


def test_a_cut_script_runs_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "ran"
    made = job_script("/bin/sh", ["-c", f"touch {marker}"], cwd=str(tmp_path), env={}, room_env={})
    assert made is not None
    for cut in (len(made) // 3, len(made) - 3):
        done = _run(made[:cut], {}, "/")
        assert started_output(done.stdout) is None
        assert not marker.exists()
    assert started_output(_run(made, {}, "/").stdout) == b""
    assert marker.exists()  # (the whole script does run it)


def test_sandboxed_compilers_get_pwd_of_their_directory() -> None:
    assert compiler_env({"A": "1", "PWD": "/x"}, "/j", sandboxed=True) == {"A": "1", "PWD": "/j"}
    assert compiler_env({"A": "1", "PWD": "/x"}, "/j", sandboxed=False) == {"A": "1", "PWD": "/x"}


# -- output and status ---------------------------------------------------------------


def test_started_output_strips_one_marker() -> None:
    assert started_output(MARKER + b"out") == b"out"
    assert started_output(MARKER + MARKER) == MARKER
    assert started_output(b"") is None
    assert started_output(b"bwrap: failed\n") is None
    assert started_output(MARKER[:-1]) is None


def test_returncode_of_a_sandboxed_compiler_killed_by_a_signal() -> None:
    assert returncode(128 + 9, sandboxed=True) == -9
    assert returncode(128 + 24, sandboxed=True) == -24
    assert returncode(1, sandboxed=True) == 1
    assert returncode(128, sandboxed=True) == 128
    assert returncode(128 + 65, sandboxed=True) == 128 + 65
    assert returncode(None, sandboxed=True) is None
    assert returncode(128 + 9, sandboxed=False) == 137
    assert returncode(-9, sandboxed=False) == -9


# -- the pool ------------------------------------------------------------------------


def test_the_pool_fills_to_its_size() -> None:
    rules = PoolRules(size=2, jobs=2)
    assert rules.to_start(0, 0, 0, draining=False) == 2
    assert rules.to_start(1, 0, 0, draining=False) == 1
    assert rules.to_start(1, 1, 0, draining=False) == 0
    assert rules.to_start(2, 0, 2, draining=False) == 0
    assert rules.to_start(0, 0, 2, draining=False) == 2  # two jobs running: two more ready


def test_rooms_beyond_the_slots_wait_for_the_handed_out_ones() -> None:
    rules = PoolRules(size=2, jobs=2)
    assert rules.to_start(0, 0, 3, draining=False) == 1  # (at most size + jobs in all)
    assert rules.to_start(0, 0, 4, draining=False) == 0
    assert rules.to_start(0, 0, 9, draining=False) == 0


def test_no_rooms_once_draining_or_with_no_pool() -> None:
    assert PoolRules(size=4, jobs=2).to_start(0, 0, 0, draining=True) == 0
    assert PoolRules(size=0, jobs=2).to_start(0, 0, 0, draining=False) == 0


def test_connections_beyond_the_slots_hold_no_room() -> None:
    rules = PoolRules(size=2, jobs=2)
    assert rules.may_attach(0) and rules.may_attach(1)
    assert not rules.may_attach(2)
    assert not PoolRules(size=2, jobs=0).may_attach(0)


def test_a_job_takes_the_oldest_room_with_its_binds() -> None:
    ready = [("/opt/a",), (), ("/opt/b",), ()]
    assert pick(ready, ()) == 1
    assert pick(ready, ("/opt/b",)) == 2
    assert pick(ready, ("/opt/c",)) is None
    assert pick([], ()) is None


def test_surplus_rooms_for_other_compilers_retire() -> None:
    ready = [("/opt/a",), (), ("/opt/a",), ()]
    assert retire(ready, (), size=4) == []
    assert retire(ready, (), size=3) == [0]
    assert retire(ready, (), size=2) == [0, 2]
    assert retire(ready, (), size=0) == [0, 2]  # the latest job's kind stays
    assert retire(ready, ("/opt/a",), size=3) == [1]


def test_backoff_grows_and_is_capped() -> None:
    assert backoff(0) == 0.0
    assert backoff(1) == 0.5
    assert backoff(2) == 1.0
    assert backoff(3) == 2.0
    assert backoff(30) == 30.0
    assert [backoff(n) for n in range(1, 12)] == sorted(backoff(n) for n in range(1, 12))
