"""The client's own machine in the farm, with real processes: a scheduler, ccfarmd
hosts and the `ccfarm` wrapper. A job compiles here at once when a local slot is
free and no free host beats this machine; a waiting job takes a local slot that
frees first; every job says in one verbose line where it ran and why."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.client.hosts import slots
from ccfarm.client.hosts.speed import local_speed, speed_file
from ccfarm.client.job.lease import Lease, request_lease
from tests.conftest import (
    ccfarm_exe,
    ctl,
    free_port,
    local_slots_held,
    next_address,
    run,
    wait_for,
)

SOURCE = "int answer(int x) { return x * 42; }\n"


def _farm(scheduler, ccfarmd, speeds: list[float]) -> tuple[str, list]:  # type: ignore[no-untyped-def]
    sched = scheduler("--load-low", "100", "--load-high", "200")
    daemons = [
        ccfarmd(jobs=1, extra=("--scheduler", sched, "--speed", str(s), "--heartbeat", "0.5"))
        for s in speeds
    ]
    wait_for(lambda: len(ctl(sched, "hosts")) == len(speeds), timeout=20)  # type: ignore[arg-type]
    return sched, daemons


def _address(sched: str) -> tuple[str, int]:
    address, _, port = sched.rpartition(":")
    return address, int(port)


@pytest.fixture
def leases() -> Iterator[list[Lease]]:
    held: list[Lease] = []
    yield held
    for lease in held:
        lease.release()


def _hold_every_slot(sched: str, count: int, held: list[Lease]) -> None:
    """Another build's leases on every host slot (kept until the test ends)."""
    for _ in range(count):
        got = request_lease([_address(sched)], None, client="other-build/bob", wait=5)
        assert isinstance(got, Lease)
        held.append(got)


def _reference(tmp_path: Path, name: str = "a.c") -> bytes:
    run(["gcc", "-O2", "-c", name, "-o", "ref.o"], tmp_path)
    return (tmp_path / "ref.o").read_bytes()


def _verbose_lines(stderr: bytes) -> list[bytes]:
    return [ln for ln in stderr.splitlines() if ln.startswith(b"ccfarm: ")]


def test_with_every_host_slot_held_jobs_compile_here_at_once(
    tmp_path: Path, scheduler, ccfarmd, client_env, leases: list[Lease]
) -> None:
    sched, _ = _farm(scheduler, ccfarmd, [1.0, 1.0])
    _hold_every_slot(sched, 2, leases)
    (tmp_path / "a.c").write_text(SOURCE)
    env = {**client_env, "CCFARM_SCHEDULER": sched, "CCFARM_VERBOSE": "1"}
    started = time.monotonic()
    for n in range(5):
        proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", f"a{n}.o"], tmp_path, env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == (
            b"ccfarm: a.c: compiled here from preprocessed text: a local slot was free and the"
            b" scheduler kept it here"
            b" (no free host)\n"
        )
        assert (tmp_path / f"a{n}.o").read_bytes() == _reference(tmp_path)
    took = time.monotonic() - started
    assert took < 15, took  # no job waited for the farm (60 s each before)
    jobs = ctl(sched, "jobs")
    assert [j["client"] for j in jobs] == ["other-build/bob"] * 2  # type: ignore[index]


def test_a_waiting_job_takes_a_local_slot_that_frees_first(
    tmp_path: Path, scheduler, ccfarmd, client_env, leases: list[Lease]
) -> None:
    sched, _ = _farm(scheduler, ccfarmd, [1.0])
    _hold_every_slot(sched, 1, leases)
    (tmp_path / "a.c").write_text(SOURCE)
    env = {**client_env, "CCFARM_SCHEDULER": sched, "CCFARM_VERBOSE": "1"}
    with local_slots_held(client_env["CCFARM_DIR"]) as mine:
        job = subprocess.Popen(
            [ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
        )
        try:
            # it waits for the farm (and watches the local slots meanwhile)
            wait_for(lambda: any(j["state"] == "waiting" for j in ctl(sched, "jobs")), timeout=20)  # type: ignore[union-attr,index]
            assert job.poll() is None
            mine[0].release()
            _, stderr = job.communicate(timeout=20)
        finally:
            job.kill()
    assert job.returncode == 0, stderr
    (line,) = _verbose_lines(stderr)
    assert line.startswith(b"ccfarm: a.c: compiled here from preprocessed text: waited "), line
    assert line.endswith(b" ms; a local slot freed before a host"), line
    assert (tmp_path / "a.o").read_bytes() == _reference(tmp_path)
    wait_for(lambda: all(j["state"] != "waiting" for j in ctl(sched, "jobs")), timeout=10)  # type: ignore[union-attr,index]


@pytest.mark.parametrize(("speed", "here"), [("5", True), ("0.5", False)])
def test_a_free_host_is_taken_only_when_it_beats_this_machine(
    tmp_path: Path, scheduler, ccfarmd, client_env, speed: str, here: bool
) -> None:
    sched, (daemon,) = _farm(scheduler, ccfarmd, [1.0])
    (tmp_path / "a.c").write_text(SOURCE)
    env = {
        **client_env,
        "CCFARM_SCHEDULER": sched,
        "CCFARM_VERBOSE": "1",
        "CCFARM_LOCAL_SPEED": speed,
    }
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    (line,) = _verbose_lines(proc.stderr)
    if here:
        assert line == (
            b"ccfarm: a.c: compiled here from preprocessed text: a local slot was free and the"
            b" scheduler kept it here"
            b" (no free host is faster (best free 1, client 5))"
        )
    else:
        spec = f"{daemon.address}:{daemon.port}".encode()
        assert line.startswith(b"ccfarm: a.c: compiled on " + spec + b" from preprocessed text"), (
            line
        )
        assert b"(speed 1, tier 0): leased in " in line
    assert (tmp_path / "a.o").read_bytes() == _reference(tmp_path)


def test_the_local_speed_is_measured_once_and_kept(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    gcc = subprocess.run(["which", "gcc"], capture_output=True, text=True).stdout.strip()
    first = local_speed({}, state, gcc, now=time.time())
    assert first > 0
    kept = Path(speed_file(state))
    assert float(kept.read_text()) == first
    kept.write_text("7.5\n")  # the next jobs read it, measure nothing
    assert local_speed({}, state, "/nonexistent/cc", now=time.time()) == 7.5
    # a week later it is measured again (here with a compiler that is not there: unknown)
    assert local_speed({}, state, "/nonexistent/cc", now=time.time() + 8 * 86400) == 0.0
    assert local_speed({"CCFARM_LOCAL_SPEED": "3"}, state, gcc, now=0) == 3.0
    for bad in ("0", "-1", "fast", "inf", "nan"):
        assert local_speed({"CCFARM_LOCAL_SPEED": bad}, state, gcc, now=0) == 0.0


def test_warnings_when_a_job_cannot_be_distributed_and_the_log_file(
    tmp_path: Path, client_env
) -> None:
    (tmp_path / "a.c").write_text(SOURCE)
    env = {**client_env, "CCFARM_FALLBACK": "1"}
    cases = {
        "": b"empty host list",
        "+zeroconf": b"empty host list (+zeroconf is not supported)",
        "h1,down": b"every listed host is down",
    }
    for hosts, reason in cases.items():
        proc = run(
            [ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"],
            tmp_path,
            {**env, "CCFARM_HOSTS": hosts},
        )
        assert proc.returncode == 0
        assert proc.stderr == (
            b"ccfarm: warning: failed to distribute a.c ("
            + reason
            + b"), running locally instead\n"
        )
    # a localhost-only list is on purpose: no word
    proc = run(
        [ccfarm_exe(), "gcc", "-c", "a.c", "-o", "a.o"],
        tmp_path,
        {**env, "CCFARM_HOSTS": "localhost"},
    )
    assert proc.returncode == 0 and proc.stderr == b""
    # the scheduler marked as failed, no host list: one warning, with CCFARM_VERBOSE one line more
    address = next_address()
    port = free_port(address)
    slots.mark_scheduler_backoff(env["CCFARM_DIR"], address, port)
    log = tmp_path / "ccfarm.log"
    marked = {**env, "CCFARM_SCHEDULER": f"{address}:{port}", "CCFARM_VERBOSE": "1"}
    marked["CCFARM_HOSTS"] = ""  # (this machine's /etc/distcc/hosts may name a host)
    marked["DISTCC_LOG"] = str(log)  # distcc's name: the lines go there, not to stderr
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, marked)
    assert proc.returncode == 0 and proc.stderr == b""
    lines = log.read_text().splitlines()
    reason = f"scheduler failed lately, skipped (backoff: {address}:{port}); empty host list"
    assert [ln.split("] ", 1)[1] for ln in lines] == [
        f"ccfarm: warning: failed to distribute a.c ({reason}), running locally instead",
        f"ccfarm: a.c: compiled here: {reason}",
    ]
    assert (tmp_path / "a.o").read_bytes() == _reference(tmp_path)


def test_a_listed_host_that_fails_then_local_says_so_in_one_line(
    tmp_path: Path, client_env
) -> None:
    address = next_address()
    dead = f"{address}:{free_port(address)}"  # nothing listens
    (tmp_path / "a.c").write_text(SOURCE)
    env = {**client_env, "CCFARM_HOSTS": dead, "CCFARM_FALLBACK": "1", "CCFARM_VERBOSE": "1"}
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 0
    warning, line = proc.stderr.splitlines()
    assert warning.startswith(b"ccfarm: warning: " + dead.encode() + b" failed (cannot connect")
    assert line.startswith(b"ccfarm: a.c: compiled here: " + dead.encode() + b" failed (cannot")
    assert (tmp_path / "a.o").read_bytes() == _reference(tmp_path)


def test_gethost_bounds_a_silent_scheduler_and_marks_it(tmp_path: Path, client_env) -> None:
    address = next_address()
    silent = socket.socket()
    silent.bind((address, free_port(address)))
    silent.listen(8)  # accepts (the kernel does), never answers
    port = silent.getsockname()[1]
    env = {
        **client_env,
        "CCFARM_SCHEDULER": f"{address}:{port}",
        "CCFARM_SCHEDULER_TIMEOUT": "0.5",
        "DISTCC_HOSTS": "kept",
    }
    show = ["ccfarm-gethost", "sh", "-c", 'echo "$DISTCC_HOSTS"']
    try:
        started = time.monotonic()
        first = run(show, tmp_path, env)
        took = time.monotonic() - started
        assert first.returncode == 0 and first.stdout == b"kept\n"
        assert took < 5, took  # the scheduler timeout, not the 60 s lease wait
        assert slots.is_scheduler_backed_off(
            env["CCFARM_DIR"], address, port, now=time.time(), period=60
        )
        started = time.monotonic()
        second = run(show, tmp_path, env)
        assert second.stdout == b"kept\n" and time.monotonic() - started < took
    finally:
        silent.close()


@pytest.mark.parametrize(("setting", "added"), [(None, 10), ("0", 0), ("3", 3)])
def test_a_compile_the_farm_keeps_here_runs_nicer_than_the_build(
    tmp_path: Path, scheduler, ccfarmd, client_env, setting: str | None, added: int
) -> None:
    # this machine preprocesses every job the hosts wait for: its own compiles
    # (CCFARM_LOCAL_NICE, default 10) must not hold that up
    sched, _ = _farm(scheduler, ccfarmd, [1.0])
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "gcc").write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -E "*|*" -v "*) ;; *) ps -o ni= -p $$ > "$NICE_FILE" ;; esac\n'
        'exec /usr/bin/gcc "$@"\n'
    )
    (shim / "gcc").chmod(0o755)
    (tmp_path / "a.c").write_text(SOURCE)
    env = {
        **client_env,
        "PATH": f"{shim}:{client_env['PATH']}",
        "NICE_FILE": str(tmp_path / "nice"),
        "CCFARM_SCHEDULER": sched,
        "CCFARM_VERBOSE": "1",
        "CCFARM_LOCAL_SPEED": "5",  # faster than the one host: kept here
    }
    if setting is not None:
        env["CCFARM_LOCAL_NICE"] = setting
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    (line,) = _verbose_lines(proc.stderr)
    assert b"compiled here from preprocessed text: a local slot was free and the scheduler" in line
    assert int((tmp_path / "nice").read_text()) == min(19, os.nice(0) + added)
    assert (tmp_path / "a.o").read_bytes() == _reference(tmp_path)


WARNS = "int answer(int x) { int unused; return x * 42; }\n"
BROKEN = "int answer(int x) { return x * ; }\n"
MISSING = '#include "missing.h"\n'


@pytest.mark.parametrize(
    ("source", "flags", "runs"),
    [
        (SOURCE, ("-O2",), ["-E a.c", "text"]),  # its text compiled: no second preprocessing
        (WARNS, ("-O2", "-Wall"), ["-E a.c", "text", "a.c"]),  # a word: again, from the source
        (BROKEN, ("-O2",), ["-E a.c", "text", "a.c"]),  # failed: the source's messages
        (MISSING, ("-O2",), ["-E a.c", "a.c"]),  # the preprocessor failed: from the source
        (SOURCE, ("-O0",), ["-E a.c", "a.c"]),  # the text would give other bytes
        (SOURCE, ("-O2", "-g"), ["-E a.c", "a.c"]),
    ],
)
def test_a_job_kept_here_compiles_its_preprocessed_text_when_that_is_exact(
    tmp_path: Path, scheduler, ccfarmd, client_env, source: str, flags: tuple[str, ...], runs
) -> None:
    sched, _ = _farm(scheduler, ccfarmd, [1.0])
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "gcc").write_text(  # notes each compile and what it read
        "#!/bin/sh\n"
        'case " $* " in *" -v "*) ;; *) echo "$*" >> "$RUNS_FILE" ;; esac\n'
        'exec /usr/bin/gcc "$@"\n'
    )
    (shim / "gcc").chmod(0o755)
    (tmp_path / "a.c").write_text(source)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **client_env,
        "PATH": f"{shim}:{client_env['PATH']}",
        "RUNS_FILE": str(tmp_path / "runs"),
        "TMPDIR": str(temp),
        "CCFARM_SCHEDULER": sched,
        "CCFARM_LOCAL_SPEED": "5",  # faster than the one host: kept here
    }
    command = ["gcc", *flags, "-c", "a.c", "-o"]
    proc = run([ccfarm_exe(), *command, "a.o"], tmp_path, env)
    ref = run([*command, "ref.o"], tmp_path)
    assert (proc.returncode, proc.stderr) == (ref.returncode, ref.stderr.replace(b"ref.o", b"a.o"))
    assert proc.stdout == ref.stdout == b""
    if ref.returncode == 0:
        assert (tmp_path / "a.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
    else:
        assert not (tmp_path / "a.o").exists()
    seen = []
    for line in (tmp_path / "runs").read_text().splitlines():
        args = line.split()
        if "-E" in args and "a.c" in args:
            seen.append("-E a.c")
        elif "a.c" in args:
            seen.append("a.c")
        elif any(a.endswith(".i") for a in args):
            seen.append("text")
        else:
            seen.append(line)
    assert seen == runs
    assert not list(temp.iterdir())  # the text and the text's object are gone
    assert not list(tmp_path.glob(".a.o*"))
    # its verbose line says which
    proc = run([ccfarm_exe(), *command, "a.o"], tmp_path, {**env, "CCFARM_VERBOSE": "1"})
    (line,) = _verbose_lines(proc.stderr)
    here = b"compiled here from preprocessed text: " if runs[-1] == "text" else b"compiled here: "
    assert line.startswith(b"ccfarm: a.c: " + here), line
