"""The scheduler service within its bounds (virtual clock): connection caps,
waiting requests per connection and per address, silent connections that
hold nothing, and numbers out of range refused with a reason."""

from __future__ import annotations

import asyncio

import pytest

from ccfarm.control import messages as m
from ccfarm.control.codec import encode
from tests.component._control import SchedulerRig, host_report, lease_request
from tests.component._loop import idle, now


async def test_requests_beyond_the_per_connection_cap_are_refused_and_others_served() -> None:
    async with SchedulerRig(max_waiting=3, host_timeout=3600.0) as rig:
        await rig.host(host_report("h1", slots=1))
        holder = rig.peer(address="192.0.2.20")
        await holder.ask(lease_request("a/a"), kind=m.LEASE_GRANTED)
        flood = rig.peer()
        flood.send(*(lease_request("f/f", ident=i) for i in range(1, 11)))
        refusals = [m.decode_refused(await flood.receive(m.LEASE_REFUSED)) for _ in range(7)]
        assert [r.request for r in refusals] == list(range(4, 11))
        assert "3 requests wait on this connection already" in refusals[0].reason
        assert await flood.inbox_empty()
        assert flood.queued == [1, 2, 3]
        assert len([j for j in await rig.jobs() if j["state"] == "waiting"]) == 3
        # another client on its own connection still waits its turn, and gets it
        other = rig.peer(address="192.0.2.30")
        other.send(lease_request("o/o"))
        await idle()
        assert other.queued == [1]
        await flood.close()
        holder.send(m.encode_release(1))
        assert m.decode_granted(await other.receive(m.LEASE_GRANTED)).host == "h1"


async def test_waiting_requests_are_capped_per_address_across_connections() -> None:
    async with SchedulerRig(max_client_waiting=4, host_timeout=3600.0) as rig:
        await rig.host(host_report("h1", slots=0))
        peers = [rig.peer() for _ in range(3)]
        for peer in peers:
            peer.send(lease_request("x/x", ident=1), lease_request("x/x", ident=2))
        await idle()
        assert [len(p.queued) for p in peers] == [2, 2, 0]
        refused = [m.decode_refused(await peers[2].receive(m.LEASE_REFUSED)) for _ in range(2)]
        assert "4 waiting lease requests from 192.0.2.10 (limit 4)" in refused[0].reason
        await peers[0].close()  # its two requests end: room for two more
        peers[2].send(lease_request("x/x", ident=3))
        await idle()
        assert peers[2].queued == [3]
        elsewhere = rig.peer(address="192.0.2.40")
        elsewhere.send(lease_request("y/y"))
        await idle()
        assert elsewhere.queued == [1]


async def test_connections_beyond_the_cap_of_an_address_are_closed_at_once() -> None:
    async with SchedulerRig(max_client_connections=2) as rig:
        first, second = rig.peer(), rig.peer()
        await idle()
        third = rig.peer()
        opened = now()
        assert await third.closed()
        assert now() == opened
        other = rig.peer(address="192.0.2.50")
        assert (await other.ask(encode(m.QUERY_HOSTS), kind=m.HOST_LIST)).records == ()
        await first.close()
        again = rig.peer()
        assert (await again.ask(encode(m.QUERY_HOSTS), kind=m.HOST_LIST)).records == ()
        assert rig.service.caps.open == 3  # second, other and again
        assert rig.service.caps.of("192.0.2.10") == 2 and not second.eof


async def test_a_silent_connection_holding_nothing_is_closed_after_idle_timeout() -> None:
    async with SchedulerRig(idle_timeout=10.0, host_timeout=3600.0, max_wait=3600.0) as rig:
        await rig.host(host_report("h1", slots=1))
        holder = rig.peer(address="192.0.2.60")
        await holder.ask(lease_request(), kind=m.LEASE_GRANTED)
        waiter = rig.peer(address="192.0.2.61")
        waiter.send(lease_request("w/w", timeout=3600.0))
        silent = rig.peer(address="192.0.2.62")
        opened = now()
        assert await silent.closed()
        assert now() - opened == pytest.approx(10.0)
        await asyncio.sleep(100)  # a held lease and a waiting request keep theirs open
        assert not holder.eof and not waiter.eof
        holder.send(m.encode_release(1))
        assert m.decode_granted(await waiter.receive(m.LEASE_GRANTED)).lease == 2


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"slots": "1000000"}, "slots=1000000 is out of range"),
        ({"slots": "-5"}, "needs an integer 'slots'"),
        ({"speed": "inf"}, "needs a number 'speed'"),
        ({"speed": "nan"}, "needs a number 'speed'"),
    ],
)
async def test_a_host_report_out_of_range_is_refused_and_nothing_registered(
    fields: dict[str, str], says: str
) -> None:
    async with SchedulerRig() as rig:
        liar = rig.peer()
        report = {"host": "evil", "address": "10.9.9.9", "port": "3632", "slots": "4", "cpus": "4"}
        liar.send(encode(m.HOST_REPORT, {**report, **fields}))
        assert says in await liar.refused()
        assert await rig.hosts() == {}


async def test_a_lease_request_with_an_absurd_size_is_refused_with_the_reason() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        wrapper = rig.peer()
        wrapper.send(encode(m.LEASE_REQUEST, {"id": 1, "client": "c/c", "size": "1" + "0" * 400}))
        assert "needs an integer 'size'" in await wrapper.refused()
        assert await rig.jobs() == []
        assert (await rig.hosts())["h1"]["used"] == "0"
