"""The fork server's reading of a job's lifeline (the job's process's
connection), on a real process standing in for a worker; its code stamps."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.client.forkserver import wire
from ccfarm.client.forkserver.server import ForkServer, _Worker, module_stamps


@pytest.fixture
def server() -> Iterator[tuple[ForkServer, _Worker, subprocess.Popen[bytes]]]:
    """A fork server with one busy worker: a process in its own group, as a worker is."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fork_server = ForkServer(listener, 60.0, {})
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    mine, theirs = socket.socketpair()
    worker = _Worker(proc.pid, os.pidfd_open(proc.pid), mine)
    fork_server.workers[proc.pid] = worker
    yield fork_server, worker, proc
    proc.kill()
    proc.wait()
    if worker.conn is not None:
        worker.conn.close()
    fork_server.selector.close()
    for sock in (listener, mine, theirs):
        sock.close()
    os.close(worker.pidfd)


def _give_job(fork_server: ForkServer, worker: _Worker) -> socket.socket:
    """A job on `worker`; the job's process's end of its lifeline."""
    ours, job_process = socket.socketpair()
    ours.setblocking(False)
    worker.busy, worker.conn = True, ours
    fork_server.selector.register(ours, selectors.EVENT_READ, ("peer", worker.pid))
    return job_process


def test_an_event_of_a_job_answered_earlier_does_not_stop_the_next(server) -> None:  # type: ignore[no-untyped-def]
    fork_server, worker, proc = server
    first = _give_job(fork_server, worker)
    old = worker.conn
    fork_server._reply(worker, b"X00000000")  # answered: its process hangs up
    first.close()
    later = _give_job(fork_server, worker)  # the next job, in the same round
    fork_server._peer_event(worker.pid, old)  # the first job's hang-up, seen late
    assert worker.conn is not None and not worker.doomed and worker.kill_at is None
    assert proc.poll() is None
    later.close()


def test_a_wake_up_with_nothing_to_read_is_not_a_hang_up(server) -> None:  # type: ignore[no-untyped-def]
    fork_server, worker, proc = server
    job_process = _give_job(fork_server, worker)
    fork_server._peer_event(worker.pid, worker.conn)
    assert worker.conn is not None and not worker.doomed and proc.poll() is None
    job_process.close()


def test_a_job_process_gone_stops_its_job(server) -> None:  # type: ignore[no-untyped-def]
    fork_server, worker, proc = server
    _give_job(fork_server, worker).close()  # make interrupted: the process is gone
    fork_server._peer_event(worker.pid, worker.conn)
    assert worker.conn is None and worker.doomed and worker.kill_at is not None
    assert proc.wait(timeout=10) == -signal.SIGTERM  # its process group had SIGTERM


def test_code_stamps_cover_the_packages_sources_and_see_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.py").write_text("A = 1\n")
    (tmp_path / "notes.txt").write_text("not code\n")
    sub = tmp_path / "sub"
    (sub / "__pycache__").mkdir(parents=True)
    (sub / "b.py").write_text("B = 1\n")
    (sub / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "elsewhere").symlink_to(sub)  # a link to a directory is not followed
    monkeypatch.setattr(wire, "package_dir", lambda: str(tmp_path))
    stamps = module_stamps()
    assert set(stamps) == {str(tmp_path / "a.py"), str(sub / "b.py")}
    (sub / "b.py").write_text("B = 22\n")  # another size
    assert module_stamps() != stamps
    # ccfarm's own package: every module it can import
    monkeypatch.undo()
    package = Path(wire.package_dir())
    assert set(module_stamps()) == {
        str(p) for p in package.rglob("*.py") if "__pycache__" not in p.parts
    }
