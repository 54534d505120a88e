"""The leases running, and how much of the farm each client holds and used. Pure.

Fairness ranks waiting clients by their use of the farm lately: speed x
seconds of their leases, running ones included, halving every
`usage_half_life`. That is kept in O(1) per client: the ended leases'
use as one decaying value, and the running leases as two sums (speeds,
speed x grant time), whose use so far is now x speeds - speed-times.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ccfarm.model import LeaseRequest

_LN2 = math.log(2)


@dataclass(slots=True)
class Lease:
    """A granted lease, as the farm keeps it; nothing changes it.

    Not frozen, like the other records built on every grant (`Turn`,
    `WaitingRequest`): a frozen dataclass costs twice as much to build, and a
    NamedTuple's fields are slow to read (Python 3.11); with either, a request
    and release in bench/core_scaling.py took 5% (frozen) or 2% (NamedTuple)
    more instructions."""

    lease: int
    request: LeaseRequest
    host: str
    granted: float  # when
    expires: float  # when it is revoked if still held
    express: bool
    speed: float  # the job's on its host, when granted (what its use is charged at)
    #: of the host's speed (one job alone), the share this job got when
    #: granted: less than 1 when it made the host run more jobs than its CPUs
    share: float = 1.0


class LeaseLedger:
    """Leases by id, and per client: leases held, load (leases held +
    requests waiting; the clients in it are the active ones), and use."""

    def __init__(self, usage_half_life: float) -> None:
        self.usage_half_life = usage_half_life
        self.leases: dict[int, Lease] = {}
        self._next_lease = 1
        self._held: dict[str, int] = {}
        self._load: dict[str, int] = {}
        #: per client: the farm it used lately (speed x seconds of ended
        #: leases, decaying with `usage_half_life`: value and when), and its
        #: running leases as [sum of speeds, sum of speed x grant time], so
        #: that their use so far is O(1): now x speeds - speed-times
        self._usage: dict[str, tuple[float, float]] = {}
        self._running: dict[str, list[float]] = {}

    # -- leases --------------------------------------------------------------------

    def open(
        self,
        req: LeaseRequest,
        host: str,
        speed: float,
        now: float,
        expires: float,
        express: bool,
        share: float = 1.0,
    ) -> Lease:
        """A new lease for `req` on `host` (the job's `speed` there, `share` of
        the host's), from `now`."""
        lease = Lease(self._next_lease, req, host, now, expires, express, speed, share)
        self._next_lease += 1
        self.leases[lease.lease] = lease
        client = req.client
        self._held[client] = self._held.get(client, 0) + 1
        running = self._running.get(client)
        if running is None:
            running = self._running[client] = [0.0, 0.0]
        running[0] += speed
        running[1] += speed * now
        self._load[client] = self._load.get(client, 0) + 1
        return lease

    def close(self, lease: int, now: float) -> tuple[Lease, float]:
        """End a lease: its client is charged for it. Returns the lease and
        its use (speed x seconds)."""
        record = self.leases.pop(lease)
        client = record.request.client
        _decrement(self._held, client)
        _decrement(self._load, client)
        running = self._running[client]
        running[0] -= record.speed
        running[1] -= record.speed * record.granted
        if self._held.get(client, 0) == 0:
            del self._running[client]
        used = max(0.0, now - record.granted) * record.speed
        value, at = self._usage.get(client, (0.0, now))
        self._usage[client] = (value * self._decay(now - at) + used, now)
        return record, used

    # -- waiting requests ----------------------------------------------------------

    def wait(self, client: str) -> None:
        """One more request of `client` waits."""
        self._load[client] = self._load.get(client, 0) + 1

    def stop_waiting(self, client: str) -> None:
        """One request of `client` no longer waits (granted or gone)."""
        _decrement(self._load, client)

    # -- views ---------------------------------------------------------------------

    def held(self, client: str) -> int:
        """Leases `client` holds now."""
        return self._held.get(client, 0)

    def loads(self) -> Mapping[str, int]:
        """Active clients -> leases held + requests waiting."""
        return self._load

    def usage(self, client: str, now: float) -> float:
        """How much of the farm `client` used lately: speed x seconds of its
        leases, running ones included, halving every `usage_half_life`."""
        value, at = self._usage.get(client, (0.0, now))
        speeds, speed_times = self._running.get(client, (0.0, 0.0))
        # `_decay` written out: this runs for each waiting client a grant looks at
        decay = math.exp(-_LN2 * max(0.0, now - at) / self.usage_half_life)
        return value * decay + max(0.0, now * speeds - speed_times)

    def _decay(self, elapsed: float) -> float:
        return math.exp(-_LN2 * max(0.0, elapsed) / self.usage_half_life)

    def check(self, waiting: Iterable[LeaseRequest], now: float) -> None:
        """Raise AssertionError unless the per-client counts and sums are what
        the leases and the `waiting` requests say (at `now`)."""
        assert all(lease.lease == i < self._next_lease for i, lease in self.leases.items())
        held = Counter(lease.request.client for lease in self.leases.values())
        assert self._held == dict(held), f"held {self._held} != {dict(held)}"
        load = held + Counter(r.client for r in waiting)
        assert self._load == dict(load), f"load {self._load} != {dict(load)}"
        # the running part of each client's use, kept in O(1), is what its leases say
        assert set(self._running) == set(held), "running sums of clients without leases"
        for client, (speeds, speed_times) in self._running.items():
            mine = [lease for lease in self.leases.values() if lease.request.client == client]
            assert abs(speeds - sum(lease.speed for lease in mine)) < 1e-6, f"{client}: speeds"
            direct = sum((now - lease.granted) * lease.speed for lease in mine)
            assert abs((now * speeds - speed_times) - direct) < 1e-6 * max(1.0, now), client


def _decrement(counts: dict[str, int], client: str) -> None:
    if counts[client] <= 1:
        del counts[client]
    else:
        counts[client] -= 1
