"""The wait queue: per-compiler rings of clients, each client's line by cost."""

from __future__ import annotations

import pytest

from ccfarm.model import CompilerIdentity, LeaseRequest
from ccfarm.scheduler.queue import WaitingRequest, WaitQueue

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
_ids = iter(range(1, 10**9))


def waiting(client: str, cost: float = 1.0, key: CompilerIdentity | None = GCC) -> WaitingRequest:
    return WaitingRequest(LeaseRequest(next(_ids), client, key, 30.0), key, 30.0, cost)


def test_lines_are_sorted_by_cost_and_counted_per_key() -> None:
    queue = WaitQueue()
    jobs = [waiting("a/u", cost) for cost in (2.0, 0.5, 1.0)] + [waiting("b/u", 0.3, None)]
    for job in jobs:
        queue.add(job)
    assert [cost for cost, _ in queue.rings[GCC]["a/u"]] == [0.5, 1.0, 2.0]
    assert (queue.counts[GCC], queue.counts[None], len(queue)) == (3, 1, 4)
    assert list(queue) == jobs  # arrival order
    assert queue.get(jobs[1].request.request) == jobs[1]
    assert queue.cheapest_cost(GCC) == 0.5 and queue.cheapest_cost(None) == 0.3
    queue.check()


def test_take_gives_the_smallest_or_biggest_job_oldest_first() -> None:
    queue = WaitQueue()
    first, small, second = waiting("a/u", 3.0), waiting("a/u", 0.5), waiting("a/u", 3.0)
    for job in (first, small, second):
        queue.add(job)
    assert queue.take(GCC, "a/u", smallest=False) == first  # the biggest, the older of equals
    assert queue.take(GCC, "a/u", smallest=True) == small
    assert queue.take(GCC, "a/u", smallest=False) == second
    assert queue.counts[GCC] == 0 and GCC not in queue.rings and len(queue) == 0
    queue.check()


def test_a_served_client_goes_to_the_back_of_the_ring() -> None:
    queue = WaitQueue()
    for client in ("a/u", "a/u", "b/u", "c/u"):
        queue.add(waiting(client))
    assert list(queue.rings[GCC]) == ["a/u", "b/u", "c/u"]
    queue.take(GCC, "a/u", smallest=True)
    queue.served("a/u")
    assert list(queue.rings[GCC]) == ["b/u", "c/u", "a/u"]
    queue.check()


def test_a_client_served_longer_ago_than_the_head_joins_in_front() -> None:
    queue = WaitQueue()
    for client in ("old/u", "new/u"):
        queue.served(client)
    assert queue.last_served("old/u") < queue.last_served("new/u")
    assert queue.last_served("never/u") == 0
    queue.add(waiting("new/u"))
    queue.add(waiting("old/u"))  # served before the head: goes first
    queue.add(waiting("never/u"))  # never served: first of all
    queue.add(waiting("later/u"))
    queue.served("later/u")
    queue.add(waiting("other/u"))  # not older than the head: at the back
    assert list(queue.rings[GCC]) == ["never/u", "old/u", "new/u", "later/u", "other/u"]


def test_remove_takes_a_request_out_and_the_heap_skips_it() -> None:
    queue = WaitQueue()
    cheap, dear = waiting("a/u", 0.2), waiting("b/u", 4.0)
    queue.add(cheap)
    queue.add(dear)
    assert queue.remove(cheap.request.request) == cheap
    assert queue.remove(cheap.request.request) is None  # once only
    assert queue.cheapest_cost(GCC) == 4.0  # the stale top is popped
    assert list(queue.rings[GCC]) == ["b/u"] and queue.counts[GCC] == 1
    queue.check()


def test_check_finds_lines_that_disagree_with_the_requests() -> None:
    queue = WaitQueue()
    job = waiting("a/u", 1.0)
    queue.add(job)
    queue.add(waiting("a/u", 2.0))
    queue._rings[GCC]["a/u"].reverse()  # a line out of order
    with pytest.raises(AssertionError, match="line"):
        queue.check()
    queue._rings[GCC]["a/u"].reverse()
    queue._count[GCC] += 1  # a count out of step
    with pytest.raises(AssertionError, match="count"):
        queue.check()
    queue._count[GCC] -= 1
    del queue._waiting[job.request.request]  # in line but not waiting
    with pytest.raises(AssertionError, match="not waiting"):
        queue.check()
