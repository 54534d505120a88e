"""The slot index: hosts, their free slots and express lanes per compiler and tier."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ccfarm.model import CompilerIdentity, HostReport, LeaseRequest
from ccfarm.scheduler.ledger import Lease
from ccfarm.scheduler.policy import Policy, tier_of
from ccfarm.scheduler.slots import ANY, SlotIndex, SlotPool

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
CLANG = CompilerIdentity("clang", "14.0.6", "x86_64-pc-linux-gnu")


def report(name: str, speed: float = 1.0, slots: int = 2, **kw: object) -> HostReport:
    fields: dict[str, object] = dict(
        host=name, address=name, port=3632, slots=slots, cpus=slots, speed=speed, load=0.0
    )
    fields.setdefault("compilers", (GCC,))
    fields.update(kw)
    return HostReport(**fields)  # type: ignore[arg-type]


def index(*reports: HostReport, seed: int = 1) -> SlotIndex:
    slots = SlotIndex(Policy(), random.Random(seed))
    for r in reports:
        slots.offer(slots.join(r, 0.0))
    return slots


def lease(lease_id: int, host: str, express: bool = False) -> Lease:
    return Lease(lease_id, LeaseRequest(lease_id, "m/u", None, 1.0), host, 0.0, 1.0, express, 1.0)


def test_pool_removes_in_o1_and_picks_by_free_slots() -> None:
    pool = SlotPool()
    for entry in [("a", 0), ("a", 1), ("a", 2), ("b", 0)]:
        pool.add(entry)
    pool.remove(("a", 0))  # the last entry takes its place
    assert pool.entries == [("b", 0), ("a", 1), ("a", 2)]
    pool.check()
    rng = random.Random(5)
    picks = Counter(pool.choose(rng) for _ in range(3000))
    assert 1.6 < picks["a"] / picks["b"] < 2.4  # two free slots against one
    pool.where[("b", 0)] = 2
    with pytest.raises(AssertionError):
        pool.check()


def test_pick_takes_the_fastest_tier_with_a_free_slot() -> None:
    slots = index(
        report("slow", 1.0), report("fast", 4.0, slots=1), report("c", 9.0, compilers=(CLANG,))
    )
    fast = slots.hosts["fast"]
    assert slots.pick(GCC) is fast and slots.candidates(GCC) == [fast]
    slots.take_slot(fast, 1)
    assert fast.free == 0 and slots.pick(GCC) is slots.hosts["slow"]
    assert slots.pick(ANY) is slots.hosts["c"]  # every host has ANY
    assert slots.pick(CompilerIdentity("gcc", "13", "aarch64")) is None
    slots.free_slot(fast, 1)
    assert slots.pick(GCC) is fast
    slots.check({})


def test_free_slots_follow_the_offer_and_the_leases() -> None:
    slots = index(report("a", slots=3))
    a = slots.hosts["a"]
    assert (a.offered, a.free, slots.offered_total) == (3, 3, 3)
    for n in (1, 2):
        slots.take_slot(a, n)
    slots.set_offered(a, 1)  # fewer slots than leases: none free, none negative
    assert a.free == 0 and slots.pick(GCC) is None
    slots.check({1: lease(1, "a"), 2: lease(2, "a")})
    slots.set_disabled(a, True)
    assert a.offered == 0 and a.disabled and slots.offered_total == 0
    slots.set_disabled(a, False)
    assert a.offered == 3 and a.free == 1
    slots.check({1: lease(1, "a"), 2: lease(2, "a")})


def test_express_lanes_open_with_an_offer_and_close_with_an_express_lease() -> None:
    slots = index(report("a", 4.0), report("b", 1.0))
    a, b = slots.hosts["a"], slots.hosts["b"]
    assert slots.pick_lane(GCC) is a
    slots.take_lane(a, 7)
    assert a.express == 7 and not a.lane_open and slots.pick_lane(GCC) is b
    slots.set_offered(b, 0)  # a host offering nothing takes no express job
    assert slots.pick_lane(GCC) is None
    slots.free_lane(a)
    assert slots.pick_lane(GCC) is a
    slots.check({})


def test_a_host_whose_tier_or_compilers_change_is_made_anew() -> None:
    slots = index(report("a", 1.0, slots=2))
    old = slots.hosts["a"]
    slots.take_slot(old, 1)
    slots.set_disabled(old, True)
    host = slots.join(report("a", 4.0, slots=2, compilers=(GCC, CLANG)), 5.0)
    assert host is not old and host.tier == tier_of(4.0, Policy()) and host.last_seen == 5.0
    assert host.leases == {1: None} and host.disabled and host.offered == 0
    assert slots.has_compiler(CLANG) and slots.offered_total == 0
    same = slots.join(report("a", 4.0, slots=2, compilers=(GCC, CLANG), load=0.5), 6.0)
    assert same is host and same.report.load == 0.5  # a heartbeat: same host
    slots.check({1: lease(1, "a")})


def test_a_heartbeat_recounts_job_tiers_only_when_speed_slots_or_cpus_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ccfarm.scheduler import slots as slots_module

    big = report("a", 1.0, slots=4096, cpus=1)
    index_ = index(big)
    host = index_.hosts["a"]
    counted: list[int] = []
    real = slots_module.job_tiers

    def counting(r: HostReport, speed: float, policy: Policy) -> tuple[int, ...]:
        counted.append(r.slots)
        return real(r, speed, policy)

    monkeypatch.setattr(slots_module, "job_tiers", counting)
    for beat in range(1, 50):  # a hostile 4,096-slot host beating: no recount
        assert index_.join(report("a", 1.0, slots=4096, cpus=1, load=0.1), beat) is host
    assert counted == []
    moved = index_.join(report("a", 1.0, slots=4096, cpus=4), 60.0)  # more CPUs: faster jobs
    assert moved is not host and counted
    assert moved.tiers == real(moved.report, 1.0, Policy())
    index_.check({})


def test_capacity_of_faster_tiers() -> None:
    slots = index(report("slow", 1.0, slots=4), report("mid", 2.0, slots=2), report("fast", 4.0))
    mid = slots.hosts["mid"]
    count, speed = slots.capacity.faster(GCC, mid.tier)
    assert (count, speed) == (2, 4.0)
    count, speed = slots.capacity.faster(GCC, slots.hosts["slow"].tier)
    assert count == 4 and speed == pytest.approx((2 * 2.0 + 2 * 4.0) / 4)
    assert slots.capacity.faster(CLANG, 0) == (0.0, 0.0)
    slots.set_offered(slots.hosts["fast"], 0)  # remembered sums follow the offer
    assert slots.capacity.faster(GCC, mid.tier) == (0.0, 0.0)
    slots.check({})
    assert slots.tier_order() == sorted({h.tier for h in slots.hosts.values()}, reverse=True)


def test_leave_forgets_the_host_and_its_compilers() -> None:
    slots = index(report("a", compilers=(CLANG,)), report("b"))
    a = slots.hosts["a"]
    slots.set_offered(a, 0)
    slots.leave(a)
    assert "a" not in slots.hosts and not slots.has_compiler(CLANG) and slots.has_compiler(ANY)
    slots.check({})


def test_check_finds_indexes_out_of_step_with_the_hosts() -> None:
    slots = index(report("a", slots=2), report("b", slots=2))
    a = slots.hosts["a"]
    a.offered = 1  # changed behind the index's back
    with pytest.raises(AssertionError):
        slots.check({})
    a.offered = 2
    slots.check({})
    with pytest.raises(AssertionError, match="leases on no host"):
        slots.check({5: lease(5, "a")})  # the ledger has a lease no host runs
    slots.take_slot(a, 5)
    with pytest.raises(AssertionError):
        slots.check({5: lease(5, "b")})  # on another host than it says
    slots.check({5: lease(5, "a")})
    a.leases[6] = None  # a lease the ledger does not know
    with pytest.raises(AssertionError):
        slots.check({5: lease(5, "a")})
    del a.leases[6]
    slots.capacity.faster(GCC, -100)
    slots.capacity._by_tier[GCC][a.tier][1] += 1.0  # speeds changed, sum not forgotten
    with pytest.raises(AssertionError, match="stale"):
        slots.check({5: lease(5, "a")})
