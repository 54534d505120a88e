"""The lease ledger: leases, per-client counts, and use that decays."""

from __future__ import annotations

import math

import pytest

from ccfarm.model import LeaseRequest
from ccfarm.scheduler.ledger import LeaseLedger


def req(request: int, client: str = "m/u") -> LeaseRequest:
    return LeaseRequest(request, client, None, 30.0)


def test_open_and_close_keep_the_counts() -> None:
    ledger = LeaseLedger(usage_half_life=60)
    a = ledger.open(req(1), "h1", 2.0, now=10.0, expires=70.0, express=False)
    b = ledger.open(req(2), "h2", 1.0, now=11.0, expires=71.0, express=True)
    assert (a.lease, b.lease) == (1, 2) and ledger.leases == {1: a, 2: b}
    assert (b.host, b.granted, b.expires, b.express, b.speed) == ("h2", 11.0, 71.0, True, 1.0)
    assert ledger.held("m/u") == 2 and ledger.loads() == {"m/u": 2}
    ledger.check([], now=12.0)
    record, used = ledger.close(1, now=15.0)
    assert record is a and used == 5.0 * 2.0  # seconds x the host's speed
    assert ledger.held("m/u") == 1 and 1 not in ledger.leases
    ledger.close(2, now=15.0)
    assert ledger.held("m/u") == 0 and ledger.loads() == {}  # no longer active
    c = ledger.open(req(3), "h1", 1.0, now=16.0, expires=76.0, express=False)
    assert c.lease == 3  # ids are never reused
    ledger.check([], now=16.0)


def test_waiting_requests_count_in_the_load() -> None:
    ledger = LeaseLedger(usage_half_life=60)
    ledger.wait("big/u")
    ledger.wait("big/u")
    ledger.open(req(1, "big/u"), "h", 1.0, now=0.0, expires=1.0, express=False)
    assert ledger.loads() == {"big/u": 3} and ledger.held("big/u") == 1
    ledger.check([req(2, "big/u"), req(3, "big/u")], now=0.0)
    ledger.stop_waiting("big/u")
    assert ledger.loads() == {"big/u": 2}


def test_use_counts_running_leases_and_halves_with_time() -> None:
    ledger = LeaseLedger(usage_half_life=10)
    ledger.open(req(1), "h", 2.0, now=0.0, expires=1e9, express=False)
    assert ledger.usage("m/u", 5.0) == 10.0  # running: 5 s x speed 2
    ledger.close(1, now=10.0)  # 20 used, charged at t=10
    assert ledger.usage("m/u", 10.0) == pytest.approx(20.0)
    assert ledger.usage("m/u", 20.0) == pytest.approx(10.0)  # one half-life later
    assert ledger.usage("m/u", 40.0) == pytest.approx(20.0 * math.pow(2, -3))
    assert ledger.usage("nobody/u", 40.0) == 0.0


def test_check_finds_counts_that_disagree_with_the_leases() -> None:
    ledger = LeaseLedger(usage_half_life=60)
    ledger.open(req(1), "h", 1.0, now=0.0, expires=1.0, express=False)
    ledger.wait("m/u")
    with pytest.raises(AssertionError, match="load"):
        ledger.check([], now=0.0)  # the ledger counts a waiting request nobody has
    ledger.check([req(2)], now=0.0)
    ledger._running["m/u"][0] += 1.0  # a running sum out of step
    with pytest.raises(AssertionError, match="speeds"):
        ledger.check([req(2)], now=0.0)
