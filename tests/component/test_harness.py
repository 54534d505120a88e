"""The tier's own machinery: the virtual clock and the in-memory streams."""

from __future__ import annotations

import asyncio

import pytest

from tests.component._loop import START, Stalled, idle, now, run
from tests.component._streams import CLIENT, SERVER, stream_pair


async def test_sleeping_takes_virtual_time_only() -> None:
    assert now() == START
    await asyncio.sleep(600)
    assert now() == START + 600


async def test_a_timeout_fires_at_its_exact_virtual_time() -> None:
    (reader, writer), (_, s_writer) = stream_pair()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 42)
    assert now() == START + 42
    writer.close()
    s_writer.close()


async def test_timers_fire_in_order() -> None:
    seen: list[int] = []

    async def after(seconds: float, tag: int) -> None:
        await asyncio.sleep(seconds)
        seen.append(tag)

    await asyncio.gather(after(3, 3), after(1, 1), after(2, 2))
    assert seen == [1, 2, 3]


async def test_idle_returns_when_every_task_waits_without_moving_the_clock() -> None:
    (reader, writer), (s_reader, s_writer) = stream_pair()
    writer.write(b"ping")
    await idle()
    assert s_reader._buffer == b"ping"  # type: ignore[attr-defined]
    assert now() == START
    writer.close()
    s_writer.close()
    assert await reader.read() == b""


def test_a_task_that_waits_for_ever_fails_the_test() -> None:
    async def forever() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(Stalled, match="no timer"):
        run(forever())


def test_a_periodic_timer_does_not_hide_a_stall() -> None:
    async def ticking() -> None:
        while True:
            await asyncio.sleep(1)

    with pytest.raises(Stalled, match="virtual clock passed"):
        run(ticking(), horizon=100)


async def test_streams_carry_bytes_eof_and_addresses() -> None:
    (reader, writer), (s_reader, s_writer) = stream_pair()
    assert writer.get_extra_info("peername") == SERVER
    assert s_writer.get_extra_info("peername") == CLIENT
    writer.write(b"hello ")
    writer.write(b"world")
    writer.write_eof()
    assert await s_reader.read() == b"hello world"
    s_writer.write(b"bye")
    s_writer.close()
    await s_writer.wait_closed()
    assert await reader.read() == b"bye"
    writer.close()


async def test_a_reader_that_does_not_read_blocks_the_writers_drain() -> None:
    (reader, writer), (s_reader, s_writer) = stream_pair(limit=1000)
    s_writer.write(b"x" * 5000)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(s_writer.drain(), 5)
    assert len(await reader.readexactly(5000)) == 5000
    await asyncio.wait_for(s_writer.drain(), 5)  # resumed once read
    writer.close()
    s_writer.close()
