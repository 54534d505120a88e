"""The pure bounds: memory budget, connection caps, descriptor headroom, log rate."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.limits import ConnectionCaps, LogRateFilter, MemoryBudget, RateLimiter, fd_headroom

# -- MemoryBudget ----------------------------------------------------------------------


def test_budget_grants_what_fits_and_queues_the_rest_in_order() -> None:
    budget = MemoryBudget(100)
    assert budget.request("a", 60) is True
    assert budget.request("b", 50) is None  # does not fit: waits
    assert budget.request("c", 10) is None  # fits, but b waits ahead of it
    assert budget.waiting == 2
    assert budget.release(60) == ["b", "c"]
    assert budget.used == 60 and budget.waiting == 0
    budget.check()


def test_budget_refuses_what_can_never_fit() -> None:
    budget = MemoryBudget(100)
    assert budget.request("big", 101) is False
    assert budget.request("neg", -1) is False
    assert budget.waiting == 0 and budget.used == 0
    assert budget.fits(100) and not budget.fits(101)


def test_a_waiter_that_gives_up_lets_those_behind_it_in() -> None:
    budget = MemoryBudget(100)
    budget.request("a", 90)
    budget.request("b", 50)
    budget.request("c", 10)
    assert budget.cancel("b") == ["c"]
    assert budget.cancel("b") == []  # twice is nothing
    assert budget.used == 100


def test_budget_misuse_is_an_error() -> None:
    with pytest.raises(ValueError):
        MemoryBudget(0)
    budget = MemoryBudget(10)
    budget.request("a", 5)
    budget.request("b", 10)
    with pytest.raises(ValueError):
        budget.request("b", 1)  # already waiting
    with pytest.raises(ValueError):
        budget.release(6)  # more than in use


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from("rca"), st.integers(0, 7), st.integers(0, 130))))
def test_budget_never_overcommits_and_never_starves_a_fitting_head(
    steps: list[tuple[str, int, int]],
) -> None:
    """Random request/cancel/release: used stays within total, and nobody waits
    while the head of the queue would fit."""
    budget = MemoryBudget(100)
    held: dict[int, int] = {}  # key -> bytes granted
    waiting: dict[int, int] = {}
    for op, key, n in steps:
        if op == "r" and key not in waiting and key not in held:
            granted = budget.request(key, n)
            if granted is True:
                held[key] = n
            elif granted is None:
                waiting[key] = n
            else:
                assert n > 100
        elif op == "c" and key in waiting:
            for k in budget.cancel(key):
                held[k] = waiting.pop(k)
            waiting.pop(key, None)
        elif op == "a" and held:
            k = sorted(held)[key % len(held)]
            for g in budget.release(held.pop(k)):
                held[g] = waiting.pop(g)
        budget.check()
        assert budget.used == sum(held.values())
        assert budget.waiting == len(waiting)
        if waiting:
            head = next(iter(budget._waiting.values()))
            assert head > budget.free


# -- ConnectionCaps --------------------------------------------------------------------


def test_caps_per_address_and_in_total() -> None:
    caps = ConnectionCaps(total=3, per_address=2)
    assert caps.admit("a") is None and caps.admit("a") is None
    assert caps.admit("a") == "2 connections from a (limit 2)"
    assert caps.admit("b") is None
    assert caps.admit("c") == "3 connections open (limit 3)"
    caps.leave("a")
    assert caps.admit("c") is None
    caps.check()
    assert caps.of("a") == 1 and caps.open == 3


def test_caps_forget_addresses_with_nothing_open() -> None:
    caps = ConnectionCaps(total=10, per_address=10, what="requests")
    for i in range(5):
        assert caps.admit(f"10.0.0.{i}") is None
        caps.leave(f"10.0.0.{i}")
    assert caps._by_address == {} and caps.open == 0
    with pytest.raises(ValueError):
        caps.leave("10.0.0.1")
    with pytest.raises(ValueError):
        ConnectionCaps(0, 1)


def test_descriptor_headroom() -> None:
    assert fd_headroom(1024, 64, 1, 512) == 512
    assert fd_headroom(256, 64, 1, 512) == 192
    assert fd_headroom(256, 64, 4, 512) == 48
    assert fd_headroom(40, 64, 1, 512) == 1  # never 0: one connection is served
    assert fd_headroom(-1, 64, 1, 512) == 512  # unlimited


# -- RateLimiter -----------------------------------------------------------------------


def test_a_flood_of_one_line_is_cut_to_its_rate_and_counted() -> None:
    limiter = RateLimiter(rate=2.0, burst=5.0, total_rate=100.0, total_burst=100.0)
    allowed = [limiter.allow("x", 0.0) for _ in range(100)]
    assert allowed[:5] == [0] * 5 and allowed[5:] == [None] * 95
    # a second later two more lines may go; the first says how many were dropped
    assert limiter.allow("x", 1.0) == 95
    assert limiter.allow("x", 1.0) == 0
    assert limiter.allow("x", 1.0) is None


def test_other_lines_pass_while_one_floods_until_the_total_is_spent() -> None:
    limiter = RateLimiter(rate=1.0, burst=2.0, total_rate=1.0, total_burst=10.0)
    for _ in range(50):
        limiter.allow("flood", 0.0)
    assert limiter.allow("other", 0.0) == 0
    for i in range(20):
        limiter.allow(f"k{i}", 0.0)
    assert limiter.allow("late", 0.0) is None  # all 10 lines of the second are spent


@given(st.lists(st.tuples(st.integers(0, 5000), st.floats(0, 0.01)), max_size=400))
def test_limiter_memory_is_bounded_by_max_keys(lines: list[tuple[int, float]]) -> None:
    limiter = RateLimiter(max_keys=50)
    now = 0.0
    for key, step in lines:
        now += step
        limiter.allow(key, now)
        assert limiter.keys <= 51  # the keys and the total's bucket


@given(st.floats(0, 1000), st.integers(1, 200))
def test_limiter_allows_at_most_burst_plus_rate_times_time(span: float, n: int) -> None:
    limiter = RateLimiter(rate=5.0, burst=20.0, total_rate=1e9, total_burst=1e9)
    times = [span * i / n for i in range(n)]
    passed = sum(limiter.allow("k", t) is not None for t in times)
    assert passed <= 20 + 5.0 * span + 1


def test_the_log_filter_drops_and_then_says_how_many() -> None:
    log_filter = LogRateFilter(RateLimiter(rate=1.0, burst=2.0))

    def record(t: float, msg: str = "refused %s", args: tuple[object, ...] = ("x",)) -> bool:
        r = logging.LogRecord("ccfarmd", logging.WARNING, __file__, 1, msg, args, None)
        r.created = t
        kept = log_filter.filter(r)
        record.last = r.getMessage()  # type: ignore[attr-defined]
        return kept

    assert [record(0.0) for _ in range(5)] == [True, True, False, False, False]
    assert record(0.0, "another kind of line %s") is True
    assert record(10.0) is True
    assert record.last == "refused x (3 similar lines dropped)"  # type: ignore[attr-defined]
