"""The scheduling rules on hand-built parts: worth it, whose turn, express."""

from __future__ import annotations

import random

import pytest

from ccfarm.model import CompilerIdentity, HostReport, LeaseRequest
from ccfarm.scheduler.decisions import Decisions, Turn
from ccfarm.scheduler.ledger import LeaseLedger
from ccfarm.scheduler.policy import Policy
from ccfarm.scheduler.queue import WaitingRequest, WaitQueue
from ccfarm.scheduler.slots import Host, SlotIndex

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
_ids = iter(range(1, 10**9))


class Parts:
    def __init__(self, policy: Policy | None = None, scan_clients: int = 64) -> None:
        self.policy = policy or Policy()
        self.slots = SlotIndex(self.policy, random.Random(1))
        self.queue = WaitQueue()
        self.ledger = LeaseLedger(self.policy.usage_half_life)
        self.decide = Decisions(self.policy, self.slots, self.queue, self.ledger, scan_clients)

    def host(self, name: str, speed: float, slots: int) -> Host:
        r = HostReport(name, name, 3632, slots, slots, speed, 0.0, compilers=(GCC,))
        host = self.slots.join(r, 0.0)
        self.slots.offer(host)
        return host

    def busy(self, host: Host, client: str = "x/u", now: float = 0.0) -> None:
        """Every free slot of `host` leased to `client`."""
        while host.free:
            req = LeaseRequest(next(_ids), client, GCC, 30.0)
            lease = self.ledger.open(req, host.report.host, host.report.speed, now, 1e9, False)
            self.slots.take_slot(host, lease.lease)

    def wait(self, client: str, cost: float = 1.0) -> WaitingRequest:
        waiting = WaitingRequest(LeaseRequest(next(_ids), client, GCC, 30.0), GCC, 30.0, cost)
        self.queue.add(waiting)
        self.ledger.wait(client)
        return waiting


def test_a_slow_slot_is_worth_it_once_enough_jobs_are_ahead() -> None:
    """ahead + 1 >= c * F * (s_f / s_h - 1) / 2: 2 busy slots 7x faster make it 6."""
    parts = Parts()
    fast, slow = parts.host("fast", 7.0, 2), parts.host("slow", 1.0, 1)
    parts.busy(fast)
    assert parts.decide.need(GCC, fast) == 0.0  # nothing faster to wait for
    assert parts.decide.need(GCC, slow) == pytest.approx(6.0)
    assert not parts.decide.worth(GCC, slow, 4)
    assert parts.decide.worth(GCC, slow, 5)
    assert parts.decide.worth(GCC, slow, 0, cost=1 / 6)  # a small job: at once
    assert Decisions(Policy(prefer_fast=False), parts.slots, parts.queue, parts.ledger, 64).worth(
        GCC, slow, 0, cost=10.0
    )


def test_a_fast_slot_goes_to_the_least_used_client_for_its_biggest_job() -> None:
    parts = Parts()
    fast = parts.host("fast", 4.0, 1)
    parts.ledger.open(LeaseRequest(next(_ids), "heavy/u", GCC, 30.0), "x", 1.0, 0.0, 1e9, False)
    parts.wait("heavy/u")
    parts.wait("light/u", 0.5)
    assert parts.decide.turn(fast, now=10.0) == Turn(GCC, "light/u", smallest=False)


def test_a_slow_slot_goes_to_the_heaviest_when_worth_it_only_behind_everyone() -> None:
    """need 3 (1 busy slot 7x faster): worth it for no client at the front of
    the line (one job each), for the queue of 3: the heaviest client takes it."""
    parts = Parts()
    fast, slow = parts.host("fast", 7.0, 1), parts.host("slow", 1.0, 1)
    parts.busy(fast, "heavy/u")
    for client in ("light/u", "heavy/u", "mid/u"):
        parts.wait(client)
    assert parts.decide.turn(slow, now=5.0) == Turn(GCC, "heavy/u", smallest=True)
    parts.wait("light/u")
    parts.wait("light/u")  # three of its own: worth it at the front of the line
    assert parts.decide.turn(slow, now=5.0) == Turn(GCC, "light/u", smallest=True)


def test_no_turn_when_the_slot_is_worth_it_for_nobody() -> None:
    parts = Parts()
    fast, slow = parts.host("fast", 7.0, 2), parts.host("slow", 1.0, 1)
    parts.busy(fast)
    parts.wait("a/u", 2.0)
    assert parts.decide.turn(slow, now=1.0) is None  # 2.0 x 6 > 1 waiting


def test_the_scan_stops_after_scan_clients_who_can_take_it() -> None:
    """Only the first `scan_clients` clients are ranked when one of them can take the slot."""
    parts = Parts(scan_clients=2)
    host = parts.host("a", 1.0, 1)
    parts.ledger.open(LeaseRequest(next(_ids), "a/u", GCC, 30.0), "x", 1.0, 0.0, 1e9, False)
    parts.ledger.open(LeaseRequest(next(_ids), "b/u", GCC, 30.0), "x", 1.0, 0.0, 1e9, False)
    for client in ("a/u", "b/u", "c/u"):  # c/u has used nothing, but is third
        parts.wait(client)
    assert parts.decide.turn(host, now=1.0) == Turn(GCC, "a/u", smallest=False)  # ring order
    wide = Decisions(parts.policy, parts.slots, parts.queue, parts.ledger, 64)
    assert wide.turn(host, now=1.0) == Turn(GCC, "c/u", smallest=False)


def test_express_only_for_a_light_client_below_its_share() -> None:
    parts = Parts(Policy(express=True))
    a, b = parts.host("a", 4.0, 2), parts.host("b", 1.0, 2)
    parts.busy(a, "big/u")
    parts.busy(b, "big/u")
    parts.wait("big/u")
    assert parts.decide.express_host(GCC, "small/u") is a  # the fastest open lane
    assert parts.decide.express_host(GCC, "big/u") is None  # the heavy one never
    parts.wait("small/u")
    parts.wait("small/u")  # demand 3 > half of big's 5: not light any more
    assert parts.decide.express_host(GCC, "small/u") is None
    off = Decisions(Policy(), parts.slots, parts.queue, parts.ledger, 64)
    assert off.express_host(GCC, "other/u") is None


def test_an_open_lane_goes_to_a_light_clients_big_job() -> None:
    parts = Parts(Policy(express=True))
    a = parts.host("a", 4.0, 2)
    parts.busy(a, "big/u")
    for _ in range(5):  # demand 7: at least twice the small build's 3
        parts.wait("big/u")
    parts.wait("small/u", 0.5)  # below express_min_cost: not for a lane
    assert parts.decide.lane_turn(a) is None
    parts.wait("small/u", 2.0)
    assert parts.decide.lane_turn(a) == Turn(GCC, "small/u", smallest=False)
    parts.slots.take_lane(a, 99)
    assert parts.decide.lane_turn(a) is None  # the lane is taken
