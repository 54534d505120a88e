"""The hosts and their free slots, indexed for the pick of a slot. Pure.

A request gets a slot in the fastest tier that has one, at random within
the tier, weighted by free slots. So free slots are kept per (compiler key,
speed tier) in pools with one entry per free slot, which support O(1) add,
remove and weighted random choice: the cost of a pick does not grow with
the farm. A free slot is filed at the speed of the job that would take it:
a host running L jobs has the entries L + 1 ... offered, entry j in the
tier of its speed with j jobs at once (`Host.speed_of`: shared once they
are more than its CPUs), so an idle 1-CPU host with 2 slots offers one
slot at its full speed and one at half; a grant takes entry L + 1, the
host's fastest, which is in the tier picked from. Express lanes (one per
host, at the speed of one job alone) are kept the same way. The index owns
what the pools mirror (each host's offered slots, leases and express
lease), so every change to a host's slots goes through it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

from ccfarm.model import CompilerIdentity, HostReport
from ccfarm.scheduler.ledger import Lease
from ccfarm.scheduler.policy import Policy, cpu_share, offered_slots, tier_of

#: what the indexes are kept per: a compiler identity, or ANY
Key = CompilerIdentity | None
ANY: Key = None  # the key of requests that take any host (every host has it)


class SlotPool:
    """Free slots of some hosts: one entry per free slot, so a random pick is
    weighted by free slots. O(1) add/remove/choice."""

    __slots__ = ("entries", "where")

    def __init__(self) -> None:
        self.entries: list[tuple[str, int]] = []
        self.where: dict[tuple[str, int], int] = {}

    def add(self, entry: tuple[str, int]) -> None:
        self.where[entry] = len(self.entries)
        self.entries.append(entry)

    def remove(self, entry: tuple[str, int]) -> None:
        i = self.where.pop(entry)
        last = self.entries.pop()
        if i < len(self.entries):
            self.entries[i] = last
            self.where[last] = i

    def choose(self, rng: random.Random) -> str:
        return self.entries[rng.randrange(len(self.entries))][0]

    def check(self) -> None:
        """Raise AssertionError unless `where` says where each entry is."""
        assert self.where == {e: i for i, e in enumerate(self.entries)}, "pool positions"


class TierPools:
    """Per compiler key, a pool per speed tier, and the key's tiers fastest first."""

    __slots__ = ("pools", "tiers")

    def __init__(self) -> None:
        self.pools: dict[Key, dict[int, SlotPool]] = {}
        self.tiers: dict[Key, list[int]] = {}

    def pool(self, key: Key, tier: int) -> SlotPool:
        """The pool of `key` and `tier`, made (and the tier listed) on first use."""
        by_tier = self.pools.setdefault(key, {})
        pool = by_tier.get(tier)
        if pool is None:
            pool = by_tier[tier] = SlotPool()
            self.tiers[key] = sorted(by_tier, reverse=True)
        return pool

    def fastest(self, key: Key) -> SlotPool | None:
        """The pool of the fastest tier with an entry."""
        for tier in self.tiers.get(key, ()):
            pool = self.pools[key][tier]
            if pool.entries:
                return pool
        return None

    def check(self, key: Key, expect: dict[tuple[str, int], int]) -> None:
        """Raise AssertionError unless the pools of `key` hold exactly the
        entries of `expect`, each in the pool of the tier it maps to."""
        by_tier = self.pools.get(key, {})
        assert self.tiers.get(key, []) == sorted(by_tier, reverse=True), f"{key}: tier order"
        for tier, pool in by_tier.items():
            pool.check()
            for entry in pool.entries:
                assert expect.get(entry) == tier, f"{key}: {entry} not of tier {tier}"
        entries = [e for pool in by_tier.values() for e in pool.entries]
        assert sorted(entries) == sorted(expect), f"{key}: {entries} != {expect}"


class Capacity:
    """Offered slots per compiler key and speed tier, and their speed: what
    a job on a slower host would not wait for (see `Decisions.need`)."""

    def __init__(self) -> None:
        #: per key and tier: [offered slots, sum of speed x offered slots]
        self._by_tier: dict[Key, dict[int, list[float]]] = {}
        #: per key and tier: `faster`, kept until the key's capacity changes
        #: (asked on every grant, changed only by hosts' reports)
        self._faster: dict[Key, dict[int, tuple[float, float]]] = {}

    def add(self, key: Key, tier: int, slots: int, speed: float) -> None:
        """`slots` more (or, negative, fewer) slots of `speed` offered in `tier`."""
        cap = self._by_tier.setdefault(key, {}).setdefault(tier, [0.0, 0.0])
        cap[0] += slots
        cap[1] += slots * speed
        self._faster.pop(key, None)

    def faster(self, key: Key, tier: int) -> tuple[float, float]:
        """(offered slots, their mean speed) of the tiers faster than `tier`."""
        known = self._faster.get(key)
        if known is None:
            known = self._faster[key] = {}
        capacity = known.get(tier)
        if capacity is None:
            capacity = known[tier] = self._sum_faster(key, tier)
        return capacity

    def _sum_faster(self, key: Key, tier: int) -> tuple[float, float]:
        slots = speed_slots = 0.0
        for t, (n, weighted) in self._by_tier.get(key, {}).items():
            if t > tier:
                slots += n
                speed_slots += weighted
        return slots, (speed_slots / slots if slots > 0 else 0.0)

    def check(self, key: Key, offered: Mapping[int, int]) -> None:
        """Raise AssertionError unless `key`'s slots per tier are `offered`.

        The speed sums are not checked: a host whose speed changes within its
        tier keeps the speed its slots were offered at."""
        listed = {t: n for t, (n, _) in self._by_tier.get(key, {}).items() if n}
        assert listed == {t: n for t, n in offered.items() if n}, f"{key}: capacity"
        for tier, known in self._faster.get(key, {}).items():
            assert known == self._sum_faster(key, tier), f"{key}: stale faster capacity"


class Host:
    """A host as the farm sees it: its last report, its tier, the slots it
    offers and the leases it runs (changed only through `SlotIndex`)."""

    # one per host, thousands of them: compact (measured fewer cache misses)
    __slots__ = (
        "report",
        "speed",
        "tier",
        "tiers",
        "disabled",
        "leaving",
        "limit",
        "offered",
        "leases",
        "express",
        "last_seen",
        "keys",
    )

    def __init__(
        self, report: HostReport, policy: Policy, now: float, speed: float | None = None
    ) -> None:
        self.report = report
        #: the speed the farm uses: the claimed one (`report.speed`) unless
        #: its jobs said otherwise (`evidence.SpeedEvidence`)
        self.speed = report.speed if speed is None else speed  # one job alone
        self.tier = tier_of(self.speed, policy)
        #: the tier of each of j jobs at once, j = 1 ... slots (`speed_of`)
        self.tiers = job_tiers(report, self.speed, policy)
        self.disabled = False
        self.leaving = False  # said BYEE: finishing its jobs, taking no new ones
        self.limit: int | None = None  # at most this many slots (quarantine, probation)
        self.offered = 0
        self.leases: dict[int, None] = {}  # lease ids, oldest first
        self.express: int | None = None  # the express lease running here, if any
        self.last_seen = now
        self.keys: tuple[Key, ...] = (ANY, *report.compilers)

    @property
    def free(self) -> int:
        return max(0, self.offered - len(self.leases))

    def speed_of(self, jobs: int) -> float:
        """The speed of each job while `jobs` run here at once."""
        return self.speed * cpu_share(self.report, jobs)

    @property
    def next_jobs(self) -> int:
        """Jobs at once here with one more granted (with every slot taken:
        its last slot's count, which the decisions then speak of)."""
        return min(len(self.leases), len(self.tiers) - 1) + 1

    @property
    def next_share(self) -> float:
        """Of the speed of one job alone, the share a job granted here now gets."""
        return cpu_share(self.report, self.next_jobs)

    @property
    def next_speed(self) -> float:
        """The speed of a job granted here now (the decisions' host speed)."""
        return self.speed * self.next_share

    @property
    def next_tier(self) -> int:
        """The tier of a job granted here now."""
        return self.tiers[self.next_jobs - 1]

    @property
    def lane_open(self) -> bool:
        """Can it take an express job now? (Not while on trial: one job at a time.)"""
        return self.offered > 0 and self.express is None and self.limit is None


def job_tiers(report: HostReport, speed: float, policy: Policy) -> tuple[int, ...]:
    """The tier of each job while j = 1 ... slots jobs run on a host of
    `report` whose one job alone runs at `speed` (one entry at least)."""
    return tuple(
        tier_of(speed * cpu_share(report, j), policy) for j in range(1, max(report.slots, 1) + 1)
    )


class SlotIndex:
    """Every host, and per compiler key and speed tier its free slots, its
    open express lanes and its offered capacity (`capacity`)."""

    def __init__(self, policy: Policy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.hosts: dict[str, Host] = {}
        #: compiler key -> tier -> pool of free slots
        self._free = TierPools()
        #: express lanes: compiler key -> tier -> hosts whose lane is open
        self._lanes = TierPools()
        #: per key and tier: the slots offered
        self.capacity = Capacity()
        #: how many hosts have each compiler (to refuse at once what nobody has)
        self._key_hosts: dict[Key, int] = {}
        #: all hosts' offered slots
        self.offered_total = 0

    # -- hosts ---------------------------------------------------------------------

    def join(self, report: HostReport, now: float, speed: float | None = None) -> Host:
        """The host of a registration or heartbeat, with `report` and seen
        `now`, at `speed` (default: the report's).

        A host whose compilers or tiers (of one job alone and of each number
        of jobs at once) changed is made anew (its keys and pools change with
        them), offering nothing until `offer`; it keeps its leases, whether
        it is drained and whether it is leaving.
        """
        speed = report.speed if speed is None else speed
        host = self.hosts.get(report.host)
        if (
            host is None
            or host.report.compilers != report.compilers
            or (
                # the tiers follow from these alone: a heartbeat that changes
                # none of them costs no O(slots) recount
                (speed, report.slots, report.cpus)
                != (host.speed, host.report.slots, host.report.cpus)
                and host.tiers != job_tiers(report, speed, self.policy)
            )
        ):
            old = host
            if old is not None:
                self.set_offered(old, 0)
                self._count_keys(old, -1)
            host = Host(report, self.policy, now, speed)
            if old is not None:
                host.disabled = old.disabled
                host.leaving = old.leaving
                host.limit = old.limit
                host.leases = dict(old.leases)
                host.express = old.express
            self.hosts[report.host] = host
            self._count_keys(host, +1)
        host.report = report
        host.speed = speed
        host.last_seen = now
        return host

    def leave(self, host: Host) -> None:
        """The host is gone (its offer set to 0 and its leases ended first)."""
        del self.hosts[host.report.host]
        self._count_keys(host, -1)

    def offer(self, host: Host) -> None:
        """Offer what the host's report, drained or leaving state and limit allow."""
        closed = host.disabled or host.leaving
        offered = offered_slots(host.report, self.policy, disabled=closed)
        if host.limit is not None:
            offered = min(offered, host.limit)
        self.set_offered(host, offered)

    def set_limit(self, host: Host, limit: int | None) -> None:
        """Cap what a host offers (None: no cap) and offer again."""
        lane_before = host.lane_open
        host.limit = limit
        if host.lane_open != lane_before:
            self._toggle_lane(host)
        self.offer(host)

    def set_disabled(self, host: Host, disabled: bool) -> None:
        """Drain a host (it offers nothing; its leases run on) or return it."""
        host.disabled = disabled
        self.offer(host)

    def set_leaving(self, host: Host) -> None:
        """The host is going (it offers nothing; its leases run on) until it is gone."""
        host.leaving = True
        self.offer(host)

    def set_offered(self, host: Host, offered: int) -> None:
        """Change a host's offer and keep the free-slot pools in step."""
        lane_before = host.lane_open
        old = host.offered
        host.offered = offered
        self.offered_total += offered - old
        if host.lane_open != lane_before:
            self._toggle_lane(host)
        running = len(host.leases)
        name = host.report.host
        # capacity: the offered slots j = 1 ... offered; free: j = running + 1 ... offered
        step = 1 if offered > old else -1
        for j in range(min(old, offered) + 1, max(old, offered) + 1):
            tier, speed = host.tiers[j - 1], host.speed_of(j)
            for key in host.keys:
                self.capacity.add(key, tier, step, speed)
                if j > running:
                    pool = self._free.pool(key, tier)
                    (pool.add if step > 0 else pool.remove)((name, j))

    def _count_keys(self, host: Host, delta: int) -> None:
        for key in host.keys:
            self._key_hosts[key] = self._key_hosts.get(key, 0) + delta

    # -- leases --------------------------------------------------------------------

    def take_slot(self, host: Host, lease: int) -> None:
        j = len(host.leases) + 1  # the entry of the job this lease is
        host.leases[lease] = None
        if j <= host.offered:
            tier = host.tiers[j - 1]
            for key in host.keys:
                self._free.pool(key, tier).remove((host.report.host, j))

    def free_slot(self, host: Host, lease: int) -> None:
        j = len(host.leases)  # the entry the ended job leaves free
        del host.leases[lease]
        if j <= host.offered:
            tier = host.tiers[j - 1]
            for key in host.keys:
                self._free.pool(key, tier).add((host.report.host, j))

    def take_lane(self, host: Host, lease: int) -> None:
        host.express = lease
        self._toggle_lane(host)

    def free_lane(self, host: Host) -> None:
        host.express = None
        if host.lane_open:
            self._toggle_lane(host)

    def _toggle_lane(self, host: Host) -> None:
        """Add or remove the host's express lane to match `host.lane_open`."""
        entry = (host.report.host, 0)
        for key in host.keys:
            pool = self._lanes.pool(key, host.tier)
            if host.lane_open:
                pool.add(entry)
            else:
                pool.remove(entry)

    # -- picks ---------------------------------------------------------------------

    def pick(self, key: Key) -> Host | None:
        """A host with a free slot for `key`: the fastest tier, random within it."""
        pool = self._free.fastest(key)
        return None if pool is None else self.hosts[pool.choose(self.rng)]

    def pick_lane(self, key: Key) -> Host | None:
        """A host whose express lane is open for `key`, the same way."""
        pool = self._lanes.fastest(key)
        return None if pool is None else self.hosts[pool.choose(self.rng)]

    def candidates(self, key: Key) -> list[Host]:
        """The hosts `pick` chooses among now (without a random draw)."""
        pool = self._free.fastest(key)
        names = dict.fromkeys(name for name, _ in pool.entries) if pool is not None else {}
        return [self.hosts[name] for name in names]

    def has_compiler(self, key: Key) -> bool:
        """Does any host (free or not) have this compiler?"""
        return bool(self._key_hosts.get(key))

    def tier_order(self) -> list[int]:
        return sorted({h.tier for h in self.hosts.values()}, reverse=True)

    # -- invariants ----------------------------------------------------------------

    def check(self, leases: Mapping[int, Lease]) -> None:
        """Raise AssertionError unless every index agrees with the hosts, and
        the hosts' leases with `leases` (the ledger's)."""
        hosts = self.hosts
        on: dict[int, str] = {}
        for name, h in hosts.items():
            assert h.report.host == name, f"host {name} filed as {h.report.host}"
            assert len(h.leases) <= h.report.slots, f"{name}: more leases than slots"
            assert h.limit is None or h.offered <= h.limit, f"{name}: offers beyond its limit"
            for lease in h.leases:
                record = leases.get(lease)
                assert record is not None and record.host == name and not record.express, lease
                on[lease] = name
            if h.express is not None:
                record = leases.get(h.express)
                assert record is not None and record.host == name and record.express, record
                on[h.express] = name
        assert on.keys() == leases.keys(), f"leases on no host: {leases.keys() - on.keys()}"
        for name, h in hosts.items():
            assert h.tiers == job_tiers(h.report, h.speed, self.policy), f"{name}: job tiers"
        for key in {
            *self._free.pools,
            *self._lanes.pools,
            *(k for h in hosts.values() for k in h.keys),
        }:
            mine = [h for h in hosts.values() if key in h.keys]
            free = {
                (h.report.host, j): h.tiers[j - 1]
                for h in mine
                for j in range(len(h.leases) + 1, h.offered + 1)
            }
            self._free.check(key, free)
            self._lanes.check(key, {(h.report.host, 0): h.tier for h in mine if h.lane_open})
            offered = Counter[int]()
            for h in mine:
                for j in range(1, h.offered + 1):
                    offered[h.tiers[j - 1]] += 1
            self.capacity.check(key, offered)
            assert self._key_hosts.get(key, 0) == len(mine), f"{key}: host count"
        assert self.offered_total == sum(h.offered for h in hosts.values()), "offered total"
