"""The scheduler service re-tiers a host whose jobs contradict its claimed
speed, and operators see both (QHST's `speed`, `claimed`, `observed`).

Wrappers ask for leases with their jobs' sizes and release each when its
host, of the true speed, would have finished it (on virtual time).
"""

from __future__ import annotations

import asyncio
import collections
import random

from ccfarm.control import messages as m
from ccfarm.model import LeaseRequest
from tests.component._control import SchedulerRig, host_report


def _seconds(size: int, speed: float) -> float:
    return (0.05 + 1e-5 * size) / speed


async def _build(
    rig: SchedulerRig, sizes: list[int], true: dict[str, float]
) -> collections.Counter[str]:
    """`make -j8` of jobs of `sizes`: where each ran."""
    where: collections.Counter[str] = collections.Counter()
    gate = asyncio.Semaphore(8)

    async def job(ident: int, size: int) -> None:
        async with gate:
            wrapper = rig.peer()
            request = LeaseRequest(ident, "alice-laptop/alice", None, 600.0, size)
            grant = m.decode_granted(
                await wrapper.ask(m.encode_lease_request(request), kind=m.LEASE_GRANTED)
            )
            where[grant.host] += 1
            await asyncio.sleep(_seconds(size, true[grant.host]))
            wrapper.send(m.encode_release(grant.lease))
            await wrapper.close()
            rig.peers.remove(wrapper)

    await asyncio.gather(*(job(i + 1, size) for i, size in enumerate(sizes)))
    return where


async def test_a_host_claiming_speed_100_is_listed_with_what_it_showed_and_retiered() -> None:
    rng = random.Random(11)
    true = {"h1": 1.0, "h2": 1.0, "h3": 1.0, "h4": 1.0}
    async with SchedulerRig(host_timeout=3600.0) as rig:
        for name in ("h1", "h2", "h3"):
            await rig.host(host_report(name, slots=2, speed=1.0))
        liar_agent = await rig.host(host_report("h4", slots=2, speed=100.0))  # no faster
        assert (await rig.hosts())["h4"]["observed"] == "-"  # nothing known yet
        first = await _build(rig, [rng.randint(10_000, 200_000) for _ in range(40)], true)
        assert first["h4"] < 39, first
        hosts = await rig.hosts()
        liar = hosts["h4"]
        assert liar["claimed"] == "100"
        assert 0.9 < float(liar["observed"]) < 1.1 and 0.9 < float(liar["speed"]) < 1.1
        assert liar["tier"] == hosts["h1"]["tier"]  # re-tiered with the honest hosts
        for name in ("h1", "h2", "h3"):  # honest: not moved
            assert (hosts[name]["speed"], hosts[name]["claimed"]) == ("1", "1")
        second = await _build(rig, [rng.randint(10_000, 200_000) for _ in range(40)], true)
        assert second["h4"] <= 15, second  # a fair share is 10 of 40
        # its heartbeats (still claiming 100) do not undo the evidence
        liar_agent.send(m.encode_host_report(host_report("h4", slots=2, speed=100.0)))
        await asyncio.sleep(0.1)
        assert float((await rig.hosts())["h4"]["speed"]) < 1.1
