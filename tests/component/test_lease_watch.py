"""A leased job's remote attempt watches the lease: a revocation ends it at once.

The daemon is a listening socket nobody accepts from (a stopped host: the
kernel takes the connection, nothing answers); the scheduler is one end of
a socketpair, its revocation already waiting or sent while the job sends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from ccfarm.client.job.lease import Lease
from ccfarm.client.job.transport import run_remote
from ccfarm.control import messages as m
from ccfarm.control.codec import MessageParser
from ccfarm.errors import HostFailure, LeaseLost
from ccfarm.model import LeaseGranted, LeaseRevoked

GRANT = LeaseGranted(1, 42, "h1", "127.0.0.1", 3632)
REQUEST = b"DIST00000001" + b"ARGC00000000"


@pytest.fixture
def stalled_daemon() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def lease() -> Iterator[tuple[Lease, socket.socket]]:
    client_end, scheduler_end = socket.socketpair()
    yield Lease(client_end, GRANT, MessageParser(expect_hello=False)), scheduler_end
    client_end.close()
    scheduler_end.close()


def _run(port: int, held: Lease, request: bytes = REQUEST, io_timeout: float = 30.0) -> float:
    started = time.monotonic()
    run_remote(
        "127.0.0.1", port, request, 1, connect_timeout=2.0, io_timeout=io_timeout, lease=held
    )
    return time.monotonic() - started  # not reached in these tests


def test_a_revocation_ends_the_wait_for_the_reply(
    stalled_daemon: int, lease: tuple[Lease, socket.socket]
) -> None:
    held, scheduler = lease
    scheduler.sendall(m.encode_revoked(1, LeaseRevoked(41, 1, "not ours")))
    threading.Timer(
        0.2, scheduler.sendall, [m.encode_revoked(1, LeaseRevoked(42, 1, "host gone"))]
    ).start()
    started = time.monotonic()
    with pytest.raises(LeaseLost, match="lease revoked: host gone"):
        _run(stalled_daemon, held)
    assert time.monotonic() - started < 5


def test_a_revocation_ends_a_send_the_host_does_not_read(
    stalled_daemon: int, lease: tuple[Lease, socket.socket]
) -> None:
    held, scheduler = lease
    threading.Timer(0.2, scheduler.shutdown, [socket.SHUT_WR]).start()
    started = time.monotonic()
    with pytest.raises(LeaseLost, match="closed the lease's connection"):
        _run(stalled_daemon, held, request=REQUEST + b"x" * (16 << 20))
    assert time.monotonic() - started < 5


def test_without_a_revocation_the_io_timeout_still_holds(
    stalled_daemon: int, lease: tuple[Lease, socket.socket]
) -> None:
    held, _ = lease
    with pytest.raises(HostFailure, match="timed out") as caught:
        _run(stalled_daemon, held, io_timeout=0.3)
    assert not isinstance(caught.value, LeaseLost)
