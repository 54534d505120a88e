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
import time

from ccfarm.client.job.net import authenticate, read_message
from ccfarm.client.job.net import connect as tcp_connect
from ccfarm.control import messages as m
from ccfarm.control.codec import Message, MessageParser, hello
from ccfarm.errors import CcfarmError, ConfigError, RemoteProtocolError
from ccfarm.model import LOCAL, CompilerIdentity, LeaseGranted, LeaseRequest

MYPY = False
if MYPY:
    import ssl
    from collections.abc import Callable
    from typing import TypeVar

    from ccfarm.client.job.fallback import UseHostLists

    Local = TypeVar("Local")


#: while a request waits, how often the client's own free slot is looked for
LOCAL_POLL = 0.05


class NoLease(CcfarmError):
    """No scheduler answered (`answered` False), or it found no host in time,
    or (`local`) it says the job is better compiled on the client's machine."""

    def __init__(self, message: str, *, answered: bool, local: bool = False) -> None:
        super().__init__(message)
        self.answered = answered
        self.local = local


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


class SchedulerMarks:
    """The state directory's marks of schedulers that failed (unreachable,
    silent, garbage), shared by every job and `ccfarm-gethost` here: a
    marked scheduler is skipped for the backoff `period`; one that answers
    is unmarked at once."""

    def __init__(self, state: str, period: float) -> None:
        self.state = state
        self.period = period

    def to_ask(self, schedulers: list[tuple[str, int]]) -> list[tuple[str, int]] | UseHostLists:
        """The schedulers not marked lately, in order (UseHostLists: none is left)."""
        from ccfarm.client.hosts.slots import is_scheduler_backed_off
        from ccfarm.client.job.fallback import schedulers_to_ask

        now = time.time()
        marks = [
            is_scheduler_backed_off(self.state, address, port, now=now, period=self.period)
            for address, port in schedulers
        ]
        return schedulers_to_ask(schedulers, marks)

    def failed(self, address: str, port: int) -> None:
        from ccfarm.client.hosts.slots import mark_scheduler_backoff

        if self.period > 0:
            mark_scheduler_backoff(self.state, address, port)

    def answered(self, address: str, port: int) -> None:
        from ccfarm.client.hosts.slots import clear_scheduler_backoff

        clear_scheduler_backoff(self.state, address, port)


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
    main: int = 0,
    connect: Callable[[str, int, float], _socket.socket] = tcp_connect,
    failed: Callable[[str, int], None] | None = None,
    secret: bytes | None = None,
    tls: ssl.SSLContext | None = None,
    answered: Callable[[str, int], None] | None = None,
    local: Callable[[], Local | None] | None = None,
    local_slot: bool = False,
    local_speed: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> Lease | Local:
    """A lease from the first scheduler that answers; NoLease otherwise.

    `connect_timeout` bounds the connect and, separately, the scheduler's
    first answer (a grant, a refusal, or "queued"); after "queued" the
    grant may take `wait` more (the scheduler refuses by then).
    `connect(address, port, timeout)` opens the connection (a TCP socket
    by default; tests pass a fake scheduler's end). `failed(address, port)`
    hears of each scheduler that failed (unreachable, silent, garbage),
    `answered(address, port)` of the one that answered.

    The client's own machine: `local_slot` says the caller holds a free
    local slot (a scheduler then grants a host faster than `local_speed`,
    or refuses with LOCAL: NoLease with `local` set). While a request waits,
    `local()` is asked every LOCAL_POLL seconds for a local slot (first at
    once, after "queued"); the first it gives ends the wait (the request is
    withdrawn by closing its connection) and is returned in place of a lease.
    With the farm `secret`, a scheduler must prove it knows it before the
    request is sent (one round trip more); one that does not has failed.
    With `tls` (CCFARM_TLS_CA), the connection is TLS and the scheduler's
    certificate must name the address dialled (the handshake within
    `connect_timeout`); one whose certificate does not pass has failed.
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
            if tls is not None:
                from ccfarm.client.job.net import secure

                sock = secure(sock, tls, address)
            req = LeaseRequest(
                1,
                client or client_name(),
                compiler,
                wait,
                size,
                local_slot,
                local_speed,
                main,
            )
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
                if answered is not None:
                    answered(address, port)
                waited = _wait(sock, parser, clock() + wait + connect_timeout, local, clock)
                if not isinstance(waited, Message):
                    sock.close()  # withdraws the request (a grant meanwhile is released)
                    return waited
                reply = waited
            if reply.kind == m.LEASE_GRANTED:
                lease = Lease(sock, m.decode_granted(reply), parser)
                if answered is not None:
                    answered(address, port)
                return lease
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
        if answered is not None:
            answered(address, port)
        if refused.reason == LOCAL:
            raise NoLease(refused.note or LOCAL, answered=True, local=True)
        raise NoLease(refused.reason, answered=True)
    raise NoLease(last, answered=False)


def _wait(
    sock: _socket.socket,
    parser: MessageParser,
    deadline: float,
    local: Callable[[], Local | None] | None,
    clock: Callable[[], float],
) -> Message | Local:
    """The answer to a waiting request, or first a local slot from `local()`
    (an answer already read wins).

    TimeoutError once `deadline` passes. A message that comes in parts is
    kept by `parser` across the polls.
    """
    while True:
        message = parser.next_message()
        if message is not None:  # it came with "queued", or in the last read
            return message
        if local is not None:
            slot = local()
            if slot is not None:
                return slot
        left = deadline - clock()
        if left <= 0:
            raise TimeoutError("no answer in time")
        sock.settimeout(min(left, LOCAL_POLL) if local is not None else left)
        try:
            return read_message(sock, parser)
        except TimeoutError:
            continue
