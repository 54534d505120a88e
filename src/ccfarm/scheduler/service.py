"""The scheduler's asyncio shell: one TCP port, many kinds of connection.

The first bytes of a connection say what it is: `CCFC` a control connection
(compile hosts, wrappers, operators), `DIST` a distcc job (the proxy, a later
issue), an HTTP method (dashboard and metrics, a later issue). Decisions are
made by `core.Farm`; this module moves messages and arms the clock.

With a TLS certificate (`--tls-cert`), the port takes TLS connections beside
plain ones (`ccfarm.listener` tells them apart by their first byte);
`--tls-require` answers a control connection that is not TLS `FAIL`.
With a farm secret, a control connection must pass the handshake of
`protocol.auth` right after its hello, before any message; one that does
not is answered `FAIL` and closed. A host's name belongs to the connection
that first reported it, until that connection closes or the host times out;
a new connection from the same address may take it over (a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import resource
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ccfarm import tls
from ccfarm.control import messages as m
from ccfarm.control.codec import Message, MessageParser, encode
from ccfarm.control.sniff import CONTROL, connection_kind
from ccfarm.errors import RemoteProtocolError
from ccfarm.limits import ConnectionCaps, fd_headroom
from ccfarm.model import (
    HostReport,
    LeaseGranted,
    LeaseRefused,
    LeaseRevoked,
)
from ccfarm.protocol import auth
from ccfarm.protocol.tokens import TOKEN_SIZE
from ccfarm.scheduler.config import SchedulerConfig
from ccfarm.scheduler.core import Farm, Outcome
from ccfarm.scheduler.hostsinfo import HostInfo

if TYPE_CHECKING:
    import ssl

    from ccfarm.listener import Listener

log = logging.getLogger("ccfarm-scheduler")


class _Conn:
    """One control connection and what the farm holds for it."""

    def __init__(self, writer: asyncio.StreamWriter, peer: str, address: str = "?") -> None:
        self.writer = writer
        self.peer = peer
        #: the peer's IP address (its requests are capped per address, its host names are its own)
        self.address = address if address != "?" else peer.rpartition(":")[0]
        self.requests: dict[int, int] = {}  # scheduler request id -> client's id
        self.leases: dict[int, int] = {}  # lease -> client's id
        self.hosts: set[str] = set()  # the hosts this connection reported (HOST)
        self.refused: set[str] = set()  # the names it reported that are another's
        #: passed the farm secret's handshake (without a secret nobody does)
        self.authenticated = False

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)


class _Gate:
    """The connection caps, for the TLS listener (which counts a connection
    from its accept until it is handed over; nothing is evicted here)."""

    def __init__(self, caps: ConnectionCaps) -> None:
        self.admit = caps.admit
        self.leave = caps.leave

    def waiting(self, key: object, task: asyncio.Task[None]) -> None:
        pass

    def started(self, key: object) -> None:
        pass

    def was_evicted(self, key: object) -> bool:
        return False


class SchedulerService:
    def __init__(
        self,
        config: SchedulerConfig,
        hosts_info: dict[str, HostInfo] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        secret: bytes | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """`secret`: the farm secret (`--secret-file`); None accepts every peer.
        `tls_context`: the port's TLS (`tls.server_from`); None takes plain
        connections only."""
        self.config = config
        self.secret = secret
        self.tls_context = tls_context
        self.clock = clock
        self.hosts_info = hosts_info or {}
        self.farm = Farm(config.policy, rng or random.Random())
        self._next_request = 1
        self._by_request: dict[int, _Conn] = {}
        self._by_lease: dict[int, _Conn] = {}
        #: host -> the connection that last reported it: its close is the host leaving
        self._by_host: dict[str, _Conn] = {}
        self._server: asyncio.Server | Listener | None = None
        self._clock_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.stats = {"granted": 0, "refused": 0, "revoked": 0}
        #: the connections' tasks and writers, for `stop`
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        #: connections in total and per address; waiting requests per address
        self.caps = ConnectionCaps(
            fd_headroom(soft, 64, 1, config.max_connections), config.max_client_connections
        )
        self.waiting_caps = ConnectionCaps(
            1 << 40, config.max_client_waiting, "waiting lease requests"
        )

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on `sock` (bound already, by the command) or on the config's port."""
        if self.tls_context is not None:
            from ccfarm.listener import Listener

            if sock is None:
                sock = socket.create_server((self.config.listen, self.config.port), backlog=4096)
            listener = Listener(
                sock,
                self.handle_connection,
                self.tls_context,
                _Gate(self.caps),
                first_timeout=self.config.idle_timeout,
                handshake_timeout=self.config.io_timeout,
                log=log,
            )
            listener.start()
            self._server = listener
        elif sock is not None:
            self._server = await asyncio.start_server(self.handle_connection, sock=sock)
        else:
            self._server = await asyncio.start_server(
                self.handle_connection, self.config.listen, self.config.port, backlog=4096
            )
        self.start_clock()
        log.info("listening on %s", ", ".join(str(s.getsockname()) for s in self._server.sockets))

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, timeout: float = 2.0) -> None:
        """Stop listening and end every connection, which closes its leases
        (SIGTERM): the connections' tasks return instead of being cancelled
        when the loop closes (which logged a CancelledError for each)."""
        if self._server is not None:
            self._server.close()
        if self._clock_task is not None:
            self._clock_task.cancel()
            await asyncio.wait([self._clock_task], timeout=timeout)
        for task in self._tasks:
            writer = self._writers.get(task)
            if writer is not None:
                writer.transport.abort()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        log.info("stopped: %d hosts, %d leases held", len(self.farm.hosts), len(self.farm.leases))

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # -- the clock -------------------------------------------------------------------

    def start_clock(self) -> asyncio.Task[None]:
        """Start expiring deadlines (silent hosts, old leases, long waits).

        `start()` does it; tests that drive `handle_connection` over their
        own streams call it alone. The loop reads `clock`, which must run
        on the event loop's time base (the default, `time.monotonic`, is
        what asyncio's loops use).
        """
        if self._clock_task is None or self._clock_task.done():
            self._clock_task = asyncio.ensure_future(self._clock_loop())
        return self._clock_task

    async def _clock_loop(self) -> None:
        while True:
            deadline = self.farm.next_deadline()
            delay = 1.0 if deadline is None else max(0.0, min(1.0, deadline - self.clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._dispatch(self.farm.tick(self.clock()))

    # -- connections -----------------------------------------------------------------

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one accepted connection until it closes (the server's callback)."""
        peer = writer.get_extra_info("peername")
        name = f"{peer[0]}:{peer[1]}" if peer else "?"
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            self._writers[task] = writer
        address = str(peer[0]) if peer else "?"
        refused = self.caps.admit(address)
        try:
            if refused is not None:
                log.warning("refused %s: %s", name, refused)
                return
            first = await asyncio.wait_for(reader.readexactly(4), self.config.idle_timeout)
            if connection_kind(first) == CONTROL:
                await self._control(first, reader, writer, name, address)
            else:
                log.info(
                    "%s: unsupported connection kind %r (distcc proxy and HTTP come later)",
                    name,
                    first,
                )
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except RemoteProtocolError as exc:
            log.warning("%s: %s", name, exc)
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)
                self._writers.pop(task, None)
            if refused is None:
                self.caps.leave(address)

    async def _control(
        self,
        first: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        name: str,
        address: str = "?",
    ) -> None:
        conn = _Conn(writer, name, address)
        parser = MessageParser(expect_hello=True, max_message=m.MAX_MESSAGE_IN)
        rest = TOKEN_SIZE - len(first)
        hello = await asyncio.wait_for(reader.readexactly(rest), self.config.io_timeout)
        parser.receive_data(first + hello)
        try:
            for _ in parser.messages():  # the hello: checked, nothing more yet
                pass
        except RemoteProtocolError as exc:  # said, then the connection closes
            conn.send(encode(m.FAILED, {"reason": str(exc)[: m.MAX_REASON]}))
            raise
        if self.config.tls_require and not tls.is_tls(writer):
            conn.send(encode(m.FAILED, {"reason": "this scheduler takes TLS connections only"}))
            raise RemoteProtocolError("a control connection without TLS; --tls-require is set")
        fresh = True  # nothing after the hello yet
        if self.secret is not None:
            parser.receive_data(await self._authenticate(reader, writer))
            conn.authenticated, fresh = True, False
        # (asyncio's TCP transports set TCP_NODELAY themselves)
        try:
            for message in parser.messages():  # what came with the handshake's last token
                self._handle(conn, message)
            while True:
                # between messages a connection may idle (a wrapper holding its
                # lease, a host between heartbeats); inside one, the rest must
                # come within io_timeout, or a hung peer would hold it for ever
                read = reader.read(65536)
                if parser.buffered:
                    data = await asyncio.wait_for(read, self.config.io_timeout)
                elif not (conn.hosts or conn.leases or conn.requests):
                    # holding nothing, silence is only a cost: it may last idle_timeout
                    data = await asyncio.wait_for(read, self.config.idle_timeout)
                else:
                    data = await read
                if not data:
                    parser.receive_eof()
                    for _ in parser.messages():
                        pass
                    return
                if fresh and self.secret is None and auth.starts_handshake(data):
                    # a peer with a secret: it must not trust us, and it is told why
                    conn.send(encode(m.FAILED, {"reason": "this scheduler has no farm secret"}))
                    raise RemoteProtocolError("asked to authenticate; no --secret-file is set here")
                fresh = False
                try:
                    parser.receive_data(data)
                    for message in parser.messages():
                        self._handle(conn, message)
                except RemoteProtocolError as exc:  # said, then the connection closes
                    conn.send(encode(m.FAILED, {"reason": str(exc)[: m.MAX_REASON]}))
                    raise
        finally:
            self._connection_closed(conn)

    async def _authenticate(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes:
        """The farm secret's handshake, within `io_timeout` in all; the bytes
        that came after it. A peer that fails is told why (`FAIL`), and the
        RemoteProtocolError closes its connection."""
        assert self.secret is not None
        handshake = auth.Handshake(
            auth.SERVER, self.secret, os.urandom(auth.NONCE_SIZE), auth.CONTROL
        )
        try:
            async with asyncio.timeout(self.config.io_timeout):
                while not handshake.done:
                    data = await reader.read(4096)
                    if not data:
                        handshake.receive_eof()
                    writer.write(handshake.receive_data(data))
        except RemoteProtocolError as exc:
            writer.write(encode(m.FAILED, {"reason": str(exc)}))
            raise RemoteProtocolError(f"not authenticated: {exc}") from None
        return handshake.rest

    def _connection_closed(self, conn: _Conn) -> None:
        for request in list(conn.requests):
            self.farm.cancel(request)
            self._by_request.pop(request, None)
            self.waiting_caps.leave(conn.address)
        now = self.clock()
        for lease in list(conn.leases):
            self._by_lease.pop(lease, None)
            self._dispatch(self.farm.release(lease, now))
        for host in conn.hosts:
            # a host that reconnected is another connection's now: this late
            # close must not remove it
            if self._by_host.get(host) is conn:
                del self._by_host[host]
                self._dispatch(self.farm.host_gone(host, "host's connection closed", now))

    # -- messages --------------------------------------------------------------------

    def _handle(self, conn: _Conn, message: Message) -> None:
        now = self.clock()
        kind = message.kind
        if kind == m.LEASE_REQUEST:
            request_id = self._next_request
            self._next_request += 1
            client_id, req = m.decode_lease_request(message, request_id)
            too_many = self._too_many_waiting(conn)
            if too_many is not None:
                conn.send(m.encode_refused(client_id, LeaseRefused(request_id, too_many)))
                self.stats["refused"] += 1
                return
            conn.requests[request_id] = client_id
            self._by_request[request_id] = conn
            self._dispatch(self.farm.request(req, now))
            if request_id in conn.requests:  # it waits: say so now, the client bounds the wait
                conn.send(m.encode_queued(client_id))
        elif kind == m.LEASE_RELEASE:
            lease = m.decode_release(message)
            if conn.leases.pop(lease, None) is not None:
                self._by_lease.pop(lease, None)
                self._dispatch(self.farm.release(lease, now))
        elif kind == m.HOST_FAILED:
            lease, reason = m.decode_host_failed(message)
            if lease not in conn.leases:  # a client speaks only for its own leases
                log.info("%s: reported lease %d it does not hold", conn.peer, lease)
                return
            record = self.farm.leases.get(lease)
            host = record.host if record is not None else "?"
            log.info("%s: lease %d: host %s failed: %s", conn.peer, lease, host, reason)
            self._dispatch(self.farm.host_failed(lease, now))
        elif kind == m.HOST_REPORT:
            report = self._pinned(m.decode_host_report(message))
            owner = self._by_host.get(report.host)
            if (
                owner is not None
                and owner is not conn
                and owner.address != conn.address
                and report.host in self.farm.hosts
            ):
                # a name belongs to the connection that reported it first, until
                # that connection closes or the host times out; only the same
                # machine may take it over sooner (a restarted daemon whose old
                # connection is not closed yet)
                if report.host not in conn.refused:  # (once: it may say it every heartbeat)
                    conn.refused.add(report.host)
                    log.warning(
                        "%s: HOST %s, which %s reports; ignored", conn.peer, report.host, owner.peer
                    )
                return
            conn.hosts.add(report.host)
            self._by_host[report.host] = conn
            self._dispatch(self.farm.host_report(report, now))
            self._wake.set()
        elif kind == m.HOST_LEAVING:
            host = m.decode_host_name(message)
            if self._by_host.get(host) is conn:  # only the host's own connection speaks for it
                self._dispatch(self.farm.host_leaving(host, now))
            else:
                log.info("%s: BYEE for %s, which it did not report; ignored", conn.peer, host)
        elif kind == m.QUERY_HOSTS:
            conn.send(encode(m.HOST_LIST, *self.host_records()))
        elif kind == m.QUERY_JOBS:
            conn.send(encode(m.JOB_LIST, *self.job_records(now)))
        elif kind in (m.DISABLE, m.ENABLE):
            host = m.decode_host_name(message)
            if host not in self.farm.hosts:
                conn.send(encode(m.FAILED, {"reason": f"unknown host {host}"}))
                return
            self._dispatch(self.farm.set_disabled(host, kind == m.DISABLE, now))
            log.warning(
                "%s: host %s %s (%s)",
                conn.peer,
                host,
                "disabled" if kind == m.DISABLE else "enabled",
                "authenticated" if conn.authenticated else "unauthenticated: no farm secret",
            )
            conn.send(encode(m.OK, {"host": host}))
        else:
            raise RemoteProtocolError(f"unknown control message {kind}")

    def _too_many_waiting(self, conn: _Conn) -> str | None:
        """Why a new request of `conn` may not wait (and is refused), or None
        (then it counts against its address until granted, refused or gone)."""
        if len(conn.requests) >= self.config.max_waiting:
            return f"{len(conn.requests)} requests wait on this connection already"
        return self.waiting_caps.admit(conn.address)

    def _pinned(self, report: HostReport) -> HostReport:
        """Apply the operator's hosts-info (DMUCS) speed and CPU count."""
        from ccfarm._record import replace

        info = self.hosts_info.get(report.host) or self.hosts_info.get(report.address)
        if info is None:
            return report
        return replace(report, speed=info.power, cpus=info.cpus)

    def _dispatch(self, outcomes: list[Outcome]) -> None:
        if self.farm.journal:
            for news in self.farm.journal.take():
                log.info("%s", news.text())
        for outcome in outcomes:
            if isinstance(outcome, LeaseGranted):
                conn = self._by_request.pop(outcome.request, None)
                if conn is None:  # the client went away meanwhile
                    self._dispatch(self.farm.release(outcome.lease, self.clock()))
                    continue
                client_id = conn.requests.pop(outcome.request)
                self.waiting_caps.leave(conn.address)
                conn.leases[outcome.lease] = client_id
                self._by_lease[outcome.lease] = conn
                conn.send(m.encode_granted(client_id, outcome))
                self.stats["granted"] += 1
                if log.isEnabledFor(logging.DEBUG):
                    lease = self.farm.leases[outcome.lease]
                    log.debug(
                        "lease %d on %s to %s%s (held %d)",
                        outcome.lease,
                        outcome.host,
                        lease.request.client,
                        " express" if outcome.express else "",
                        self.farm.held(lease.request.client),
                    )
            elif isinstance(outcome, LeaseRefused):
                conn = self._by_request.pop(outcome.request, None)
                if conn is not None:
                    conn.send(m.encode_refused(conn.requests.pop(outcome.request), outcome))
                    self.waiting_caps.leave(conn.address)
                self.stats["refused"] += 1
            elif isinstance(outcome, LeaseRevoked):
                conn = self._by_lease.pop(outcome.lease, None)
                if conn is not None:
                    client_id = conn.leases.pop(outcome.lease, 0)
                    conn.send(m.encode_revoked(client_id, outcome))
                self.stats["revoked"] += 1

    # -- views -----------------------------------------------------------------------

    def host_records(self) -> list[dict[str, object]]:
        records: list[dict[str, object]] = []
        for name, host in sorted(self.farm.hosts.items()):
            r = host.report
            standing = self.farm.health.standing(name)
            if host.leaving:
                state = "leaving"
            elif host.disabled:
                state = "disabled"
            elif standing is not None:
                state = standing.value  # quarantined, probation
            else:
                state = "up" if host.offered else "busy"
            observed = self.farm.evidence.observed(name)
            records.append(
                {
                    "host": name,
                    "address": r.address,
                    "port": r.port,
                    "tier": host.tier,
                    # the speed the farm uses; the host's claim; what its jobs showed
                    "speed": f"{host.speed:.3g}",
                    "claimed": f"{r.speed:.3g}",
                    "observed": "-" if observed is None else f"{observed:.3g}",
                    "slots": r.slots,
                    "offered": host.offered,
                    "used": len(host.leases) + (host.express is not None),
                    "cpus": r.cpus,
                    "load": f"{r.load:.2f}",
                    "desktop": int(r.desktop_in_use),
                    "state": state,
                    "compiler": [c.text() for c in r.compilers],
                }
            )
        return records

    def job_records(self, now: float) -> list[dict[str, object]]:
        records: list[dict[str, object]] = []
        for lease in self.farm.leases.values():
            records.append(
                {
                    "state": "express" if lease.express else "running",
                    "lease": lease.lease,
                    "host": lease.host,
                    "client": lease.request.client,
                    "seconds": f"{now - lease.granted:.1f}",
                }
            )
        for req in self.farm.waiting():
            records.append(
                {
                    "state": "waiting",
                    "client": req.client,
                    "compiler": req.compiler.text() if req.compiler else "any",
                }
            )
        return records
