"""Reading one request off a connection, within the daemon's bounds.

The bounds are decided by the pure `ccfarm.limits` objects and the
protocol's `Limits`; this shell applies them to a connection: connections
in total and per client address (`admit`), the time a request may take
(`idle_timeout` to start, `io_timeout` per read, `request_timeout` in all),
the memory of request bodies held at once (a body's declared size is
reserved from `body_memory` before it is read: a request waits for room,
and one that cannot get it in time is refused), and decompression, which
runs in a thread when a body is bigger than `INLINE_INFLATE` once
decompressed (so a bomb cannot stop the event loop) and stops at
`max_body` bytes. The same threads pack big replies (`off_loop`): the
packer runs at 10-40 MB/s, so a 1 MB object would hold the loop 50 ms.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ccfarm.daemon.config import DaemonConfig
from ccfarm.errors import RemoteProtocolError
from ccfarm.limits import ConnectionCaps, MemoryBudget, fd_headroom
from ccfarm.protocol import Inflate, Limits, Need, RequestEvent, RequestParser, compression

T = TypeVar("T")
MiB = 1 << 20
READ_SIZE = 256 * 1024
#: bodies that decompress to at most this much are decompressed on the event
#: loop (about a millisecond); bigger ones go to a thread
INLINE_INFLATE = 1 * MiB
#: threads that decompress big bodies (and pack big replies): at most this many
#: x max_body bytes of decompressed output exist at once, besides the bodies
#: in `body_memory`
CODEC_THREADS = 2
#: declared bodies up to this size are read without a reservation (each
#: connection then holds at most this much unaccounted for)
UNRESERVED = 64 * 1024
#: descriptors kept free of connections: logs, listening sockets, schedulers
FD_RESERVE = 32
#: descriptors a running job needs besides its connection (pipes, files)
FD_PER_JOB = 8


class ClientGone(Exception):
    """The client closed without sending anything (not an error)."""


class Bounds:
    """What one daemon allows all its connections together."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        body = config.max_body * MiB
        self.limits = Limits(
            max_body=body, max_plain_body=body, max_request_bytes=max(body, 16 * body)
        )
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.caps = ConnectionCaps(
            fd_headroom(
                soft,
                FD_RESERVE + FD_PER_JOB * (config.jobs + config.warm_pool_size),
                1,
                config.max_connections,
            ),
            config.max_client_connections,
        )
        self.budget = MemoryBudget(config.body_memory * MiB)
        self._waiters: dict[object, asyncio.Future[None]] = {}
        self._pool: ThreadPoolExecutor | None = None
        #: connections that have not sent a byte yet, oldest first
        self._unstarted: OrderedDict[object, asyncio.Task[None]] = OrderedDict()
        self.evicted = 0  # such connections closed to make room
        self._evicted: set[object] = set()

    # -- connections -----------------------------------------------------------------

    def admit(self, address: str) -> str | None:
        """None when a connection from `address` may be served, else why not.

        When every connection is taken, the one that has waited longest
        without sending a byte is closed to make room: connections that say
        nothing cannot keep jobs out (they are bounded per address anyway).
        """
        refused = self.caps.admit(address)
        if refused is not None and self.caps.full and self._unstarted:
            key, task = self._unstarted.popitem(last=False)
            self._evicted.add(key)
            task.cancel()
            self.evicted += 1
            return self.caps.admit(address, over_total=True)
        return refused

    def unstarted(self, key: object, task: asyncio.Task[None] | None) -> None:
        """A connection waits for its first byte (it may be closed to make room)."""
        if task is not None:
            self._unstarted[key] = task

    def started(self, key: object) -> None:
        self._unstarted.pop(key, None)

    def was_evicted(self, key: object) -> bool:
        """Was this connection's task cancelled to make room (and not for exit)?"""
        if key in self._evicted:
            self._evicted.discard(key)
            return True
        return False

    def leave(self, address: str) -> None:
        self.caps.leave(address)

    # -- the body budget --------------------------------------------------------------

    async def reserve(self, key: object, size: int, timeout: float) -> None:
        """Take `size` bytes of the budget, waiting at most `timeout` seconds."""
        granted = self.budget.request(key, size)
        if granted is False:
            raise RemoteProtocolError(
                f"a body of {size} bytes is larger than the memory for bodies"
            )
        if granted:
            return
        waiter = self._waiters[key] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), max(timeout, 0.0))
        except BaseException:
            self._waiters.pop(key, None)
            if waiter.done():  # granted just as we gave up: give it back
                self.release(size)
            else:
                self._wake(self.budget.cancel(key))
            raise
        self._waiters.pop(key, None)

    def release(self, size: int) -> None:
        self._wake(self.budget.release(size))

    def _wake(self, keys: list[object]) -> None:
        for key in keys:
            waiter = self._waiters.get(key)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    # -- decompression ------------------------------------------------------------------

    async def inflate(self, packed: bytes, limit: int) -> bytes:
        return await self.off_loop(compression.decompress, packed, limit)

    async def off_loop(self, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` in a codec thread (the codec lets go of the GIL)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(CODEC_THREADS, thread_name_prefix="ccfarmd-codec")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, work, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


async def request_events(
    reader: asyncio.StreamReader, bounds: Bounds, prefix: bytes = b"", started: bool = False
) -> AsyncIterator[RequestEvent]:
    """The events of one request, read within `bounds` (the last is
    RequestComplete): `prefix` is what was read of it already (by the farm
    secret's admission), `started` whether the client said anything yet.
    Raises TimeoutError, RemoteProtocolError, or `ClientGone` for a
    connection closed before its first byte."""
    config = bounds.config
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.request_timeout
    parser = RequestParser(bounds.limits, inline_inflate=INLINE_INFLATE)
    key = object()  # this connection, in the budget's queue
    held = 0  # bytes of the budget this connection holds for the body under way
    received = started
    parser.receive_data(prefix)
    try:
        while True:
            event = parser.next_event()
            if isinstance(event, Need):
                declared = parser.declared
                if declared > UNRESERVED and not held:
                    await bounds.reserve(key, declared, _left(loop, deadline, config.io_timeout))
                    held = declared
                wait = config.io_timeout if received else config.idle_timeout
                if not received:
                    bounds.unstarted(key, asyncio.current_task())
                try:
                    data = await asyncio.wait_for(
                        reader.read(READ_SIZE), _left(loop, deadline, wait)
                    )
                except asyncio.CancelledError:
                    if not bounds.was_evicted(key):
                        raise
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    raise ClientGone("closed to make room for others") from None
                if data:
                    if not received:
                        bounds.started(key)
                    received = True
                    parser.receive_data(data)
                elif not received:
                    raise ClientGone("closed without sending a request")
                else:
                    parser.receive_eof()
                continue
            if isinstance(event, Inflate):
                plain = await bounds.inflate(event.packed, event.limit)
                event = parser.inflated(plain)
            yield event
            if held:  # the body is on disk now: its room goes to the next one
                bounds.release(held)
                held = 0
    finally:
        bounds.started(key)
        parser.close()
        if held:
            bounds.release(held)


def _left(loop: asyncio.AbstractEventLoop, deadline: float, wait: float) -> float:
    """`wait`, or less if the request's deadline comes first."""
    return max(0.0, min(wait, deadline - loop.time()))


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Out of descriptors, asyncio's accept loop reports each failed accept
    with a traceback (and retries a second later): make that one warning
    line (which the log's rate limit then thins out)."""
    previous = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            logging.getLogger("ccfarmd").warning("cannot accept connections: %s", exc.strerror)
        elif isinstance(exc, ValueError) and "_start_serving" in repr(context.get("handle")):
            pass  # an accept retry armed before the server closed (at exit)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
