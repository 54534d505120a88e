"""The fork server, for real: a fork server process, real wrapper processes, real gcc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.client.forkserver import forward
from tests.conftest import ccfarm_cmd, processes, run, wait_for

SOURCE = "int twice(int x) { return 2 * x; }\n"
BROKEN = "int broken(void) { return undeclared; }\n"


def _forks(name: bytes) -> dict[int, int]:
    """pid -> parent pid of every process with a fork server's command line for `name`."""
    return {
        pid: int(fields[1])
        for pid, argv, fields in processes()
        if b"ccfarm.client.forkserver.server" in argv and name[1:] in argv
    }


def server_pids(name: bytes) -> list[int]:
    """Fork servers serving `name` (their workers, forks of them, left out)."""
    forks = _forks(name)
    return [pid for pid, parent in forks.items() if parent not in forks]


def worker_pids(server: int, name: bytes) -> list[int]:
    """The live workers of fork server `server`."""
    return [pid for pid, parent in _forks(name).items() if parent == server and _alive(pid)]


def name_for(env: dict[str, str]) -> bytes:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return forward.socket_name(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture
def server_env(client_env: dict[str, str], ccfarmd) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """Jobs go to a real ccfarmd; their fork server stays up for the test, stopped afterwards."""
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HELPER_IDLE": "30", "CCFARM_HOSTS": daemon.spec}
    yield env
    for pid in server_pids(name_for(env)):
        os.kill(pid, signal.SIGTERM)
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=30)


def start_server(env: dict[str, str]) -> subprocess.Popen[bytes]:
    name = name_for(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccfarm.client.forkserver.server", name[1:].decode()], env=env
    )
    _started.append(proc)
    wait_for(lambda: _listening(name))
    return proc


def _listening(name: bytes) -> bool:
    """Is a socket bound to the abstract `name` (shown as @name in /proc/net/unix)?"""
    with open("/proc/net/unix", "rb") as f:
        return any(line.endswith(b" @" + name[1:]) for line in f.read().splitlines())


def test_first_job_starts_a_forkserver_and_later_jobs_use_it(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    (tmp_path / "x.c").write_text(SOURCE)
    name = name_for(server_env)
    assert not server_pids(name)
    first = run([*ccfarm_cmd(), "gcc", "-O2", "-c", "x.c", "-o", "first.o"], tmp_path, server_env)
    assert first.returncode == 0, first.stderr
    wait_for(lambda: _listening(name))
    [pid] = server_pids(name)
    seen = []
    for i in range(3):
        later = run(
            [*ccfarm_cmd(), "gcc", "-O2", "-c", "x.c", "-o", f"later{i}.o"], tmp_path, server_env
        )
        assert later.returncode == 0, later.stderr
        assert later.stderr == b""
        [worker] = worker_pids(pid, name)
        seen.append((worker, _cpu_ns(worker)))
    assert server_pids(name) == [pid]  # still the one fork server
    # the three jobs ran one after another in one worker, a fork of the fork
    # server (which runs only while it has a job)
    assert len({worker for worker, _ in seen}) == 1
    assert seen[0][1] < seen[1][1] < seen[2][1]
    subprocess.run(["gcc", "-O2", "-c", "x.c", "-o", "local.o"], cwd=tmp_path, check=True)
    for obj in ("first.o", "later0.o", "later1.o", "later2.o"):
        assert (tmp_path / obj).read_bytes() == (tmp_path / "local.o").read_bytes()


def _cpu_ns(pid: int) -> int:
    """Nanoseconds `pid` has run on a CPU (/proc/PID/stat's ticks are too coarse)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def test_a_worker_carries_nothing_from_one_job_to_the_next(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    """Jobs one after another run in the same worker, each with its own working
    directory, umask, environment and stdio; none keeps the last job's pipes
    open (make, or `make | tee`, would wait for them), and a job that leaves
    its worker changed (a local compile becomes the compiler) ends it."""
    server = start_server(server_env).pid
    name = name_for(server_env)
    first, second = tmp_path / "first", tmp_path / "second"
    for directory in (first, second):
        directory.mkdir()
        (directory / "x.c").write_text(SOURCE)

    def job(cwd: Path, umask: int, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
        # the wrapper's stdout and stderr are pipes; `run` returns only once
        # every process holding them has closed them
        return subprocess.run(
            [*ccfarm_cmd(), "gcc", "-O2", "-c", "x.c", "-o", "x.o"],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=60,
            preexec_fn=lambda: os.umask(umask),
        )

    told = job(first, 0o077, {**server_env, "CCFARM_VERBOSE": "1"})
    assert told.returncode == 0, told.stderr
    assert b"x.c: compiled on" in told.stderr
    [worker] = worker_pids(server, name)
    quiet = job(second, 0o022, server_env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == b""  # the first job's CCFARM_VERBOSE stayed with it
    assert worker_pids(server, name) == [worker]  # the same worker ran it
    assert (first / "x.o").stat().st_mode & 0o777 == 0o600
    assert (second / "x.o").stat().st_mode & 0o777 == 0o644
    assert (first / "x.o").read_bytes() == (second / "x.o").read_bytes()
    with open(f"/proc/{worker}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in "SR"  # waiting for the next job
    assert os.readlink(f"/proc/{worker}/cwd") == "/"
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{worker}/fd/{fd}") == os.devnull

    here = job(second, 0o022, {**server_env, "CCFARM_HOSTS": "localhost"})
    assert here.returncode == 0, here.stderr
    wait_for(lambda: not _alive(worker))  # it became the compiler, and ended
    again = job(first, 0o022, server_env)
    assert again.returncode == 0, again.stderr
    assert worker not in worker_pids(server, name)
    assert len(worker_pids(server, name)) == 1


def test_forwarded_job_uses_the_callers_cwd_stdio_umask_and_status(
    tmp_path: Path,
    server_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    start_server(server_env)
    (tmp_path / "x.c").write_text(SOURCE)
    (tmp_path / "bad.c").write_text(BROKEN)
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in server_env.items():
        monkeypatch.setenv(key, value)
    name = forward.socket_name(os.environ)
    old = os.umask(0o077)
    try:
        status = forward.forward_job(["ccfarm", "gcc", "-c", "x.c", "-o", "x.o"], name)
    finally:
        os.umask(old)
    assert status == 0
    assert (tmp_path / "x.o").stat().st_mode & 0o777 == 0o600
    capfd.readouterr()

    status = forward.forward_job(["ccfarm", "gcc", "-c", "bad.c", "-o", "bad.o"], name)
    remote = capfd.readouterr()
    local = subprocess.run(["gcc", "-c", "bad.c", "-o", "bad.o"], capture_output=True, text=True)
    assert status == local.returncode == 1
    assert remote.err == local.stderr
    assert not (tmp_path / "bad.o").exists()


def test_a_job_killed_by_a_signal_kills_the_wrapper_with_it(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    start_server(server_env)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    crasher = bindir / "crashcc"
    crasher.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crasher.chmod(0o755)
    env = {**server_env, "PATH": f"{bindir}:{server_env['PATH']}", "CCFARM_HOSTS": "localhost"}
    (tmp_path / "x.c").write_text(SOURCE)
    result = run([*ccfarm_cmd(), "crashcc", "-c", "x.c"], tmp_path, env)
    assert result.returncode == -signal.SIGSEGV


def _wchan(pid: int) -> str:
    with open(f"/proc/{pid}/wchan") as f:
        return f.read()


def test_a_worker_killed_before_it_took_its_job_lets_the_process_run_it(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    """An idle worker killed just as a job is handed to it (stopped here so
    that the job waits in its socket) has run none of it: the job's process
    runs it itself, and the build sees an ordinary compile, not the kill."""
    server = start_server(server_env).pid
    name = name_for(server_env)
    (tmp_path / "x.c").write_text(SOURCE)
    warm = run([*ccfarm_cmd(), "gcc", "-O2", "-c", "x.c", "-o", "warm.o"], tmp_path, server_env)
    assert warm.returncode == 0, warm.stderr
    [worker] = worker_pids(server, name)  # idle, the next job's
    os.kill(worker, signal.SIGSTOP)
    wrapper = subprocess.Popen(
        [*ccfarm_cmd(), "gcc", "-O2", "-c", "x.c", "-o", "x.o"],
        cwd=tmp_path,
        env=server_env,
        stderr=subprocess.PIPE,
    )
    try:
        # the job's process sent its request and waits for the answer; the
        # fork server passed it on to the stopped worker at once
        wait_for(lambda: _wchan(wrapper.pid).startswith("unix_stream_read"))
        time.sleep(0.3)
        assert not (tmp_path / "x.o").exists()
        os.kill(worker, signal.SIGKILL)
        _, err = wrapper.communicate(timeout=60)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
    assert wrapper.returncode == 0, err
    assert worker not in worker_pids(server, name)
    subprocess.run(["gcc", "-O2", "-c", "x.c", "-o", "local.o"], cwd=tmp_path, check=True)
    assert (tmp_path / "x.o").read_bytes() == (tmp_path / "local.o").read_bytes()


def test_interrupted_wrapper_stops_its_job(tmp_path: Path, server_env: dict[str, str]) -> None:
    start_server(server_env)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    marker = tmp_path / "compiler-pid"
    slow = bindir / "slowcc"
    slow.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 60\n")
    slow.chmod(0o755)
    env = {**server_env, "PATH": f"{bindir}:{server_env['PATH']}", "CCFARM_HOSTS": "localhost"}
    (tmp_path / "x.c").write_text(SOURCE)
    wrapper = subprocess.Popen([*ccfarm_cmd(), "slowcc", "-c", "x.c"], cwd=tmp_path, env=env)
    try:
        wait_for(lambda: marker.exists() and marker.read_text().strip() != "")
        compiler = int(marker.read_text())
        assert os.path.exists(f"/proc/{compiler}")
        wrapper.kill()  # make interrupted, the wrapper gone without a word
        wrapper.wait()
        wait_for(lambda: not _alive(compiler), timeout=15)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_changed_code_makes_the_forkserver_step_down(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    proc = start_server(server_env)
    (tmp_path / "x.c").write_text(SOURCE)
    source = Path(forward.__file__).with_name("wire.py")
    st = source.stat()
    try:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        result = run([*ccfarm_cmd(), "gcc", "-c", "x.c", "-o", "x.o"], tmp_path, server_env)
        assert result.returncode == 0, result.stderr  # ran in the wrapper process itself
        assert (tmp_path / "x.o").exists()
        proc.wait(timeout=10)  # the old fork server left
    finally:
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_idle_forkserver_exits(tmp_path: Path, server_env: dict[str, str]) -> None:
    proc = start_server({**server_env, "CCFARM_HELPER_IDLE": "0.5"})
    assert proc.wait(timeout=10) == 0


def test_only_one_forkserver_per_name(server_env: dict[str, str]) -> None:
    first = start_server(server_env)
    name = name_for(server_env)
    second = subprocess.run(
        [sys.executable, "-m", "ccfarm.client.forkserver.server", name[1:].decode()],
        env=server_env,
        timeout=30,
    )
    assert second.returncode == 0
    assert first.poll() is None
    assert server_pids(name) == [first.pid]


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to listen as another user")
def test_a_forkserver_of_another_user_is_not_trusted(
    tmp_path: Path, server_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Abstract sockets have no permissions: someone else may hold the name first."""
    monkeypatch.chdir(tmp_path)
    for key, value in server_env.items():
        monkeypatch.setenv(key, value)
    name = forward.socket_name(os.environ)
    ready_r, ready_w = os.pipe()
    got_r, got_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the squatter: another user listening on our fork server's name
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(name)
                listener.listen(1)
                os.write(ready_w, b"x")
                conn, _ = listener.accept()
                conn.settimeout(5)
                os.write(got_w, b"%d" % len(conn.recv(65536)))
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(got_w)
    assert os.read(ready_r, 1) == b"x"
    os.close(ready_r)
    assert forward.forward_job(["ccfarm", "gcc", "-c", "x.c"], name) is None
    os.waitpid(pid, 0)
    assert os.read(got_r, 16) == b"0"  # it got a connection and not one byte
    os.close(got_r)


def test_disabled_forkserver_is_never_started(tmp_path: Path, client_env: dict[str, str]) -> None:
    env = {**client_env, "CCFARM_HELPER": "0", "CCFARM_HOSTS": "localhost"}
    (tmp_path / "x.c").write_text(SOURCE)
    result = run([*ccfarm_cmd(), "gcc", "-c", "x.c", "-o", "x.o"], tmp_path, env)
    assert result.returncode == 0
    time.sleep(0.5)
    assert not server_pids(name_for(env))
