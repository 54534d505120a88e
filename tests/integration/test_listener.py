"""`ccfarm.listener.Listener` on a real loopback socket: plain bytes reach the
service whole, TLS is unwrapped, and the bounds hold before the first byte
(caps, eviction, the first byte's and the handshake's timeouts)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable

import pytest

from ccfarm import tls
from ccfarm.limits import ConnectionCaps
from ccfarm.listener import Listener
from tests.tlscerts import PKI, make_pki

log = logging.getLogger("test-listener")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


class Gate:
    """Caps, and the connections waiting for their first byte (to evict)."""

    def __init__(self, total: int = 100) -> None:
        self.caps = ConnectionCaps(total, total)
        self.unstarted: dict[object, asyncio.Task[None]] = {}
        self.evicted: set[object] = set()

    def admit(self, address: str) -> str | None:
        return self.caps.admit(address)

    def leave(self, address: str) -> None:
        self.caps.leave(address)

    def waiting(self, key: object, task: asyncio.Task[None]) -> None:
        self.unstarted[key] = task

    def started(self, key: object) -> None:
        self.unstarted.pop(key, None)

    def was_evicted(self, key: object) -> bool:
        return key in self.evicted

    def evict_one(self) -> None:
        key, task = next(iter(self.unstarted.items()))
        self.evicted.add(key)
        task.cancel()


Served = list[tuple[bool, bytes]]


async def _listening(
    pki: PKI, gate: Gate, served: Served, *, first: float = 5.0, handshake: float = 5.0
) -> tuple[Listener, int]:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(100)
        served.append((tls.is_tls(writer), data))
        writer.write(b"ok:" + data)
        await writer.drain()
        writer.close()

    context = tls.server_context(tls.TLSFiles(pki.host.cert, pki.host.key))
    sock = socket.create_server(("127.0.0.1", 0))
    listener = Listener(
        sock, handler, context, gate, first_timeout=first, handshake_timeout=handshake, log=log
    )
    listener.start()
    return listener, sock.getsockname()[1]


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 60))


async def _client(port: int, data: bytes, context: ssl.SSLContext | None = None) -> bytes:
    host = "127.0.0.1" if context is not None else None
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=host
    )
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


def test_plain_and_tls_connections_both_reach_the_service_whole(pki: PKI) -> None:
    async def test() -> None:
        gate, served = Gate(), []
        listener, port = await _listening(pki, gate, served)
        context = tls.client_context(tls.TLSFiles(ca=pki.ca))
        # every first byte but 0x16 is plain, and nothing of it is lost to the peek
        for first in (b"C", b"CCFC00000001", b"DIST00000001", b"\x03\x16x", b"\x00"):
            assert await _client(port, first) == b"ok:" + first
        assert await _client(port, b"CCFC00000001", context) == b"ok:CCFC00000001"
        listener.close()
        assert served[-1] == (True, b"CCFC00000001")
        assert all(not secure for secure, _ in served[:-1])
        assert gate.caps.open == 0

    _run(test)


def test_past_the_cap_a_connection_is_closed_before_its_first_byte(pki: PKI) -> None:
    async def test() -> None:
        gate, served = Gate(total=1), []
        listener, port = await _listening(pki, gate, served)
        _, silent = await asyncio.open_connection("127.0.0.1", port)  # holds the one place
        await _until(lambda: gate.caps.open == 1)
        assert await _client(port, b"DIST") == b""  # refused: closed unread
        silent.close()
        await _until(lambda: gate.caps.open == 0)
        assert await _client(port, b"DIST") == b"ok:DIST"
        listener.close()

    _run(test)


def test_a_silent_connection_may_be_evicted_or_times_out(pki: PKI) -> None:
    async def test() -> None:
        gate, served = Gate(), []
        listener, port = await _listening(pki, gate, served, first=0.5)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _until(lambda: len(gate.unstarted) == 1)
        gate.evict_one()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # after first_timeout
        writer.close()
        await _until(lambda: gate.caps.open == 0)
        assert served == []
        listener.close()

    _run(test)


def test_a_stalled_or_failed_handshake_is_closed_and_others_are_served(
    pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    async def test() -> None:
        gate, served = Gate(), []
        listener, port = await _listening(pki, gate, served, handshake=0.5)
        stalled = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for _, writer in stalled:
            writer.write(b"\x16\x03\x01\x02\x00")  # a record header, then nothing
        # a client that does not trust the server's CA fails; the server goes on
        wrong = tls.client_context(tls.TLSFiles(ca=pki.other_ca))
        with pytest.raises(ssl.SSLError):
            await _client(port, b"x", wrong)
        context = tls.client_context(tls.TLSFiles(ca=pki.ca))
        assert await _client(port, b"CCFC", context) == b"ok:CCFC"
        for reader, writer in stalled:
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        await _until(lambda: gate.caps.open == 0)
        listener.close()

    with caplog.at_level(logging.WARNING, "test-listener"):
        _run(test)
    assert sum("TLS handshake failed" in r.message for r in caplog.records) >= 6


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_closing_ends_the_connections_not_yet_handed_over(pki: PKI) -> None:
    async def test() -> None:
        gate, served = Gate(), []
        listener, port = await _listening(pki, gate, served)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _until(lambda: len(gate.unstarted) == 1)
        listener.close()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        await _until(lambda: gate.caps.open == 0)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    _run(test)
