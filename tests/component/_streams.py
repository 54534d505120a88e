"""In-memory connections: asyncio stream pairs with no socket behind them.

`connect(handler)` gives the test a client's (reader, writer) and runs
`handler(reader, writer)` on the other end, the way `asyncio.start_server`
calls a service's `handle_connection`. Each end has a peer address (the
daemon's access list reads it), bytes arrive in order on the next loop
iteration, closing one end is EOF at the other, and flow control is real:
an end whose reader holds more than twice its limit unread pauses the other
end's writer, so `drain()` blocks until the reader catches up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CLIENT = ("192.0.2.10", 40000)
SERVER = ("192.0.2.1", 3632)


class _End(asyncio.Transport):
    """One end of an in-memory connection, as its protocol sees it."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, extra: dict[str, Any]
    ) -> None:
        super().__init__(extra)
        self._loop = loop
        self._protocol = protocol
        self.peer: _End | None = None
        self._closing = False
        self._eof_written = False
        self._lost = False
        self._received_eof = False

    # -- sending -------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._eof_written or not data:
            return
        assert self.peer is not None
        self._loop.call_soon(self.peer._receive, bytes(data))

    def write_eof(self) -> None:
        if not self._eof_written and not self._closing:
            self._eof_written = True
            assert self.peer is not None
            self._loop.call_soon(self.peer._receive_eof)

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        assert self.peer is not None
        if not self._eof_written:
            self._loop.call_soon(self.peer._receive_eof)
        self._loop.call_soon(self._connection_lost)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    # -- flow control: this end's reader is full, so the peer's writer pauses ----------

    def pause_reading(self) -> None:
        if self.peer is not None and not self.peer._lost:
            self.peer._protocol.pause_writing()

    def resume_reading(self) -> None:
        if self.peer is not None and not self.peer._lost:
            self.peer._protocol.resume_writing()

    def is_reading(self) -> bool:
        return True

    # -- receiving -----------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        if not self._lost and not self._received_eof:
            self._protocol.data_received(data)

    def _receive_eof(self) -> None:
        if not self._lost and not self._received_eof:
            self._received_eof = True
            self._protocol.eof_received()

    def _connection_lost(self) -> None:
        if not self._lost:
            self._lost = True
            self._protocol.connection_lost(None)


def stream_pair(
    a: tuple[str, int] = CLIENT, b: tuple[str, int] = SERVER, *, limit: int = 2**16
) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], ...]:
    """Two connected (reader, writer) ends; `a` is the first end's address."""
    loop = asyncio.get_running_loop()
    ends = []
    for here, there in ((a, b), (b, a)):
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport = _End(loop, protocol, {"peername": there, "sockname": here})
        protocol.connection_made(transport)
        ends.append((reader, asyncio.StreamWriter(transport, protocol, reader, loop), transport))
    ends[0][2].peer, ends[1][2].peer = ends[1][2], ends[0][2]
    return tuple((reader, writer) for reader, writer, _ in ends)


def connect(
    handler: Handler,
    *,
    client: tuple[str, int] | None = CLIENT,
    server: tuple[str, int] = SERVER,
    limit: int = 2**16,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.Task[None]]:
    """A client end connected to `handler`, which runs as a task (returned).

    `client=None` is a peer without an address (as a Unix socket has).
    """
    (reader, writer), (s_reader, s_writer) = stream_pair(client or ("", 0), server, limit=limit)
    if client is None:
        s_writer.transport._extra["peername"] = None  # type: ignore[attr-defined]
    task = asyncio.ensure_future(handler(s_reader, s_writer))
    return reader, writer, task
