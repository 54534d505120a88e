"""Requests that found no slot, in the order fairness looks at them. Pure.

Per compiler key, a ring of the clients with waiting requests, in
least-recently-served order (a served client goes to the back), each
client's requests sorted by their relative cost, so that a client's smallest
and biggest jobs are at hand; and a heap of the key's costs, so that the
cheapest waiting job is found in O(log n) without looking at each client.
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from ccfarm.model import LeaseRequest
from ccfarm.scheduler.slots import Key

#: one client's waiting requests as (relative cost, request id), sorted
Line = list[tuple[float, int]]


@dataclass(slots=True)
class WaitingRequest:
    """A request waiting for a slot; nothing changes it (not frozen: see
    `ledger.Lease`)."""

    request: LeaseRequest
    key: Key  # the compiler it needs (ANY: any host)
    deadline: float  # when it is refused if it still waits
    cost: float  # its cost relative to an average job (see `costs.py`)
    since: float = 0.0  # when it began to wait


class WaitQueue:
    """The waiting requests, per compiler key and client."""

    def __init__(self) -> None:
        #: request id -> the request; in arrival order
        self._waiting: dict[int, WaitingRequest] = {}
        #: per key: clients with waiting requests, in round-robin order, each
        #: with its requests as (relative cost, id), sorted
        self._rings: dict[Key, OrderedDict[str, Line]] = {}
        #: per key: (cost, id) of its waiting requests, a heap whose top may be
        #: stale (served or cancelled since): the cheapest job, in O(log n)
        self._cheapest: dict[Key, list[tuple[float, int]]] = {}
        self._count: dict[Key, int] = {}
        #: read-only views for the rules that rank waiting clients (on the
        #: path of every grant: plain mappings, no call): per key, the
        #: clients longest unserved first, each with its requests as
        #: (relative cost, id), cheapest first; and how many requests wait
        self.rings: Mapping[Key, Mapping[str, Sequence[tuple[float, int]]]] = self._rings
        self.counts: Mapping[Key, int] = self._count
        #: grants so far, and the count at each client's last grant: the
        #: least recently served client has the smallest
        self._served = 0
        self._last_served: dict[str, int] = {}

    def add(self, waiting: WaitingRequest) -> None:
        req, key = waiting.request, waiting.key
        self._waiting[req.request] = waiting
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = OrderedDict()
            self._cheapest[key] = []
        if req.client not in ring:
            ring[req.client] = []
            # keep the ring in least-recently-served order: a client served
            # longer ago than the head goes first
            head = next(iter(ring))
            if self._last_served.get(req.client, 0) < self._last_served.get(head, 0):
                ring.move_to_end(req.client, last=False)
        bisect.insort(ring[req.client], (waiting.cost, req.request))
        heapq.heappush(self._cheapest[key], (waiting.cost, req.request))
        self._count[key] = self._count.get(key, 0) + 1

    def get(self, request: int) -> WaitingRequest | None:
        return self._waiting.get(request)

    def remove(self, request: int) -> WaitingRequest | None:
        """Take a request out of line (cancelled, or granted out of turn)."""
        waiting = self._waiting.pop(request, None)
        if waiting is not None:
            self._unqueue(waiting)
        return waiting

    def take(self, key: Key, client: str, *, smallest: bool) -> WaitingRequest:
        """The client's smallest or biggest waiting job (the oldest of equals),
        taken out of line; the client, served, goes to the back of it."""
        line = self._rings[key][client]
        pick = 0 if smallest else bisect.bisect_left(line, (line[-1][0],))
        waiting = self._waiting.pop(line[pick][1])
        self._unqueue(waiting)
        ring = self._rings.get(key)
        if ring is not None and client in ring:
            ring.move_to_end(client)  # served: to the back of the line
        return waiting

    def _unqueue(self, waiting: WaitingRequest) -> None:
        key, client = waiting.key, waiting.request.client
        self._count[key] -= 1
        ring = self._rings[key]
        line = ring[client]
        del line[bisect.bisect_left(line, (waiting.cost, waiting.request.request))]
        if not line:
            del ring[client]
            if not ring:
                del self._rings[key]
                del self._cheapest[key]

    def served(self, client: str) -> None:
        """The client got a lease (from the line or not): it is now the most
        recently served."""
        self._served += 1
        self._last_served[client] = self._served

    def last_served(self, client: str) -> int:
        """When the client was last served, in grants (0: never)."""
        return self._last_served.get(client, 0)

    # -- views ---------------------------------------------------------------------

    def cheapest_cost(self, key: Key) -> float:
        """The relative cost of the cheapest request waiting for `key` (one must)."""
        heap = self._cheapest[key]
        while heap[0][1] not in self._waiting:
            heapq.heappop(heap)
        return heap[0][0]

    def __iter__(self) -> Iterator[WaitingRequest]:
        """The waiting requests in arrival order."""
        return iter(self._waiting.values())

    def __len__(self) -> int:
        return len(self._waiting)

    def check(self) -> None:
        """Raise AssertionError unless the rings, heaps and counts hold exactly
        the waiting requests."""
        assert set(self._rings) == set(self._cheapest), "rings and heaps of other keys"
        in_line: Counter[int] = Counter()
        for key, ring in self._rings.items():
            assert ring, f"{key}: empty ring kept"
            assert self._count.get(key) == sum(len(line) for line in ring.values()), f"{key}: count"
            for client, line in ring.items():
                assert line and line == sorted(line), f"{key}: {client}'s line {line}"
                for cost, request in line:
                    waiting = self._waiting.get(request)
                    assert waiting is not None, f"{key}: {request} in line, not waiting"
                    assert (waiting.key, waiting.request.client, waiting.cost) == (
                        key,
                        client,
                        cost,
                    )
                    in_line[request] += 1
            heap = self._cheapest[key]
            for i in range(1, len(heap)):
                assert heap[(i - 1) // 2] <= heap[i], f"{key}: heap out of order"
            live = {request for cost, request in heap if request in self._waiting}
            assert live == {r for line in ring.values() for _, r in line}, f"{key}: heap"
            assert all(cost == self._waiting[r].cost for cost, r in heap if r in live)
        assert in_line == Counter(self._waiting.keys()), "each waiting request in line once"
        assert all(not n for key, n in self._count.items() if key not in self._rings), "counts"
