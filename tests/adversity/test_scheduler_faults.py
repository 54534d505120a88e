"""A scheduler that fails, or takes a lease back, never stalls the build.

The scheduler here is scripted in a thread (a listening socket and a few
control messages), the wrapper is the real `ccfarm` process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.control import messages as m
from ccfarm.control.codec import MessageParser
from ccfarm.model import LeaseGranted, LeaseRevoked
from tests.conftest import ccfarm_exe, free_port, next_address, run

SOURCE = "int a(void) { return 42; }\n"


def _listener() -> socket.socket:
    address = next_address()
    sock = socket.socket()
    sock.bind((address, free_port(address)))
    sock.listen(16)
    return sock


@pytest.fixture
def silent_scheduler() -> Iterator[str]:
    """Accepts (the kernel does) and never answers."""
    sock = _listener()
    address, port = sock.getsockname()
    yield f"{address}:{port}"
    sock.close()


def _took_a_local_slot(env: dict[str, str]) -> bool:
    """A local compile held a local slot (its lock file stays behind, as distcc's)."""
    return (Path(env["CCFARM_DIR"]) / "lock" / "cpu_localhost_0").exists()


def _local_reference(tmp_path: Path) -> bytes:
    run(["gcc", "-O2", "-c", "a.c", "-o", "ref.o"], tmp_path)
    return (tmp_path / "ref.o").read_bytes()


def test_a_silent_scheduler_is_bounded_then_skipped(
    tmp_path: Path, client_env, silent_scheduler: str
) -> None:
    (tmp_path / "a.c").write_text(SOURCE)
    env = {**client_env, "CCFARM_SCHEDULER": silent_scheduler, "CCFARM_FALLBACK": "1"}
    env["CCFARM_VERBOSE"] = "1"
    started = time.monotonic()
    first = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    took = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    assert b"no scheduler answered" in first.stderr and b"timed out" in first.stderr
    assert 1.5 < took < 6  # CCFARM_SCHEDULER_TIMEOUT (2 s), not the 60 s lease wait
    started = time.monotonic()
    second = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "b.o"], tmp_path, env)
    assert second.returncode == 0, second.stderr
    assert time.monotonic() - started < 1.5  # marked: skipped at once
    assert b"scheduler failed lately, skipped" in second.stderr
    reference = _local_reference(tmp_path)
    assert (tmp_path / "a.o").read_bytes() == (tmp_path / "b.o").read_bytes() == reference
    assert _took_a_local_slot(client_env)


class _Scheduler:
    """Grants the request a lease on `host`; then revokes it, closes, or just listens."""

    def __init__(self, host: tuple[str, int], *, revoke: bool | None) -> None:
        self.sock = _listener()
        self.host = host
        self.revoke = revoke
        self.heard: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        address, port = self.sock.getsockname()
        return f"{address}:{port}"

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            parser = MessageParser(expect_hello=True)
            lease = 7
            while data := conn.recv(65536):
                parser.receive_data(data)
                for message in parser.messages():
                    self.heard.append(message.kind)
                    if message.kind == m.LEASE_REQUEST:
                        grant = LeaseGranted(1, lease, "stalled", *self.host)
                        conn.sendall(m.encode_queued(1) + m.encode_granted(1, grant))
                        if self.revoke is None:
                            continue
                        time.sleep(0.3)  # the job is on its way to the host
                        if self.revoke:
                            conn.sendall(m.encode_revoked(1, LeaseRevoked(lease, 1, "host gone")))
                        else:
                            conn.close()
                            return

    def close(self) -> None:
        self.sock.close()
        self._thread.join(5)


@pytest.mark.parametrize("revoke", [True, False], ids=["LREV", "closed"])
@pytest.mark.parametrize("fallback", ["1", "0"])
def test_a_revoked_lease_abandons_the_stalled_host_at_once(
    tmp_path: Path, client_env, revoke: bool, fallback: str
) -> None:
    stalled = _listener()  # a stopped host: connections are taken, nothing answers
    scheduler = _Scheduler(stalled.getsockname(), revoke=revoke)
    (tmp_path / "a.c").write_text(SOURCE)
    env = {**client_env, "CCFARM_SCHEDULER": scheduler.address, "CCFARM_FALLBACK": fallback}
    started = time.monotonic()
    try:
        proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    finally:
        took = time.monotonic() - started
        scheduler.close()
        stalled.close()
    assert took < 10  # not the 300 s I/O timeout
    reason = b"lease revoked: host gone" if revoke else b"closed the lease's connection"
    assert reason in proc.stderr, proc.stderr
    if fallback == "0":
        assert proc.returncode == 116
        assert not (tmp_path / "a.o").exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "a.o").read_bytes() == _local_reference(tmp_path)
        assert _took_a_local_slot(client_env)  # one of this machine's CPUs' slots
    assert m.HOST_FAILED not in scheduler.heard  # the scheduler knew: nothing to report
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name or ".ccfarm-" in p.name] == []


def test_a_host_that_failed_is_reported_before_the_release(tmp_path: Path, client_env) -> None:
    address = next_address()
    refusing = (address, free_port(address))  # nothing listens there
    scheduler = _Scheduler(refusing, revoke=None)
    (tmp_path / "a.c").write_text(SOURCE)
    env = {**client_env, "CCFARM_SCHEDULER": scheduler.address, "CCFARM_FALLBACK": "1"}
    try:
        proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    finally:
        scheduler.close()
    assert proc.returncode == 0, proc.stderr
    assert b"stalled failed (cannot connect" in proc.stderr
    assert scheduler.heard == [m.LEASE_REQUEST, m.HOST_FAILED, m.LEASE_RELEASE]
    assert (tmp_path / "a.o").read_bytes() == _local_reference(tmp_path)
