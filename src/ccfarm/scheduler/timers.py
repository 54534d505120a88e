"""The farm's deadlines: named records in one heap, earliest first. Pure.

A deadline is not taken out of the heap when what it guards ends early (a
lease released, a heartbeat that moves a host's deadline on): finding it in
the heap would cost O(n). When it is due, the farm checks whether it still
applies; the stale ones cost one pop each. One record class per kind.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostDeadline:
    """The host is dropped unless it sent a heartbeat since (`host_timeout`)."""

    host: str


@dataclass(frozen=True, slots=True)
class LeaseDeadline:
    """The lease is revoked if it is still held (`lease_timeout`)."""

    lease: int


@dataclass(frozen=True, slots=True)
class PatienceDeadline:
    """A request held back for a faster host takes any free slot (`patience`)."""

    request: int


@dataclass(frozen=True, slots=True)
class WaitDeadline:
    """A request still waiting is refused (its timeout, at most `max_wait`)."""

    request: int


@dataclass(frozen=True, slots=True)
class QuarantineDeadline:
    """A host that failed a job goes on probation (`health.HostHealth`)."""

    host: str


Deadline = HostDeadline | LeaseDeadline | PatienceDeadline | WaitDeadline | QuarantineDeadline
#: how each kind is stored (a number), and the record of each
_HOST, _LEASE, _PATIENCE, _WAIT, _QUARANTINE = range(5)
_KINDS: dict[int, type[Deadline]] = {
    _HOST: HostDeadline,
    _LEASE: LeaseDeadline,
    _PATIENCE: PatienceDeadline,
    _WAIT: WaitDeadline,
    _QUARANTINE: QuarantineDeadline,
}
#: the kinds whose subject is a host's name (the others: a number)
_NAMED = (_HOST, _QUARANTINE)


class Timers:
    """Deadlines by time; equal times in the order they were set, so that a
    replayed timeline expires things in the same order.

    They go in as a kind and a subject and come out as records. In the heap
    they are plain tuples (time, order, kind number, subject), which the
    garbage collector stops tracking: the heap may hold a deadline for each
    lease of the last `lease_timeout` (released ones included), and records
    there would be two more tracked objects each (measured: more collections,
    and slower ones).

    Stale deadlines are also dropped in bulk: `compact` keeps only those
    the caller says still apply, and the farm calls it whenever the heap
    holds more than twice what can still expire (`needs_compacting`), so
    the heap stays within a constant factor of the live deadlines at O(1)
    amortized cost per deadline set."""

    #: below this many deadlines the heap is never compacted (not worth it)
    COMPACT_FLOOR = 4096

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, int | str]] = []
        self._seq = 0

    def set_host(self, when: float, host: str) -> None:
        self._push(when, _HOST, host)

    def set_lease(self, when: float, lease: int) -> None:
        self._push(when, _LEASE, lease)

    def set_patience(self, when: float, request: int) -> None:
        self._push(when, _PATIENCE, request)

    def set_wait(self, when: float, request: int) -> None:
        self._push(when, _WAIT, request)

    def set_quarantine(self, when: float, host: str) -> None:
        self._push(when, _QUARANTINE, host)

    def _push(self, when: float, kind: int, subject: int | str) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, kind, subject))

    def pop_due(self, now: float) -> Deadline | None:
        """The earliest deadline at or before `now`, taken out; None if none is due."""
        if self._heap and self._heap[0][0] <= now:
            _, _, kind, subject = heapq.heappop(self._heap)
            return _record(kind, subject)
        return None

    def next(self) -> float | None:
        """When the earliest deadline is due (it may be stale)."""
        return self._heap[0][0] if self._heap else None

    def pending(self) -> Iterator[tuple[float, Deadline]]:
        """Every deadline not yet due or popped, with its time, in no order."""
        for when, _, kind, subject in self._heap:
            yield when, _record(kind, subject)

    def __len__(self) -> int:
        return len(self._heap)

    def needs_compacting(self, live: int) -> bool:
        """Do stale deadlines outnumber the `live` ones (at most that many can
        still apply) by enough to make `compact` worth its O(n)?"""
        return len(self._heap) > max(self.COMPACT_FLOOR, 2 * live)

    def compact(self, applies: Callable[[float, Deadline], bool]) -> int:
        """Drop every deadline for which `applies(when, deadline)` is false
        (what it guarded has ended); the order of the others is kept.
        Returns how many were dropped."""
        before = len(self._heap)
        kept = [e for e in self._heap if applies(e[0], _record(e[2], e[3]))]
        heapq.heapify(kept)  # (the (time, order) keys are unique: the same order)
        self._heap = kept
        return before - len(kept)

    def check(self, expect: Iterable[tuple[float, Deadline]] = ()) -> None:
        """Raise AssertionError unless the heap is a heap of known kinds and
        holds each of `expect` (when, deadline): what the caller knows must
        expire."""
        heap = self._heap
        for i in range(1, len(heap)):
            parent, child = heap[(i - 1) // 2], heap[i]
            assert parent[:2] <= child[:2], f"heap out of order at {i}: {parent} > {child}"
        for _, _, kind, subject in heap:
            assert (kind in _NAMED) == isinstance(subject, str) and kind in _KINDS, kind
        pending = set(self.pending())
        for item in expect:
            assert item in pending, f"no deadline {item}"


def _record(kind: int, subject: int | str) -> Deadline:
    """The record of a stored deadline."""
    return _KINDS[kind](subject)  # type: ignore[arg-type]
