"""Ask the scheduler for a host, with blocking sockets (the wrapper's hot path).

One short connection per job: hello + lease request, the grant, then the
connection stays open while the job runs; closing it releases the lease.
Several schedulers may be listed (`CCFARM_SCHEDULER=a,b:3634`): the first
that answers is used.
"""

from __future__ import annotations

import _socket
import contextlib
import os

from ccfarm.client.job.net import connect as tcp_connect
from ccfarm.client.job.net import read_message
from ccfarm.control import messages as m
from ccfarm.control.codec import hello
from ccfarm.errors import CcfarmError, RemoteProtocolError
from ccfarm.model import CompilerIdentity, LeaseGranted, LeaseRequest

MYPY = False
if MYPY:
    from collections.abc import Callable


class NoLease(CcfarmError):
    """No scheduler answered (`answered` False), or it found no host in time."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered


def parse_schedulers(text: str) -> list[tuple[str, int]]:
    from ccfarm.addresses import SCHEDULER_PORT, parse_addresses

    return parse_addresses([text], SCHEDULER_PORT)


def client_name() -> str:
    """Fairness key: this machine and user (CCFARM_CLIENT_NAME overrides)."""
    if os.environ.get("CCFARM_CLIENT_NAME"):
        return os.environ["CCFARM_CLIENT_NAME"]
    user = os.environ.get("USER") or str(os.getuid())
    return f"{os.uname().nodename}/{user}"


class Lease:
    """A held lease; `release()` (or exit) gives the slot back."""

    def __init__(self, sock: _socket.socket, grant: LeaseGranted) -> None:
        self.sock = sock
        self.grant = grant

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(m.encode_release(self.grant.lease))
        self.sock.close()


def request_lease(
    schedulers: list[tuple[str, int]],
    compiler: CompilerIdentity | None,
    *,
    connect_timeout: float = 2.0,
    wait: float = 60.0,
    client: str | None = None,
    size: int = 0,
    connect: Callable[[str, int, float], _socket.socket] = tcp_connect,
) -> Lease:
    """A lease from the first scheduler that answers; NoLease otherwise.

    `connect(address, port, timeout)` opens the connection (a TCP socket
    by default; tests pass a fake scheduler's end).
    """
    last = "no scheduler configured"
    for address, port in schedulers:
        try:
            sock = connect(address, port, connect_timeout)
        except OSError as exc:
            last = f"{address}:{port}: {exc.strerror or exc}"
            continue
        try:
            req = LeaseRequest(1, client or client_name(), compiler, wait, size)
            sock.sendall(hello() + m.encode_lease_request(req))
            sock.settimeout(wait + connect_timeout)
            reply = read_message(sock)
            if reply.kind == m.LEASE_GRANTED:
                return Lease(sock, m.decode_granted(reply))
            if reply.kind != m.LEASE_REFUSED:
                raise RemoteProtocolError(f"unexpected answer {reply.kind}")
            refused = m.decode_refused(reply)
        except (OSError, CcfarmError) as exc:
            sock.close()
            last = f"{address}:{port}: {exc}"
            continue
        sock.close()
        raise NoLease(refused.reason, answered=True)
    raise NoLease(last, answered=False)
