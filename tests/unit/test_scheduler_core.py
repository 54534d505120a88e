"""The scheduler core on scripted timelines (explicit `now`, seeded randomness)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ccfarm._record import replace
from ccfarm.model import (
    CompilerIdentity,
    HostReport,
    LeaseGranted,
    LeaseRefused,
    LeaseRequest,
    LeaseRevoked,
)
from ccfarm.scheduler import core
from ccfarm.scheduler.core import Farm
from ccfarm.scheduler.policy import Policy, cpu_share, offered_slots, tier_of
from ccfarm.scheduler.timers import Timers

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
CLANG = CompilerIdentity("clang", "14.0.6", "x86_64-pc-linux-gnu")


def host(name: str, speed: float = 1.0, slots: int = 2, **kw: object) -> HostReport:
    fields: dict[str, object] = dict(
        host=name,
        address=name,
        port=3632,
        slots=slots,
        cpus=slots,
        speed=speed,
        load=0.0,
        compilers=(GCC,),
    )
    fields.update(kw)
    return HostReport(**fields)  # type: ignore[arg-type]


_ids = iter(range(1, 10**9))


def req(
    client: str = "m1/u",
    compiler: CompilerIdentity | None = GCC,
    timeout: float = 30,
    size: int = 0,
    main: int = 0,
) -> LeaseRequest:
    return LeaseRequest(next(_ids), client, compiler, timeout, size, main=main)


def granted(outcomes: list[object]) -> list[LeaseGranted]:
    return [o for o in outcomes if isinstance(o, LeaseGranted)]


def test_join_and_grant() -> None:
    farm = Farm(rng=random.Random(1))
    assert farm.request(req(), 0) == [LeaseRefused(farm_last_id(), "no host has this compiler")]
    farm.host_report(host("a"), 0)
    (g,) = farm.request(req(), 1)
    assert isinstance(g, LeaseGranted) and g.host == "a" and g.port == 3632


def farm_last_id() -> int:
    return next(_ids) - 1


def test_fastest_tier_first_then_slower() -> None:
    farm = Farm(Policy(prefer_fast=False), rng=random.Random(2))
    farm.host_report(host("slow", speed=1, slots=4), 0)
    farm.host_report(host("fast", speed=4, slots=2), 0)
    farm.host_report(host("mid", speed=2, slots=2), 0)
    order = [granted(farm.request(req(), 1))[0].host for _ in range(8)]
    assert order == ["fast", "fast", "mid", "mid", "slow", "slow", "slow", "slow"]
    assert farm.request(req(timeout=5), 1) == []  # all busy: waits


def test_a_host_with_more_slots_than_cpus_offers_each_slot_at_the_speed_its_job_gets() -> None:
    """One job alone on a 1-CPU host runs at its speed, two at half each: an
    idle such host is the fastest, a busy one ranks at half."""
    farm = Farm(Policy(prefer_fast=False), rng=random.Random(3))
    farm.host_report(host("shared", speed=4, slots=2, cpus=1), 0)
    farm.host_report(host("mid", speed=3, slots=1), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    shared = farm.slots.hosts["shared"]
    assert shared.speed == 4.0 and shared.next_speed == 4.0
    grants = [granted(farm.request(req(), 1))[0] for _ in range(4)]
    assert [g.host for g in grants] == ["shared", "mid", "shared", "slow"]
    assert grants[0].tier == tier_of(4.0, farm.policy)  # the tier its job runs at
    assert grants[2].tier == tier_of(2.0, farm.policy)
    # each lease is charged at the speed its job got
    assert [farm.leases[g.lease].speed for g in grants] == [4.0, 3.0, 2.0, 1.0]
    assert [farm.leases[g.lease].share for g in grants] == [1.0, 1.0, 0.5, 1.0]
    # the first job ends: the slot left is the second job's, at half speed
    farm.release(grants[0].lease, 2)
    assert shared.next_speed == 2.0
    farm.release(grants[2].lease, 3)
    assert shared.next_speed == 4.0  # idle again: a job there runs alone
    farm.check(3)


def test_cpu_share_is_a_cpu_per_job_up_to_the_cpus() -> None:
    assert cpu_share(host("h", speed=3, slots=4, cpus=4), 4) == 1.0
    assert cpu_share(host("h", speed=3, slots=2, cpus=8), 2) == 1.0  # idle CPUs add nothing
    assert cpu_share(host("h", speed=3, slots=6, cpus=4), 6) == 4 / 6
    assert cpu_share(host("h", speed=3, slots=2, cpus=1), 0) == 1.0
    assert cpu_share(host("h", speed=3, slots=2, cpus=0), 2) == 1.0  # CPUs not known


def test_job_waits_for_a_fast_host_rather_than_a_much_slower_one() -> None:
    farm = Farm(Policy(patience=5), rng=random.Random(20))
    farm.host_report(host("fast", speed=4, slots=2), 0)
    farm.host_report(host("slow", speed=1, slots=2), 0)
    busy = [granted(farm.request(req(), 0))[0] for _ in range(2)]
    assert {g.host for g in busy} == {"fast"}
    lone = req()
    assert farm.request(lone, 1) == []  # 2 fast slots x (4/1 - 1) = 6 > 1: wait
    out = granted(farm.release(busy[0].lease, 2))
    assert [(g.request, g.host) for g in out] == [(lone.request, "fast")]


def test_patience_bounds_the_wait_for_a_fast_host() -> None:
    farm = Farm(Policy(patience=5, max_wait=60), rng=random.Random(21))
    farm.host_report(host("fast", speed=4, slots=1), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    granted(farm.request(req(), 0))
    held = req()
    assert farm.request(held, 1) == []
    assert farm.tick(5.9) == []
    assert [(g.request, g.host) for g in granted(farm.tick(6))] == [(held.request, "slow")]


def test_a_big_job_waits_as_long_as_a_slow_host_would_cost_it() -> None:
    """Patience is at least what the free slow host costs the job: a job of
    about 4.4 average ones (1 s each at speed 4: cost 4) loses 4.4 x 4 x
    (1/1 - 1/4) = 13.3 s on a host 4x slower, so it waits that long for the
    fast one before it takes the slow one (an average job takes it at
    `patience`: `test_patience_bounds_the_wait_for_a_fast_host`)."""
    farm = Farm(Policy(patience=5, max_wait=60, host_timeout=1e9), rng=random.Random(23))
    farm.host_report(host("fast", speed=4, slots=1), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    now = 0.0
    for _ in range(8):  # the cost model learns: 100 kB jobs, 1 s each on the fast host
        (g,) = granted(farm.request(req(size=100_000), now))
        assert g.host == "fast"
        now += 1.0
        farm.release(g.lease, now)
    assert farm.costs[GCC].mean_cost() == pytest.approx(4.0)
    granted(farm.request(req(size=100_000), now))  # holds the fast host from here on
    start = now
    big = req(size=500_000)
    assert farm.request(big, start) == []  # waits for the fast host
    assert granted(farm.tick(start + 5)) == []  # patience over, but 13 s are at stake
    assert granted(farm.tick(start + 13.0)) == []
    (g,) = granted(farm.tick(start + 13.5))
    assert (g.request, g.host) == (big.request, "slow")


def test_long_queue_uses_slow_hosts() -> None:
    """ahead + 1 >= F * (s_f / s_h - 1) / 2: with 1 fast slot 7x faster, from 3 ahead."""
    farm = Farm(rng=random.Random(22))
    farm.host_report(host("fast", speed=7, slots=1), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    granted(farm.request(req(), 0))
    for _ in range(2):
        assert farm.request(req(), 0) == []
    third = req()
    assert [g.host for g in granted(farm.request(third, 0))] == ["slow"]


def test_slow_slot_goes_to_the_heaviest_client() -> None:
    """A small build keeps its turn for a fast host; the big one takes the slow slot."""
    farm = Farm(rng=random.Random(23))
    farm.host_report(host("fast", speed=7, slots=1), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    big = [req("big/u") for _ in range(6)]
    first = granted(farm.request(big[0], 0))[0]  # big holds the fast host
    small = req("small/u")
    out: list[object] = []
    for r in big[1:3]:
        out += farm.request(r, 0)
    out += farm.request(small, 0)
    for r in big[3:]:
        out += farm.request(r, 0)  # the queue grows: the slow host becomes worth it
    slow_grants = [g for g in granted(out) if g.host == "slow"]
    assert slow_grants and all(g.request != small.request for g in slow_grants)
    fast_next = granted(farm.release(first.lease, 1))
    assert [g.request for g in fast_next] == [small.request]  # never served: first in line


def test_slow_slot_takes_a_small_job_at_once_a_big_one_waits() -> None:
    """c * F * (s_f / s_h - 1) / 2: 1 fast slot 7x faster makes the slow slot worth it
    for a job of a third of the average size or less, with nobody waiting."""
    farm = Farm(rng=random.Random(40))
    farm.host_report(host("fast", speed=7, slots=1), 0)
    farm.host_report(host("slow", speed=1, slots=2), 0)
    assert granted(farm.request(req(size=1000), 0))[0].host == "fast"  # average: 1000
    big = req(size=3000)
    assert farm.request(big, 0) == []  # cost ~2.9: wait for the fast host
    small = req(size=250)
    assert [g.host for g in granted(farm.request(small, 0))] == ["slow"]
    plain = req()  # no size: an average job, 3 x 1 > 2 ahead + 1: waits too
    assert farm.request(plain, 0) == []


def test_fast_slot_takes_the_biggest_job_slow_slot_the_smallest() -> None:
    """Longest job first on the fastest hosts; the slow host gets the job it
    delays least. Among one client's jobs only: fairness between clients
    is unchanged."""
    farm = Farm(rng=random.Random(41))
    farm.host_report(host("fast", speed=7, slots=1), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    first = granted(farm.request(req(size=1000), 0))[0]
    sizes = [900, 4000, 1100, 1000, 600, 1200, 800]
    queued = [req(size=n) for n in sizes]
    out: list[LeaseGranted] = []
    for r in queued:
        out += granted(farm.request(r, 0))
    # the slow slot became worth it at 3 waiting (900, 4000, 1100; 0.9 x 3 <= 3):
    # the smallest of them took it
    (slow,) = out
    assert slow.host == "slow" and slow.request == queued[sizes.index(900)].request
    fast = granted(farm.release(first.lease, 1))
    assert [g.request for g in fast] == [queued[sizes.index(4000)].request]
    fast = granted(farm.release(fast[0].lease, 2))
    assert [g.request for g in fast] == [queued[sizes.index(1200)].request]


def test_a_small_build_with_jobs_in_line_takes_a_slower_slot_too() -> None:
    """A slot on a host a third as fast as two busy ones (F (s_f/s_h - 1) / 2 = 2) is
    worth it for the second of a client's jobs at the front of the line: the
    first goes to a fast host. So a small build uses more than the fastest
    hosts; with one job waiting it keeps its turn for a fast one."""
    farm = Farm(rng=random.Random(44))
    farm.host_report(host("fast", speed=6, slots=2), 0)
    farm.host_report(host("mid", speed=2, slots=1), 0)
    big = [req("big/u") for _ in range(6)]
    leases = [g for r in big for g in granted(farm.request(r, 0))]
    assert sorted(g.host for g in leases) == ["fast", "fast", "mid"]
    small = [req("small/u") for _ in range(2)]
    for r in small:
        assert farm.request(r, 1) == []
    on_mid = next(g for g in leases if g.host == "mid")
    (g,) = granted(farm.release(on_mid.lease, 2))
    assert g.host == "mid" and g.request in {r.request for r in small}
    # one small job left in line: the mid host goes to the heaviest again
    (g,) = granted(farm.release(g.lease, 3))
    assert g.host == "mid" and g.request in {r.request for r in big}


def test_grant_looks_past_the_scanned_clients_only_when_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The slot is worth it only for a client beyond the first SCAN_CLIENTS:
    it is found all the same (nobody waits while a slot is worth taking)."""
    monkeypatch.setattr(core, "SCAN_CLIENTS", 2)
    farm = Farm(rng=random.Random(45))
    farm.host_report(host("fast", speed=4, slots=10), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    for _ in range(10):
        assert granted(farm.request(req("x/u", size=10_000), 0))[0].host == "fast"
    for client in ("a/u", "b/u"):  # average jobs: 10 x (4 - 1) = 30 > 3 waiting
        assert farm.request(req(client, size=10_000), 0) == []
    tiny = req("c/u", size=100)  # cost 0.1 (the floor): 0.1 x 30 <= 3 waiting
    assert [(g.request, g.host) for g in granted(farm.request(tiny, 0))] == [(tiny.request, "slow")]


def test_released_leases_teach_the_cost_model() -> None:
    """Each released lease is a (size, seconds x speed) sample; revoked ones are not."""
    farm = Farm(rng=random.Random(43))
    farm.host_report(host("a", speed=2, slots=1), 0)
    now = 0.0
    for size in [60_000, 90_000, 120_000, 240_000] * 2:
        (g,) = granted(farm.request(req(size=size), now))
        now += (size - 40_000) / 100_000  # seconds on a speed-2 host
        farm.release(g.lease, now)
    model = farm.costs[GCC]
    assert model.jobs == 8
    a, b, c = model.fit() or (0.0, 0.0, 0.0)
    assert abs(b - 2e-5) < 1e-9 and abs(a + 0.8) < 1e-6  # cost = 2 x seconds
    assert b == c  # no main bytes told: the whole size
    granted(farm.request(req(size=100_000), now))
    farm.host_gone("a", "host left", now + 1)
    assert model.jobs == 8


def test_a_big_main_file_is_a_big_job_whatever_its_headers() -> None:
    """Requests that tell their main file's bytes teach the model that those
    cost and the headers do not: of two jobs of one size the one with more
    of its own code is the bigger (and goes to the fast host first)."""
    farm = Farm(rng=random.Random(44))
    farm.host_report(host("a", speed=1, slots=1), 0)
    now = 0.0
    sizes = [(5_000, 100_000), (40_000, 20_000), (5_000, 20_000), (40_000, 100_000)]
    for main, headers in sizes * 3:
        (g,) = granted(farm.request(req(size=main + headers, main=main), now))
        now += 0.05 + main / 20_000
        farm.release(g.lease, now)
    a, b, c = farm.costs[GCC].fit() or (0.0, 0.0, 0.0)
    assert abs(b - 5e-5) < 1e-9 and abs(a - 0.05) < 1e-6 and abs(c) < 1e-12
    (busy,) = granted(farm.request(req(size=1000, main=500), now))
    small, big = req(size=110_000, main=5_000), req(size=110_000, main=60_000)
    assert farm.request(small, now) == [] and farm.request(big, now) == []
    (first,) = granted(farm.release(busy.lease, now + 1))
    assert first.request == big.request


def test_equal_sizes_keep_first_come_first_served() -> None:
    farm = Farm(rng=random.Random(42))
    farm.host_report(host("a", slots=1), 0)
    lease = granted(farm.request(req(size=500), 0))[0].lease
    queued = [req(size=500) for _ in range(3)]
    for r in queued:
        assert farm.request(r, 0) == []
    order = []
    for t in range(3):
        (g,) = granted(farm.release(lease, t + 1))
        order.append(g.request)
        lease = g.lease
    assert order == [r.request for r in queued]


def test_spread_within_a_tier_is_random_and_even() -> None:
    farm = Farm(rng=random.Random(3))
    for name in "abcd":
        farm.host_report(host(name, speed=1.0, slots=1), 0)
    first = Counter()
    for _ in range(4000):
        g = granted(farm.request(req(), 1))[0]
        first[g.host] += 1
        farm.release(g.lease, 1)
    assert set(first) == set("abcd")
    assert all(900 < n < 1100 for n in first.values()), first


def test_free_slots_weight_the_choice() -> None:
    farm = Farm(rng=random.Random(4))
    farm.host_report(host("big", slots=6), 0)
    farm.host_report(host("small", slots=2), 0)
    counts = Counter()
    for _ in range(4000):
        g = granted(farm.request(req(), 1))[0]
        counts[g.host] += 1
        farm.release(g.lease, 1)
    assert 2.5 < counts["big"] / counts["small"] < 3.5


def test_speed_tiers() -> None:
    p = Policy(tier_ratio=1.25)
    assert tier_of(1.0, p) == tier_of(1.2, p) != tier_of(1.3, p)
    assert tier_of(4.0, p) > tier_of(2.0, p) > tier_of(1.0, p)


def test_load_rising_and_falling() -> None:
    farm = Farm(rng=random.Random(5))
    farm.host_report(host("a", slots=4, cpus=4), 0)
    assert farm.hosts["a"].offered == 4
    farm.host_report(host("a", slots=4, cpus=4, load=4.0), 1)  # someone else uses all CPUs
    assert farm.hosts["a"].offered == 0
    assert farm.request(req(timeout=10), 2) == []  # waits
    out = farm.host_report(host("a", slots=4, cpus=4, load=3.0), 3)
    assert farm.hosts["a"].offered == 1 and len(granted(out)) == 1  # partly back, waiter served
    farm.host_report(host("a", slots=4, cpus=4, load=0.5), 4)
    assert farm.hosts["a"].offered == 4


def test_own_jobs_do_not_count_as_load() -> None:
    report = host("a", slots=4, cpus=4, load=4.0, running=4)
    assert offered_slots(report, Policy(), disabled=False) == 4


def test_desktop_busy_and_idle() -> None:
    farm = Farm(rng=random.Random(6))
    farm.host_report(host("desk", speed=8, desktop_in_use=True), 0)
    farm.host_report(host("rack", speed=1), 0)
    assert granted(farm.request(req(), 1))[0].host == "rack"
    farm.host_report(host("desk", speed=8, desktop_in_use=False), 2)
    assert granted(farm.request(req(), 3))[0].host == "desk"


def test_heartbeat_loss_drops_host_and_revokes_leases() -> None:
    farm = Farm(Policy(host_timeout=10), rng=random.Random(7))
    farm.host_report(host("a"), 0)
    farm.host_report(host("b"), 0)
    g = granted(farm.request(req(), 1))[0]
    for t in (5, 9):
        farm.host_report(host("a" if g.host == "b" else "b"), t)  # only the other one beats
    out = farm.tick(12)
    assert out == [LeaseRevoked(g.lease, g.request, "host stopped sending heartbeats")]
    assert g.host not in farm.hosts and len(farm.hosts) == 1
    assert farm.release(g.lease, 13) == []  # releasing a revoked lease is harmless


def test_lease_timeout() -> None:
    farm = Farm(Policy(lease_timeout=100, host_timeout=1e9), rng=random.Random(8))
    farm.host_report(host("a", slots=1), 0)
    g = granted(farm.request(req(), 0))[0]
    waiting = req(timeout=1000)
    assert farm.request(waiting, 50) == []
    out = farm.tick(100)
    assert out[0] == LeaseRevoked(g.lease, g.request, "lease timed out")
    assert granted(out)[0].request == waiting.request


def test_request_times_out_with_no_host() -> None:
    farm = Farm(Policy(host_timeout=1e9), rng=random.Random(9))
    farm.host_report(host("a", slots=1), 0)
    granted(farm.request(req(), 0))
    r = req(timeout=5)
    assert farm.request(r, 1) == []
    assert farm.tick(5.9) == []
    assert farm.tick(6) == [LeaseRefused(r.request, "no free host in time")]


def test_fairness_between_two_clients() -> None:
    """A make -j200 must not starve a make -j4 from another machine."""
    farm = Farm(rng=random.Random(10))
    farm.host_report(host("a", slots=2), 0)
    big = [req("m1/alice") for _ in range(200)]
    leases = [g for r in big for g in granted(farm.request(r, 0))]
    assert len(leases) == 2
    small = [req("m2/bob") for _ in range(4)]
    for r in small:
        assert farm.request(r, 1) == []
    order: list[str] = []
    for t in range(2, 12):
        g = leases.pop(0)
        out = granted(farm.release(g.lease, t))
        leases += out
        order += ["big" if o.request in {r.request for r in big} else "small" for o in out]
    # the small build has used nothing yet: freed slots are its until its use
    # (its running jobs count) passes the big build's
    assert order[:3] == ["small"] * 3
    assert order.count("small") == 4


def test_past_use_fades() -> None:
    """Who used the farm lately goes after who did not; long ago does not count."""
    farm = Farm(Policy(usage_half_life=10), rng=random.Random(11))
    farm.host_report(host("a", slots=1), 0)
    [old] = granted(farm.request(req("old/u"), 0))
    farm.release(old.lease, 100)  # 100 s of use, ending at t=100
    [recent] = granted(farm.request(req("recent/u"), 150))
    farm.release(recent.lease, 160)  # 10 s of use, ending at t=160
    assert farm.usage("old/u", 160) < farm.usage("recent/u", 160)  # 100 x 2^-6 < 10
    [blocker] = granted(farm.request(req("third/u"), 160))
    waiting = [req("recent/u"), req("old/u")]
    for r in waiting:
        assert farm.request(r, 160) == []
    [g] = granted(farm.release(blocker.lease, 161))
    assert g.request == waiting[1].request  # the one whose use is long past goes first


def test_compatibility() -> None:
    farm = Farm(rng=random.Random(11))
    farm.host_report(host("g", compilers=(GCC,)), 0)
    farm.host_report(host("c", speed=9, compilers=(CLANG,)), 0)
    assert granted(farm.request(req(compiler=GCC), 1))[0].host == "g"
    assert granted(farm.request(req(compiler=CLANG), 1))[0].host == "c"
    other = CompilerIdentity("gcc", "13.1.0", "aarch64-linux-gnu")
    assert isinstance(farm.request(req(compiler=other), 1)[0], LeaseRefused)
    assert granted(farm.request(req(compiler=None), 1))[0].host in ("g", "c")


def test_drain_and_return() -> None:
    farm = Farm(rng=random.Random(12))
    farm.host_report(host("a", slots=2, speed=5), 0)
    farm.host_report(host("b", slots=2), 0)
    g = granted(farm.request(req(), 0))[0]
    assert g.host == "a"
    farm.set_disabled("a", True, 1)
    assert [granted(farm.request(req(), 1))[0].host for _ in range(2)] == ["b", "b"]
    assert g.lease in farm.leases  # running job keeps its lease
    waiting = req()
    assert farm.request(waiting, 2) == []
    out = farm.set_disabled("a", False, 3)
    assert granted(out)[0].request == waiting.request and granted(out)[0].host == "a"


def test_a_leaving_host_finishes_its_jobs_and_takes_no_new_ones() -> None:
    farm = Farm(rng=random.Random(12))
    farm.host_report(host("a", slots=2, speed=5), 0)
    farm.host_report(host("b", slots=2), 0)
    g = granted(farm.request(req(), 0))[0]
    assert g.host == "a"
    assert farm.host_leaving("a", 1) == []  # nothing revoked
    farm.host_report(host("a", slots=2, speed=5), 2)  # its heartbeats go on
    assert farm.hosts["a"].offered == 0 and g.lease in farm.leases
    assert [granted(farm.request(req(), 2))[0].host for _ in range(2)] == ["b", "b"]
    farm.release(g.lease, 3)
    assert farm.request(req(), 3) == []  # "a" gives nothing back, "b" is full
    farm.host_gone("a", "host's connection closed", 4)
    assert "a" not in farm.hosts
    assert farm.host_leaving("a", 5) == []  # a late goodbye changes nothing


def test_host_shrinking_revokes_newest_leases() -> None:
    farm = Farm(rng=random.Random(13))
    farm.host_report(host("a", slots=3), 0)
    gs = [granted(farm.request(req(), 0))[0] for _ in range(3)]
    out = farm.host_report(host("a", slots=1), 1)
    assert [o.lease for o in out if isinstance(o, LeaseRevoked)] == [gs[2].lease, gs[1].lease]
    assert len(farm.hosts["a"].leases) == 1


def test_client_cancel() -> None:
    farm = Farm(rng=random.Random(14))
    farm.host_report(host("a", slots=1), 0)
    g = granted(farm.request(req(), 0))[0]
    r = req()
    farm.request(r, 0)
    farm.cancel(r.request)
    assert farm.release(g.lease, 1) == []
    assert list(farm.waiting()) == []


def test_check_finds_parts_out_of_step() -> None:
    farm = Farm(Policy(express=True), rng=random.Random(15))
    farm.host_report(host("a", slots=1), 0)
    granted(farm.request(req(), 0))
    farm.request(req(timeout=5), 1)
    farm.check(1)
    farm.timers._heap.clear()  # the deadlines lost
    with pytest.raises(AssertionError, match="no deadline"):
        farm.check(1)
    farm = Farm(rng=random.Random(15))
    farm.host_report(host("a", slots=2), 0)
    (g,) = granted(farm.request(req(), 0))
    del farm.hosts["a"].leases[g.lease]  # a lease its host forgot
    with pytest.raises(AssertionError):
        farm.check(0)


# -- hosts that fail jobs: quarantine, probation ----------------------------------------


def test_a_failed_host_is_quarantined_then_on_probation_then_healthy() -> None:
    farm = Farm(Policy(host_timeout=1e9), rng=random.Random(21))
    farm.host_report(host("a", slots=3), 0)
    (g,) = granted(farm.request(req(), 0))
    assert farm.host_failed(g.lease, 1) == []
    assert farm.hosts["a"].offered == 0
    farm.check(1)
    assert farm.release(g.lease, 1) == []  # the failed job's release proves nothing
    first, second = req(), req()
    assert farm.request(first, 2) == [] and farm.request(second, 2) == []
    assert farm.tick(10.9) == []  # quarantine: 10 s from the failure
    (probe,) = granted(farm.tick(11))  # probation: one lease at a time
    assert probe.request == first.request and farm.hosts["a"].offered == 1
    farm.check(11)
    out = granted(farm.release(probe.lease, 12))  # the probe came back well
    assert [o.request for o in out] == [second.request]
    assert farm.hosts["a"].offered == 3 and farm.health.trials == {}
    farm.check(12)


def test_backoff_doubles_per_consecutive_failure_and_resets_after_recovery() -> None:
    farm = Farm(Policy(host_timeout=1e9), rng=random.Random(22))
    farm.host_report(host("a", slots=2), 0)
    now = 0.0
    for backoff in (10, 20, 40, 80, 160, 300, 300):
        (g,) = granted(farm.request(req(), now) + farm.tick(now))
        farm.host_failed(g.lease, now)
        farm.release(g.lease, now)
        assert farm.tick(now + backoff - 0.1) == []
        now += backoff
        assert farm.tick(now) == [] and farm.hosts["a"].offered == 1, backoff
        farm.check(now)
    (g,) = granted(farm.request(req(), now))
    farm.release(g.lease, now + 1)  # well: the backoff starts again at 10 s
    (g,) = granted(farm.request(req(), now + 1))
    farm.host_failed(g.lease, now + 1)
    assert farm.health.trials["a"].until == now + 11


def test_reports_that_say_nothing_new_change_nothing() -> None:
    farm = Farm(Policy(host_timeout=1e9), rng=random.Random(23))
    farm.host_report(host("a", slots=2), 0)
    (g1,) = granted(farm.request(req(), 0))
    (g2,) = granted(farm.request(req(), 0))
    farm.host_failed(g1.lease, 1)
    farm.host_failed(g1.lease, 2)  # the same lease again
    farm.host_failed(g2.lease, 3)  # a lease granted before the quarantine
    assert farm.health.trials["a"].failures == 1
    assert farm.health.trials["a"].until == 11
    assert farm.host_failed(999, 3) == []  # no such lease
    farm.tick(11)
    farm.host_failed(g2.lease, 12)  # on probation, but not the probe
    assert farm.hosts["a"].offered == 1
    farm.check(12)


def test_a_failed_probe_doubles_the_quarantine() -> None:
    farm = Farm(Policy(host_timeout=1e9), rng=random.Random(24))
    farm.host_report(host("a", slots=2), 0)
    (g,) = granted(farm.request(req(), 0))
    farm.host_failed(g.lease, 0)
    farm.release(g.lease, 0)
    (probe,) = granted(farm.request(req(), 5) + farm.tick(10))
    assert farm.request(req(), 10) == []  # one lease at a time on probation
    farm.host_failed(probe.lease, 11)
    assert farm.hosts["a"].offered == 0 and farm.health.trials["a"].until == 31
    farm.release(probe.lease, 11)
    assert farm.tick(30.9) == []
    assert len(granted(farm.tick(31))) == 1
    farm.check(31)


def test_quarantine_outlives_the_host_leaving_and_applies_when_it_rejoins() -> None:
    farm = Farm(Policy(host_timeout=1e9), rng=random.Random(25))
    farm.host_report(host("a", slots=2), 0)
    (g,) = granted(farm.request(req(), 0))
    farm.host_failed(g.lease, 1)
    farm.host_gone("a", "host's connection closed", 2)
    farm.host_report(host("a", slots=2), 3)  # restarted with the same fault, maybe
    assert farm.hosts["a"].offered == 0
    farm.check(3)
    farm.tick(11)
    assert farm.hosts["a"].offered == 1
    farm.check(11)


def test_a_quarantined_fast_host_lets_jobs_go_to_a_slow_one() -> None:
    farm = Farm(Policy(host_timeout=1e9), rng=random.Random(26))
    farm.host_report(host("fast", speed=8.0, slots=1), 0)
    farm.host_report(host("slow", speed=1.0, slots=1), 0)
    (g,) = granted(farm.request(req(), 0))
    assert g.host == "fast"
    waiting = req()
    assert farm.request(waiting, 0) == []  # worth waiting for the fast host
    out = granted(farm.host_failed(g.lease, 1))
    assert [(o.request, o.host) for o in out] == [(waiting.request, "slow")]
    farm.check(1)


class FarmMachine(RuleBasedStateMachine):
    """Any interleaving: no host over its slots, no lease lost, indexes consistent."""

    def __init__(self) -> None:
        super().__init__()
        self.farm = Farm(
            Policy(host_timeout=20, lease_timeout=50, max_wait=30, express=True),
            rng=random.Random(0),
        )
        self.now = 0.0
        self.live: dict[int, str] = {}  # lease -> host, as the clients see it
        self.pending: set[int] = set()

    def _apply(self, outcomes: list[object]) -> None:
        for o in outcomes:
            if isinstance(o, LeaseGranted):
                assert o.lease not in self.live
                self.live[o.lease] = o.host
                self.pending.discard(o.request)
            elif isinstance(o, LeaseRevoked):
                assert self.live.pop(o.lease) is not None
            elif isinstance(o, LeaseRefused):
                self.pending.discard(o.request)

    @rule(
        name=st.sampled_from("abcd"),
        slots=st.integers(0, 4),
        speed=st.sampled_from([1, 2, 4]),
        load=st.floats(0, 6),
        desk=st.booleans(),
        clang=st.booleans(),
        cpus=st.sampled_from([None, 0, 1, 2]),  # None: one per slot
    )
    def report(
        self,
        name: str,
        slots: int,
        speed: float,
        load: float,
        desk: bool,
        clang: bool,
        cpus: int | None,
    ) -> None:
        compilers = (GCC, CLANG) if clang else (GCC,)
        self._apply(
            self.farm.host_report(
                host(
                    name,
                    speed=speed,
                    slots=slots,
                    cpus=slots if cpus is None else cpus,
                    load=load,
                    desktop_in_use=desk,
                    compilers=compilers,
                ),
                self.now,
            )
        )

    @rule(
        client=st.sampled_from(["x/1", "y/2", "z/3"]),
        compiler=st.sampled_from([GCC, CLANG, None]),
        timeout=st.sampled_from([0, 5, 100]),
        size=st.sampled_from([0, 50, 1000, 1000, 20000]),
    )
    def ask(
        self, client: str, compiler: CompilerIdentity | None, timeout: float, size: int
    ) -> None:
        r = req(client, compiler, timeout, size)
        self.pending.add(r.request)
        self._apply(self.farm.request(r, self.now))

    @rule(
        client=st.sampled_from(["x/1", "y/2", "z/3"]),
        speed=st.sampled_from([0, 0.5, 1, 2, 4, 8]),
        size=st.sampled_from([0, 1000, 20000]),
    )
    def ask_with_a_local_slot(self, client: str, speed: float, size: int) -> None:
        """A client with a free local slot is answered at once: a host, or LOCAL."""
        r = LeaseRequest(next(_ids), client, GCC, 30, size, local_slot=True, local_speed=speed)
        out = self.farm.request(r, self.now)
        mine = [o for o in out if o.request == r.request and not isinstance(o, LeaseRevoked)]
        assert len(mine) == 1 and r.request not in {w.request.request for w in self.farm.queue}
        self._apply(out)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        if self.live:
            lease = data.draw(st.sampled_from(sorted(self.live)))
            del self.live[lease]
            out = self.farm.release(lease, self.now)
            self._apply(out)

    @rule(dt=st.floats(0, 30))
    def advance(self, dt: float) -> None:
        self.now += dt
        self._apply(self.farm.tick(self.now))

    @rule(name=st.sampled_from("abcd"), off=st.booleans())
    def drain(self, name: str, off: bool) -> None:
        if name in self.farm.hosts:
            self._apply(self.farm.set_disabled(name, off, self.now))

    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        if self.live:
            lease = data.draw(st.sampled_from(sorted(self.live)))
            self._apply(self.farm.host_failed(lease, self.now))

    @rule(name=st.sampled_from("abcd"))
    def leave(self, name: str) -> None:
        self._apply(self.farm.host_gone(name, "host left", self.now))

    @rule(name=st.sampled_from("abcd"))
    def say_goodbye(self, name: str) -> None:
        self._apply(self.farm.host_leaving(name, self.now))

    @invariant()
    def consistent(self) -> None:
        farm = self.farm
        # every part's indexes agree with what they mirror: free slots and
        # express lanes with the hosts, the waiting counts, rings and heaps
        # with the waiting requests, the per-client counts and use with the
        # leases and the queue; every lease, wait and host has its deadline
        farm.check(self.now)
        assert set(farm.leases) == set(self.live)  # no lease lost or invented
        for name, h in farm.hosts.items():
            assert len(h.leases) <= h.report.slots  # never more leases than slots ...
            assert all(farm.leases[lease].host == name for lease in h.leases)
            if h.express is not None:  # ... but for at most one express lease
                assert farm.leases[h.express].host == name and farm.leases[h.express].express
        for lease, name in self.live.items():
            assert lease in farm.hosts[name].leases or farm.hosts[name].express == lease
        # nobody waits while a free slot is worth taking: not on any host a
        # pick may return (here the hosts of a tier have one speed, so all of
        # them are as good as the pick's)
        for waiting in farm.queue:
            ahead = farm.queue.counts[waiting.key] - 1
            for pick in farm.slots.candidates(waiting.key):
                assert not farm.decisions.worth(waiting.key, pick, ahead, waiting.cost)
        assert {r.request for r in farm.waiting()} <= self.pending


TestFarmMachine = FarmMachine.TestCase


def test_express_lease_for_a_client_below_its_share() -> None:
    """A make -j4 started while a big build holds every slot runs at once, on the
    fastest host, ahead of the big build's jobs there (one per host)."""
    farm = Farm(Policy(prefer_fast=False, express=True), rng=random.Random(30))
    farm.host_report(host("fast", speed=4, slots=2), 0)
    farm.host_report(host("slow", speed=1, slots=2), 0)
    big = [req("big/u") for _ in range(6)]
    got = [g for r in big for g in granted(farm.request(r, 0))]
    assert len(got) == 4 and not any(g.express for g in got)  # the big build: no express
    small = [req("small/u") for _ in range(3)]
    first = granted(farm.request(small[0], 1))
    assert [(g.host, g.express) for g in first] == [("fast", True)]
    # share = 4 offered slots / 2 active clients = 2: a second express lease,
    # on the next host whose lane is open
    second = granted(farm.request(small[1], 1))
    assert [(g.host, g.express) for g in second] == [("slow", True)]
    # at its share: the third waits in line like everyone else
    assert farm.request(small[2], 1) == []
    # the express lane on "fast" frees: a waiting client below its share takes it
    out = granted(farm.release(first[0].lease, 2))
    assert [(g.request, g.host, g.express) for g in out] == [(small[2].request, "fast", True)]


def test_express_lanes_are_for_a_small_builds_big_jobs() -> None:
    """Below-average jobs of the light client wait in line; its big ones go
    express, also when a lane frees while they wait."""
    farm = Farm(Policy(prefer_fast=False, express=True), rng=random.Random(34))
    farm.host_report(host("a", speed=4, slots=2), 0)
    farm.host_report(host("b", speed=4, slots=2), 0)
    for _ in range(8):  # the big build, average jobs: every slot, four waiting
        farm.request(req("big/u", size=1000), 0)
    small_job = req("small/u", size=300)
    assert farm.request(small_job, 1) == []  # cost 0.3: waits
    big_job = req("small/u", size=3000)
    (g,) = granted(farm.request(big_job, 1))
    assert g.express and g.request == big_job.request
    other_big = req("small/u", size=2500)
    (g2,) = granted(farm.request(other_big, 1))  # the other host's lane
    assert g2.express and g2.host != g.host
    third_big = req("small/u", size=2800)
    assert farm.request(third_big, 1) == []  # at its share (4 slots / 2 clients)
    # the first lane frees: the light client, below its share again, takes it
    # for its biggest waiting job, not its small one
    (g3,) = granted(farm.release(g.lease, 2))
    assert g3.express and g3.request == third_big.request


def test_no_express_between_builds_of_similar_size() -> None:
    """Below its share but not light (demand over half the other's): it waits."""
    farm = Farm(Policy(express=True), rng=random.Random(33))
    farm.host_report(host("a", slots=4), 0)
    outcomes = [farm.request(req(c), 0) for c in ("one/u", "one/u", "one/u", "two/u")]
    assert all(len(granted(o)) == 1 for o in outcomes)  # every slot taken
    # "two" holds 1 of its share of 2; demands 2 then 3 against "one"'s 3 then 4
    for client in ("two/u", "one/u", "two/u"):
        assert farm.request(req(client), 0) == []
    assert not any(lease.express for lease in farm.leases.values())


def test_no_express_for_a_client_at_its_share_or_when_off() -> None:
    for policy, small_gets in ((Policy(express=True), True), (Policy(), False)):
        farm = Farm(policy, rng=random.Random(31))
        farm.host_report(host("a", slots=2), 0)
        for r in [req("big/u"), req("big/u"), req("big/u")]:
            farm.request(r, 0)  # two granted, one waiting: above its share
        assert farm.request(req("big/u"), 0) == []  # a heavy client never jumps ahead
        assert bool(granted(farm.request(req("small/u"), 0))) == small_gets


def test_express_lease_ends_with_its_host() -> None:
    farm = Farm(Policy(express=True), rng=random.Random(32))
    farm.host_report(host("a", slots=1), 0)
    farm.request(req("big/u"), 0)
    farm.request(req("big/u"), 0)  # waits: the big build's demand is 2
    [g] = granted(farm.request(req("small/u"), 0))
    assert g.express
    revoked = [o for o in farm.host_gone("a", "host left", 1) if isinstance(o, LeaseRevoked)]
    assert len(revoked) == 2 and g.lease in {o.lease for o in revoked}
    assert farm.leases == {}


TestFarmMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


def test_replace_keeps_identity() -> None:
    assert replace(host("a"), load=1.0).load == 1.0


def test_ended_leases_deadlines_do_not_pile_up_for_the_lease_timeout() -> None:
    """A busy farm ends leases at once, while each one's deadline is due only
    after `lease_timeout` (600 s): the heap is compacted, not grown by every
    lease of the last ten minutes; deadlines that still apply stay and fire."""
    farm = Farm(Policy(lease_timeout=600, host_timeout=10), rng=random.Random(30))
    farm.host_report(host("a", slots=4), 0)
    farm.host_report(host("b", slots=4), 0)
    held = granted(farm.request(req(), 0))[0]  # one lease held all along
    most = 0
    now = 0.0
    for i in range(60_000):
        now = i * 0.001  # 1,000 leases a second for a minute
        if i % 1000 == 0:
            for name in ("a", "b"):
                farm.host_report(host(name, slots=4), now)
            farm.tick(now)
        g = granted(farm.request(req(), now))[0]
        farm.release(g.lease, now)
        most = max(most, len(farm.timers))
    farm.check(now)  # the deadlines that must be pending still are
    assert most <= 2 * Timers.COMPACT_FLOOR
    assert held.lease in farm.leases
    out = farm.tick(600.5)  # both hosts fell silent; the held lease's host goes
    assert LeaseRevoked(held.lease, held.request, "host stopped sending heartbeats") in out
    assert not farm.hosts and len(farm.timers) <= 2
