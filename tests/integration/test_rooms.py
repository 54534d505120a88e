"""Warm rooms with real bwrap (`daemon/process.py`): a shell started ahead in a
job's sandbox becomes the compiler with exactly what a fresh start gives it
(environment, limits, niceness, exit status, the sandbox's view), and a room
that died is never a compile error: the compiler starts afresh."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.daemon.job import CompilePlan
from ccfarm.daemon.process import CompilerProcess, Confined, find_sandbox
from ccfarm.daemon.sandbox import JobLimits, Sandbox
from tests.conftest import require_binary, wait_for

LIMITS = JobLimits(cpu_seconds=77, memory_mib=3000, file_size_mib=99, processes=300)
SHOW = (
    "grep -E 'cpu time|address space|file size|processes' /proc/self/limits;"
    " cut -d' ' -f19 /proc/self/stat; ls /; pwd"
)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    require_binary("bwrap")
    found = find_sandbox()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture
def job(tmp_path: Path) -> Iterator[str]:
    job_dir = tmp_path / "ccfarmd-test"
    job_dir.mkdir()
    (job_dir / "root").mkdir()  # a protocol-3 job's cwd is made after its room
    yield str(job_dir)


ENV = {"PATH": "/usr/bin:/bin", "LANG": "C", "PWD": "/daemon/cwd"}


def _plan(job_dir: str, program: str, *args: str, cwd: str = "", **env: str) -> CompilePlan:
    full = {**ENV, "TMPDIR": job_dir, **env}
    return CompilePlan(
        program, (program, *args), cwd or job_dir, full, 3, None, None, job_dir=job_dir
    )


async def _warm(
    confined: Confined, plan: CompilePlan, nice: int = 0, room_nice: int = 0
) -> CompilerProcess:
    room = await confined.room(plan.job_dir, (), {**ENV, "TMPDIR": plan.job_dir}, room_nice)
    await asyncio.sleep(0.05)  # (ready, or not: the script waits in the pipe either way)
    proc = await room.run(plan, nice)
    assert proc is not None
    return proc


async def _result(proc: CompilerProcess) -> tuple[int | None, bytes, bytes]:
    out, err = await proc.communicate()
    return proc.returncode, out, err


def _both(confined: Confined, plan: CompilePlan, nice: int = 0) -> tuple[tuple, tuple]:  # type: ignore[type-arg]
    async def go() -> tuple[tuple, tuple]:  # type: ignore[type-arg]
        warm = await _result(await _warm(confined, plan, nice))
        cold = await _result(await confined(plan, nice))
        return warm, cold

    return asyncio.run(go())


@pytest.mark.parametrize("sandboxed", [True, False])
def test_a_warm_compiler_gets_what_a_fresh_one_gets(
    sandbox: Sandbox, job: str, sandboxed: bool
) -> None:
    confined = Confined(LIMITS, sandbox if sandboxed else None)
    plan = _plan(job, "/bin/sh", "-c", SHOW, cwd=f"{job}/root", LC_ALL="C.UTF-8")
    warm, cold = _both(confined, plan, nice=3)
    assert warm == cold
    code, out, err = warm
    assert code == 0, err
    text = out.decode()
    assert "Max cpu time              77                   82" in text
    assert f"{3000 << 20}" in text and f"{99 << 20}" in text
    assert "Max processes             300                  300" in text
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert f"\n{min(19, own + 3)}\n" in text  # the niceness
    assert text.endswith(f"{job}/root\n")
    if sandboxed:
        assert "home" not in text.split() and "root" not in text.split()


@pytest.mark.parametrize("sandboxed", [True, False])
def test_the_environment_is_the_jobs(sandbox: Sandbox, job: str, sandboxed: bool) -> None:
    confined = Confined(LIMITS, sandbox if sandboxed else None)
    plan = _plan(job, "/usr/bin/env", "-0", SOURCE_DATE_EPOCH="1 2 '3'", IFS="x")
    warm, cold = _both(confined, plan)
    assert warm[0] == 0
    got = dict(item.split("=", 1) for item in warm[1].decode().split("\0") if item)
    assert got == cold_env(cold[1])
    expected = {**plan.env, "PWD": job} if sandboxed else dict(plan.env)
    assert got == expected


def cold_env(out: bytes) -> dict[str, str]:
    return dict(item.split("=", 1) for item in out.decode().split("\0") if item)


@pytest.mark.parametrize("sandboxed", [True, False])
def test_a_signal_reads_as_the_compilers_death(sandbox: Sandbox, job: str, sandboxed: bool) -> None:
    confined = Confined(LIMITS, sandbox if sandboxed else None)
    plan = _plan(job, "/bin/sh", "-c", "kill -SEGV $$")
    warm, cold = _both(confined, plan)
    assert warm[0] == cold[0] == -signal.SIGSEGV


def test_a_room_that_died_runs_its_job_afresh(sandbox: Sandbox, job: str) -> None:
    confined = Confined(LIMITS, sandbox)
    plan = _plan(job, "/bin/sh", "-c", "echo compiled; exit 3")

    async def go() -> list[tuple[int | None, bytes]]:
        results = []
        for when in ("before", "after"):
            room = await confined.room(job, (), {**ENV, "TMPDIR": job}, 0)
            await asyncio.sleep(0.2)
            if when == "before":  # dead before its job: the service starts it afresh
                os.killpg(room._proc.pid, signal.SIGKILL)
                await asyncio.sleep(0.2)
                assert not room.alive
                assert await room.run(plan, 0) is None
                await room.wait()
                proc = await confined(plan, 0)
            else:  # dies with its script in the pipe: the compiler starts afresh
                proc = await room.run(plan, 0)
                assert proc is not None
                os.killpg(room._proc.pid, signal.SIGKILL)
            out, _ = await proc.communicate()
            results.append((proc.returncode, out))
        return results

    results = asyncio.run(go())
    assert results[0] == (3, b"compiled\n")
    # killed before the exec: afresh (the compiler's own result); after it: killed, with or
    # without what it printed first (a killed compiler is a failed host: its output is dropped)
    assert results[1] == (3, b"compiled\n") or results[1][0] == -signal.SIGKILL
    assert results[1][1] in (b"", b"compiled\n")


def test_a_room_niced_beyond_its_job_is_not_used(sandbox: Sandbox, job: str) -> None:
    confined = Confined(LIMITS, sandbox)

    async def go() -> None:
        room = await confined.room(job, (), {**ENV, "TMPDIR": job}, 5)
        assert await room.run(_plan(job, "/bin/true"), 2) is None  # (it cannot go less nice)
        assert not room.alive
        await room.wait()

    asyncio.run(go())


def test_what_a_compiler_leaves_running_ends_with_it(sandbox: Sandbox, job: str) -> None:
    confined = Confined(LIMITS, sandbox)
    seconds = f"{600 + os.getpid() % 1000}.4321"  # (names this test's sleep)
    plan = _plan(job, "/bin/sh", "-c", f"sleep {seconds} & echo started")

    async def go() -> bytes:
        out, _ = await (await _warm(confined, plan)).communicate()
        return out

    assert asyncio.run(go()) == b"started\n"
    wait_for(lambda: not [p for p in os.listdir("/proc") if p.isdigit() and seconds in _cmdline(p)])


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_no_fork_between_spawn_and_exec(sandbox: Sandbox, job: str) -> None:
    """The limits are set from outside (prlimit), not by a preexec_fn, and the
    daemon's own stay as they were."""
    confined = Confined(LIMITS, sandbox)
    before = resource.getrlimit(resource.RLIMIT_CPU)
    warm, cold = _both(confined, _plan(job, "/bin/true"))
    assert warm[0] == cold[0] == 0
    assert not confined._forked
    assert resource.getrlimit(resource.RLIMIT_CPU) == before


# -- the warm pool in a real ccfarmd ------------------------------------------------


def _request() -> bytes:
    from ccfarm.protocol import PLAIN, JobHeader, encode_request

    argv = (b"gcc", b"-O2", b"-c", b"x.c", b"-o", b"x.o")
    return encode_request(JobHeader(PLAIN, argv), source=b"int f(int x) { return x * 3; }\n")


def _exchange(daemon) -> bytes:  # type: ignore[no-untyped-def]
    import socket

    with socket.create_connection((daemon.address, daemon.port), timeout=60) as sock:
        sock.sendall(_request())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def _rooms(mark: str) -> list[int]:
    """The waiting shells' sandboxes (bwrap ... -- /bin/sh -s) of a daemon's --tmpdir."""
    from tests.conftest import processes

    return [
        pid
        for pid, argv, _ in processes()
        if argv[-3:] == [b"/bin/sh", b"-s", b""] and any(mark.encode() in a for a in argv)
    ]


def _ready(root: Path) -> list[Path]:
    return [p for d in root.glob("ccfarmd-*-*") for p in d.glob("ready.*")]


def test_dead_ready_sandboxes_never_fail_a_job(daemon_dir: Path, ccfarmd) -> None:  # type: ignore[no-untyped-def]
    require_binary("bwrap")
    daemon = ccfarmd(jobs=2, extra=("--tmpdir", str(daemon_dir), "--warm-pool", "2"))
    wait_for(lambda: "bubblewrap sandbox" in Path(daemon.log_path).read_text())
    wait_for(lambda: len(_ready(daemon_dir)) == 2 and len(_rooms(str(daemon_dir))) >= 2)
    assert _exchange(daemon).startswith(b"DONE00000001STAT00000000")
    wait_for(lambda: len(_ready(daemon_dir)) == 2)  # taken, and made again
    for _ in range(2):  # every ready sandbox killed behind the daemon's back
        for pid in _rooms(str(daemon_dir)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reply = _exchange(daemon)
        assert reply.startswith(b"DONE00000001STAT00000000"), reply[:80]
        assert b"DOTO" in reply and b"\x7fELF" in reply  # an object, not an empty one
    log = Path(daemon.log_path).read_text()
    assert "Traceback" not in log and "internal error" not in log


def test_ready_job_directories_go_with_the_daemon(daemon_dir: Path, ccfarmd) -> None:  # type: ignore[no-untyped-def]
    require_binary("bwrap")
    daemon = ccfarmd(jobs=3, extra=("--tmpdir", str(daemon_dir), "--warm-pool", "3"))
    wait_for(lambda: len(_ready(daemon_dir)) == 3)
    assert _exchange(daemon).startswith(b"DONE00000001STAT00000000")
    wait_for(lambda: len(_ready(daemon_dir)) == 3)
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(30) == 0
    assert list(daemon_dir.iterdir()) == []  # every workspace, ready or used, and the root
    wait_for(lambda: not _rooms(str(daemon_dir)))
    log = Path(daemon.log_path).read_text()
    assert "Traceback" not in log and "Exception ignored" not in log
