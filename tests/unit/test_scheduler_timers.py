"""The scheduler's deadlines: named records, earliest first, ties in order set."""

from __future__ import annotations

import pytest

from ccfarm.scheduler.timers import (
    HostDeadline,
    LeaseDeadline,
    PatienceDeadline,
    QuarantineDeadline,
    Timers,
    WaitDeadline,
)


def test_due_deadlines_come_out_earliest_first() -> None:
    timers = Timers()
    timers.set_lease(5.0, 1)
    timers.set_host(2.0, "a")
    timers.set_wait(9.0, 7)
    assert timers.next() == 2.0
    assert timers.pop_due(1.9) is None  # nothing due yet: nothing taken
    assert len(timers) == 3
    assert timers.pop_due(5.0) == HostDeadline("a")
    assert timers.pop_due(5.0) == LeaseDeadline(1)
    assert timers.pop_due(5.0) is None
    assert timers.next() == 9.0


def test_equal_times_keep_the_order_they_were_set() -> None:
    """A replayed timeline expires things in the same order."""
    timers = Timers()
    timers.set_wait(4.0, 3)
    timers.set_patience(4.0, 3)
    timers.set_host(4.0, "b")
    timers.set_quarantine(4.0, "b")
    timers.set_lease(4.0, 2)
    order = [
        WaitDeadline(3),
        PatienceDeadline(3),
        HostDeadline("b"),
        QuarantineDeadline("b"),
        LeaseDeadline(2),
    ]
    assert [timers.pop_due(4.0) for _ in order] == order
    assert timers.next() is None


def test_kinds_are_distinct_records() -> None:
    assert PatienceDeadline(1) != WaitDeadline(1)
    assert {LeaseDeadline(1), LeaseDeadline(1)} == {LeaseDeadline(1)}
    with pytest.raises(AttributeError):
        LeaseDeadline(1).lease = 2  # type: ignore[misc]


def test_check_wants_every_expected_deadline() -> None:
    timers = Timers()
    timers.set_lease(3.0, 1)
    timers.set_host(1.0, "a")
    assert sorted(timers.pending(), key=lambda p: p[0]) == [
        (1.0, HostDeadline("a")),
        (3.0, LeaseDeadline(1)),
    ]
    timers.check([(3.0, LeaseDeadline(1))])
    with pytest.raises(AssertionError, match="no deadline"):
        timers.check([(4.0, LeaseDeadline(1))])  # at another time: not the same
    with pytest.raises(AssertionError, match="no deadline"):
        timers.check([(1.0, WaitDeadline(9))])


def test_check_finds_a_broken_heap() -> None:
    timers = Timers()
    for when in (1.0, 2.0, 3.0):
        timers.set_wait(when, int(when))
    timers.check()
    timers._heap.reverse()  # what a bug in the heap's upkeep would do
    with pytest.raises(AssertionError, match="out of order"):
        timers.check()


def test_compact_drops_what_no_longer_applies_and_keeps_the_order() -> None:
    timers = Timers()
    for lease in range(10):
        timers.set_lease(float(lease % 3), lease)
    timers.set_host(1.0, "a")
    ended = {1, 4, 5, 8}
    dropped = timers.compact(
        lambda when, d: not (isinstance(d, LeaseDeadline) and d.lease in ended)
    )
    assert dropped == 4 and len(timers) == 7
    timers.check()
    out = []
    while (due := timers.pop_due(10.0)) is not None:
        out.append(due)
    # time first, then the order they were set, as before compacting
    assert out == [
        LeaseDeadline(0),
        LeaseDeadline(3),
        LeaseDeadline(6),
        LeaseDeadline(9),
        LeaseDeadline(7),
        HostDeadline("a"),
        LeaseDeadline(2),
    ]


def test_compacting_is_worth_it_only_past_the_floor_and_twice_the_live() -> None:
    timers = Timers()
    for lease in range(Timers.COMPACT_FLOOR):
        timers.set_lease(1.0, lease)
    assert not timers.needs_compacting(live=0)  # at the floor: never
    timers.set_lease(1.0, -1)
    assert timers.needs_compacting(live=0)
    assert timers.needs_compacting(live=Timers.COMPACT_FLOOR // 2)
    assert not timers.needs_compacting(live=Timers.COMPACT_FLOOR // 2 + 1)
