"""One port for TLS and plain connections (a service's shell, with `tls`).

`asyncio.start_server` reads a connection as soon as it is accepted, so it
cannot hand a TLS ClientHello to the TLS layer afterwards. `Listener`
accepts raw sockets itself, counts each against the service's caps at once
(`Gate.admit`), waits for the first bytes within `first_timeout` and peeks
at them (MSG_PEEK: nothing is consumed), then builds the asyncio streams
over the socket: through TLS (the handshake within `handshake_timeout`)
when `tls.first_bytes` says so, plain otherwise. The service's
`handle_connection(reader, writer)` then serves it as it serves every
connection; it counts the connection against its caps again, so the
listener's count ends just before (no await between: the cap is never
open to another connection meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol

from ccfarm import tls

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
#: bytes peeked at: enough for `tls.first_bytes`
PEEK = 2
#: stream buffer limit, asyncio's default
LIMIT = 1 << 16


class Gate(Protocol):
    """The service's bounds on connections, applied before the first byte."""

    def admit(self, address: str) -> str | None:
        """None to let a connection from `address` in (counted), else why not."""

    def leave(self, address: str) -> None: ...

    def waiting(self, key: object, task: asyncio.Task[None]) -> None:
        """The connection waits for its first byte: it may be cancelled to make room."""

    def started(self, key: object) -> None: ...

    def was_evicted(self, key: object) -> bool: ...


class Listener:
    """Accept on `sock` (bound and listening); each connection, TLS or not,
    goes to `handler`. The subset of `asyncio.Server` the services use."""

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        context: ssl.SSLContext,
        gate: Gate,
        *,
        first_timeout: float,
        handshake_timeout: float,
        log: logging.Logger,
    ) -> None:
        self.sockets = [sock]
        self._sock = sock
        self._handler = handler
        self._context = context
        self._gate = gate
        self._first_timeout = first_timeout
        self._handshake_timeout = handshake_timeout
        self._log = log
        #: connections not handed to the handler yet (cancelled by `close`)
        self._opening: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sock.setblocking(False)
        self._accepting = asyncio.ensure_future(self._accept_loop())

    def close(self) -> None:
        """Stop accepting (connections being served go on)."""
        if self._accepting is not None:
            self._accepting.cancel()
        for task in self._opening:
            task.cancel()
        self._sock.close()

    async def serve_forever(self) -> None:
        assert self._accepting is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._accepting

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._log.warning("cannot accept connections: %s", exc.strerror)
                    await asyncio.sleep(1.0)  # (as asyncio's own accept loop does)
                    continue
                if self._sock.fileno() < 0:  # closed
                    return
                self._log.warning("accept failed: %s", exc)
                continue
            task = asyncio.ensure_future(self._one(conn))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _one(self, conn: socket.socket) -> None:
        try:
            peer = conn.getpeername()
        except OSError:
            conn.close()
            return
        address = str(peer[0])
        name = f"{peer[0]}:{peer[1]}"
        refused = self._gate.admit(address)
        if refused is not None:
            self._log.warning("refused %s: %s", name, refused)
            conn.close()
            return
        streams = None
        task = asyncio.current_task()
        try:
            streams = await self._open(conn, name)
        except Exception:  # (a bug: one line and a traceback, and the others go on)
            self._log.exception("internal error opening %s", name)
        finally:
            self._gate.leave(address)
            if streams is None:
                conn.close()
        if streams is not None:
            if task is not None:
                self._opening.discard(task)  # served now: `close` leaves it be
            await self._handler(*streams)

    async def _open(
        self, conn: socket.socket, name: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The connection's streams, through TLS if it starts so; None when it
        said nothing in time, was closed to make room, or failed the TLS
        handshake (logged)."""
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        key = object()
        task = asyncio.current_task()
        assert task is not None
        self._gate.waiting(key, task)
        try:
            first = await asyncio.wait_for(_peek(loop, conn), self._first_timeout)
        except asyncio.CancelledError:
            if not self._gate.was_evicted(key):
                raise
            task.uncancel()
            self._log.debug("%s: closed to make room for others", name)
            return None
        except TimeoutError:
            self._log.debug("%s: nothing sent within %g s", name, self._first_timeout)
            return None
        except OSError:
            return None
        finally:
            self._gate.started(key)
        kind = tls.first_bytes(first)
        reader = asyncio.StreamReader(limit=LIMIT)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            if kind == tls.TLS:  # (asyncio sets TCP_NODELAY either way)
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    conn,
                    ssl=self._context,
                    ssl_handshake_timeout=self._handshake_timeout,
                )
            else:  # plain, or closed before a byte: the service says what it is
                transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn)
        except (OSError, TimeoutError) as exc:  # (ssl.SSLError is an OSError)
            if kind == tls.TLS:
                self._log.warning("%s: TLS handshake failed: %s", name, _why(exc))
            return None
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The first bytes `conn` has (b"" once it is closed), left in place."""
    while True:
        try:
            return conn.recv(PEEK, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            pass
        await _readable(loop, conn.fileno())


async def _readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


__all__ = ["Gate", "Listener"]
