"""The daemon service within its bounds (virtual clock, fake compiler):
connection caps, the whole-request deadline, the memory budget for bodies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.component._daemon import DaemonRig, plain_request
from tests.component._loop import idle, now

MiB = 1 << 20


async def test_connections_beyond_the_cap_of_an_address_are_closed_unanswered(
    tmp_path: Path,
) -> None:
    async with DaemonRig(tmp_path, max_client_connections=2) as rig:
        rig.compiler.hold = True
        held = [rig.client(("192.0.2.10", 40000 + i)) for i in range(2)]
        for client in held:
            client.send(plain_request())
        await idle()
        extra = rig.client(("192.0.2.10", 40100))
        extra.send(plain_request())
        opened = now()
        assert await extra.received() == b""
        assert now() == opened
        assert any("(limit 2)" in line for line in rig.logs(30))
        other = rig.client(("192.0.2.11", 40000))  # another address is served
        other.send(plain_request())
        rig.compiler.hold = False
        for proc in rig.compiler.started:
            proc.finish()
        assert (await other.reply()).wait_status == 0
        for client in held:
            assert (await client.reply()).wait_status == 0
        assert rig.service.bounds.caps.open == 0


async def test_a_trickled_request_ends_at_the_request_timeout(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, io_timeout=60.0, request_timeout=300.0) as rig:
        request = plain_request(source=b"x" * 1000)
        client = rig.client()
        opened = now()
        for i in range(len(request)):  # a byte every 50 s: each read is in time
            client.send(request[i : i + 1])
            await asyncio.sleep(50)
            if client.reader.at_eof():
                break
        assert await client.received() == b""
        assert now() - opened == pytest.approx(300.0, abs=50.0)
        assert rig.compiler.started == []


def _declared_only(size: int) -> bytes:
    """A protocol-1 request whose DOTI declares `size` bytes and sends none."""
    request = plain_request(source=b"")
    return request[:-12] + b"DOTI%08x" % size


async def test_bodies_wait_for_room_in_the_budget_then_go_on(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, body_memory=1, io_timeout=60.0) as rig:
        big = b"y" * (700 * 1024)
        first = rig.client(("192.0.2.10", 40001))
        first.send(_declared_only(len(big)))  # holds 700 KiB of the 1 MiB, sends nothing
        await idle()
        assert rig.service.bounds.budget.used == len(big)
        second = rig.client(("192.0.2.10", 40002))
        second.send(plain_request(source=big))
        await idle()
        assert rig.service.bounds.budget.waiting == 1  # no room: it waits
        assert rig.compiler.started == []
        first.writer.close()  # the first gives up: its room goes to the second
        reply = await second.reply()
        assert reply.wait_status == 0 and len(rig.compiler.started) == 1
        assert rig.service.bounds.budget.used == 0


async def test_a_body_that_finds_no_room_in_time_is_refused(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, body_memory=1, io_timeout=60.0) as rig:
        hog = rig.client(("192.0.2.10", 40001))
        hog.send(_declared_only(900 * 1024))
        await idle()
        late = rig.client(("192.0.2.10", 40002))
        late.send(_declared_only(500 * 1024))
        started = now()
        assert await late.received() == b""
        assert now() - started == pytest.approx(60.0)
        assert await hog.received() == b""  # its own reads timed out meanwhile
        assert rig.service.bounds.budget.used == 0 and rig.service.bounds.budget.waiting == 0


async def test_a_body_larger_than_the_limits_is_refused_at_once(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, body_memory=1, max_body=2) as rig:
        for size in (2 * MiB + 1, 3 * MiB // 2):  # over max_body; over the budget
            client = rig.client()
            opened = now()
            client.send(_declared_only(size))
            assert await client.received() == b""
            assert now() == opened
        assert any("exceeds the limit" in line for line in rig.logs(30))
        assert any("larger than the memory for bodies" in line for line in rig.logs(30))
