"""Ask the scheduler for a host, with blocking sockets (the wrapper's hot path).

One short connection per job: hello + lease request, the grant (or first
"queued", then the grant), then the connection stays open while the job
runs: the scheduler may revoke the lease on it, the wrapper reports a failed
host on it, and closing it releases the lease.
Several schedulers may be listed (`CCFARM_SCHEDULER=a,b:3634`): the first
that answers is used.
"""

from __future__ import annotations

import _socket
import contextlib
import os
import sys

from ccfarm.client.job.net import authenticate, read_message
from ccfarm.client.job.net import connect as tcp_connect
from ccfarm.control import messages as m
from ccfarm.control.codec import MessageParser, hello
from ccfarm.errors import CcfarmError, ConfigError, RemoteProtocolError
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
    """CCFARM_SCHEDULER's entries; a bad one is skipped with a warning line
    (the build goes on, as with a scheduler that does not answer)."""
    from ccfarm.addresses import SCHEDULER_PORT, parse_address

    found = []
    for item in text.replace(" ", ",").split(","):
        try:
            if item:
                found.append(parse_address(item, SCHEDULER_PORT))
        except ConfigError as exc:
            sys.stderr.write(f"ccfarm: CCFARM_SCHEDULER: {exc} (ignored)\n")
    return found


def client_name() -> str:
    """Fairness key: this machine and user (CCFARM_CLIENT_NAME overrides)."""
    if os.environ.get("CCFARM_CLIENT_NAME"):
        return os.environ["CCFARM_CLIENT_NAME"]
    user = os.environ.get("USER") or str(os.getuid())
    return f"{os.uname().nodename}/{user}"


class Lease:
    """A held lease; `release()` (or exit) gives the slot back.

    While its job runs, the connection is watched (`lost()`): the scheduler
    revokes a lease whose host left or hung.
    """

    def __init__(self, sock: _socket.socket, grant: LeaseGranted, parser: MessageParser) -> None:
        self.sock = sock
        self.grant = grant
        self._parser = parser  # holds any bytes that came after the grant

    def lost(self) -> str:
        """Why the lease is gone ("" if it is not); call when its connection is readable."""
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            return f"lease connection failed: {exc.strerror or exc}"
        if not data:
            return "the scheduler closed the lease's connection"
        self._parser.receive_data(data)
        try:
            for message in self._parser.messages():
                if message.kind == m.LEASE_REVOKED:
                    revoked = m.decode_revoked(message)
                    if revoked.lease == self.grant.lease:
                        return f"lease revoked: {revoked.reason}"
        except CcfarmError as exc:
            return f"the scheduler sent garbage: {exc}"
        return ""

    def report_failed(self, reason: str) -> None:
        """Tell the scheduler the leased host failed the job (best effort)."""
        with contextlib.suppress(OSError):
            self.sock.sendall(m.encode_host_failed(self.grant.lease, reason))

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
    failed: Callable[[str, int], None] | None = None,
    secret: bytes | None = None,
) -> Lease:
    """A lease from the first scheduler that answers; NoLease otherwise.

    `connect_timeout` bounds the connect and, separately, the scheduler's
    first answer (a grant, a refusal, or "queued"); after "queued" the
    grant may take `wait` more (the scheduler refuses by then).
    `connect(address, port, timeout)` opens the connection (a TCP socket
    by default; tests pass a fake scheduler's end). `failed(address, port)`
    hears of each scheduler that failed (unreachable, silent, garbage).
    With the farm `secret`, a scheduler must prove it knows it before the
    request is sent (one round trip more); one that does not has failed.
    """
    last = "no scheduler configured"
    for address, port in schedulers:
        try:
            sock = connect(address, port, connect_timeout)
        except OSError as exc:
            last = f"{address}:{port}: {exc.strerror or exc}"
            if failed is not None:
                failed(address, port)
            continue
        try:
            req = LeaseRequest(1, client or client_name(), compiler, wait, size)
            sock.settimeout(connect_timeout)
            parser = MessageParser(expect_hello=False)
            if secret is None:
                sock.sendall(hello() + m.encode_lease_request(req))
            else:
                from ccfarm.protocol.auth import CONTROL

                proof, rest = authenticate(sock, secret, CONTROL, hello())
                sock.sendall(proof + m.encode_lease_request(req))
                parser.receive_data(rest)
            reply = read_message(sock, parser)
            if reply.kind == m.LEASE_QUEUED:
                m.decode_queued(reply)
                sock.settimeout(wait + connect_timeout)
                reply = read_message(sock, parser)
            if reply.kind == m.LEASE_GRANTED:
                return Lease(sock, m.decode_granted(reply), parser)
            if reply.kind == m.FAILED:
                raise RemoteProtocolError(reply.first().get("reason") or "failed")
            if reply.kind != m.LEASE_REFUSED:
                raise RemoteProtocolError(f"unexpected answer {reply.kind}")
            refused = m.decode_refused(reply)
        except (OSError, CcfarmError) as exc:
            sock.close()
            last = f"{address}:{port}: {exc}"
            if failed is not None:
                failed(address, port)
            continue
        sock.close()
        raise NoLease(refused.reason, answered=True)
    raise NoLease(last, answered=False)
