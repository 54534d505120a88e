"""The client's own machine in the scheduling decision: a request whose client
holds a free local slot is answered at once, with a host that beats the
client's own speed by more than the margin, or with LOCAL."""

from __future__ import annotations

import itertools
import random

import pytest

from ccfarm.model import LOCAL, CompilerIdentity, LeaseGranted, LeaseRefused, LeaseRequest
from ccfarm.scheduler.core import Farm
from ccfarm.scheduler.policy import Policy
from tests.unit.test_scheduler_core import GCC, host

CLANG = CompilerIdentity("clang", "14.0.6", "x86_64-pc-linux-gnu")
_ids = itertools.count(1)


def local_req(
    speed: float, *, client: str = "me/u", slot: bool = True, compiler: CompilerIdentity = GCC
) -> LeaseRequest:
    return LeaseRequest(next(_ids), client, compiler, 30, 1000, local_slot=slot, local_speed=speed)


def plain_req(client: str = "other/u") -> LeaseRequest:
    return LeaseRequest(next(_ids), client, GCC, 30, 1000)


SPEEDS = (1.0, 2.0, 4.0)
LOCAL_SPEEDS = (0.0, 0.5, 1.0, 1.9, 2.0, 3.7, 3.8, 4.0, 8.0)


def farm_with(free: dict[float, int], busy: dict[float, int], waiting: int) -> Farm:
    """Hosts of each speed with `free` free and `busy` taken slots (taken by
    another client), and `waiting` plain requests of that client in line."""
    farm = Farm(Policy(), rng=random.Random(7))
    for speed in SPEEDS:
        slots = free.get(speed, 0) + busy.get(speed, 0)
        if slots:
            farm.host_report(host(f"h{speed:g}", speed=speed, slots=slots), 0)
    for speed in SPEEDS:
        for _ in range(busy.get(speed, 0)):
            name = f"h{speed:g}"
            # take one slot of exactly this host: offer only it for a moment
            others = [h for h in farm.hosts if h != name]
            for other in others:
                farm.set_disabled(other, True, 0)
            out = farm.request(plain_req(), 0)
            assert [o.host for o in out if isinstance(o, LeaseGranted)] == [name]
            for other in others:
                farm.set_disabled(other, False, 0)
    for _ in range(waiting):
        farm.request(plain_req(), 0)
    return farm


CASES = [
    (free, busy, waiting, local)
    for f1, f2, f4 in itertools.product((0, 1), repeat=3)
    for b1, b2, b4 in itertools.product((0, 1), repeat=3)
    for waiting in (0, 2)
    for local in LOCAL_SPEEDS
    for free, busy in [({1.0: f1, 2.0: f2, 4.0: f4}, {1.0: b1, 2.0: b2, 4.0: b4})]
    if f1 + f2 + f4 + b1 + b2 + b4
]


@pytest.mark.parametrize(("free", "busy", "waiting", "local"), CASES)
def test_a_client_with_a_free_local_slot_never_waits(
    free: dict[float, int], busy: dict[float, int], waiting: int, local: float
) -> None:
    farm = farm_with(free, busy, waiting)
    free_now = {h.report.speed: h.free for h in farm.hosts.values()}
    best = max((s for s, n in free_now.items() if n > 0), default=None)
    before = len(list(farm.waiting()))
    r = local_req(local)
    (answer,) = farm.request(r, 1)
    assert answer.request == r.request
    stays = best is None or (local > 0 and best <= local * Policy().local_margin)
    if stays:
        assert answer == LeaseRefused(r.request, LOCAL, answer.note)
        assert (
            answer.note == "no free host"
            if best is None
            else "no free host is faster" in answer.note
        )
    else:
        assert isinstance(answer, LeaseGranted)
        assert farm.hosts[answer.host].report.speed == best  # the fastest free tier
        assert answer.speed == best and answer.tier == farm.hosts[answer.host].tier
    assert len(list(farm.waiting())) == before  # nothing more waits
    farm.check(1)


def test_without_a_local_slot_the_request_waits_as_before() -> None:
    farm = farm_with({}, {2.0: 1}, 0)
    r = local_req(8.0, slot=False)  # a speed but no free slot: not a reason to stay
    assert farm.request(r, 1) == []
    assert [w.request for w in farm.waiting()] == [r.request]


def test_no_host_with_the_compiler_is_refused_as_before() -> None:
    farm = farm_with({2.0: 1}, {}, 0)
    r = local_req(1.0, compiler=CLANG)
    assert farm.request(r, 1) == [LeaseRefused(r.request, "no host has this compiler")]


def test_the_margin_is_a_policy_knob() -> None:
    for margin, expect_local in ((1.1, True), (1.0, False)):
        farm = Farm(Policy(local_margin=margin), rng=random.Random(1))
        farm.host_report(host("a", speed=2.1), 0)
        (answer,) = farm.request(local_req(2.0), 1)
        assert isinstance(answer, LeaseRefused) == expect_local


def test_a_job_held_back_for_a_faster_host_takes_a_free_slow_one_over_local() -> None:
    # plain requests wait for the busy fast host rather than take the slow
    # one; a client with a local slot slower than the slow host takes it
    farm = Farm(Policy(), rng=random.Random(3))
    farm.host_report(host("fast", speed=8, slots=4), 0)
    farm.host_report(host("slow", speed=1, slots=1), 0)
    for _ in range(4):
        farm.request(plain_req(), 0)
    assert farm.request(plain_req(), 0) == []  # waits for "fast"
    (answer,) = farm.request(local_req(0.5), 1)
    assert isinstance(answer, LeaseGranted) and answer.host == "slow"
    (answer,) = farm.request(local_req(0.5), 1)
    assert answer.reason == LOCAL and answer.note == "no free host"
