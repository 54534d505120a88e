"""The farm model and every scheduling decision. Pure: no sockets, no clock.

The shell feeds events with the current time (`now`) and gets outcomes
back: grants, refusals, revocations. Randomness comes from the `random.Random`
given at construction, so tests replay exactly.

Hot-path costs do not grow with the farm: free slots are kept per
(compiler, speed tier) in sets that support O(1) add, remove and weighted
random choice; waiting clients are kept per compiler in least-recently-served
order, each client's requests sorted by their relative cost; deadlines are in
heaps.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections import OrderedDict
from collections.abc import Iterator

from ccfarm.model import (
    CompilerIdentity,
    HostReport,
    LeaseGranted,
    LeaseRefused,
    LeaseRequest,
    LeaseRevoked,
)
from ccfarm.scheduler.costs import CostModel
from ccfarm.scheduler.policy import Policy, offered_slots, tier_of

#: what the core answers an event with
Outcome = LeaseGranted | LeaseRefused | LeaseRevoked
ANY: CompilerIdentity | None = None  # the key of requests that take any host
#: compiler key -> speed tier -> pool
_Pools = dict[CompilerIdentity | None, dict[int, "_SlotPool"]]
_LN2 = math.log(2)
#: a freed slot looks at this many waiting clients (of each compiler), those
#: served longest ago, and further only if none of them can take it: the
#: cost of a grant does not grow with the queue; beyond them the ring's
#: order decides
SCAN_CLIENTS = 64


class _SlotPool:
    """Free slots of some hosts: one entry per free slot, so a random pick is
    weighted by free slots. O(1) add/remove/choice."""

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


class _Host:
    def __init__(self, report: HostReport, policy: Policy, now: float) -> None:
        self.report = report
        self.tier = tier_of(report.speed, policy)
        self.disabled = False
        self.offered = 0
        self.leases: dict[int, None] = {}  # lease ids, oldest first
        self.express: int | None = None  # the express lease running here, if any
        self.last_seen = now
        self.keys: tuple[CompilerIdentity | None, ...] = (ANY, *report.compilers)

    @property
    def free(self) -> int:
        return max(0, self.offered - len(self.leases))

    @property
    def lane_open(self) -> bool:
        """Can it take an express job now?"""
        return self.offered > 0 and self.express is None


class _Lease:
    def __init__(
        self,
        lease: int,
        request: LeaseRequest,
        host: str,
        now: float,
        expires: float,
        express: bool = False,
        speed: float = 1.0,
    ) -> None:
        self.lease = lease
        self.request = request
        self.host = host
        self.granted = now
        self.expires = expires
        self.express = express
        self.speed = speed  # the host's, when granted (what its use is charged at)


class Farm:
    """All hosts, leases and waiting requests of one scheduler."""

    def __init__(self, policy: Policy | None = None, rng: random.Random | None = None) -> None:
        self.policy = policy or Policy()
        self.rng = rng or random.Random()
        self.hosts: dict[str, _Host] = {}
        self.leases: dict[int, _Lease] = {}
        self._next_lease = 1
        #: compiler key -> tier -> pool of free slots; tiers listed fastest first
        self._pools: dict[CompilerIdentity | None, dict[int, _SlotPool]] = {}
        self._tiers: dict[CompilerIdentity | None, list[int]] = {}
        #: waiting requests: id -> (request, key, deadline, relative cost)
        self._waiting: dict[int, tuple[LeaseRequest, CompilerIdentity | None, float, float]] = {}
        #: per key: clients with waiting requests, in round-robin order, each
        #: with its requests as (relative cost, id), sorted
        self._rings: dict[CompilerIdentity | None, OrderedDict[str, list[tuple[float, int]]]] = {}
        #: per key: (cost, id) of its waiting requests, a heap whose top may be
        #: stale (served or cancelled since): the cheapest job, in O(log n)
        self._cheapest: dict[CompilerIdentity | None, list[tuple[float, int]]] = {}
        #: per key: what a job costs by its size, learnt from ended leases
        self._costs: dict[CompilerIdentity | None, CostModel] = {}
        self._served = 0
        self._last_served: dict[str, int] = {}
        #: how many hosts have each compiler (to refuse at once what nobody has)
        self._key_hosts: dict[CompilerIdentity | None, int] = {}
        #: per key and tier: [offered slots, sum of speed x offered slots]
        self._capacity: dict[CompilerIdentity | None, dict[int, list[float]]] = {}
        self._waiting_count: dict[CompilerIdentity | None, int] = {}
        self._deadlines: list[tuple[float, int, str, int | str]] = []
        self._seq = 0
        #: express lanes: compiler key -> tier -> hosts whose lane is open
        self._lanes: dict[CompilerIdentity | None, dict[int, _SlotPool]] = {}
        self._lane_tiers: dict[CompilerIdentity | None, list[int]] = {}
        #: per client: leases held; leases held + requests waiting (the
        #: clients in it are the active ones); and all hosts' offered slots
        self._held: dict[str, int] = {}
        self._load: dict[str, int] = {}
        self._offered_total = 0
        #: per client: the farm it used lately (speed x seconds of ended
        #: leases, decaying with `usage_half_life`: value and when), and its
        #: running leases as [sum of speeds, sum of speed x grant time], so
        #: that their use so far is O(1): now x speeds - speed-times
        self._usage: dict[str, tuple[float, float]] = {}
        self._running: dict[str, list[float]] = {}

    # -- hosts ---------------------------------------------------------------------

    def host_report(self, report: HostReport, now: float) -> list[Outcome]:
        """A registration or heartbeat: (re)compute what the host offers."""
        host = self.hosts.get(report.host)
        if (
            host is None
            or host.report.compilers != report.compilers
            or host.tier != tier_of(report.speed, self.policy)
        ):
            disabled = host.disabled if host is not None else False
            leases = dict(host.leases) if host is not None else {}
            express = host.express if host is not None else None
            if host is not None:
                self._set_offered(host, 0)
                self._count_keys(host, -1)
            host = _Host(report, self.policy, now)
            host.disabled = disabled
            host.leases = leases
            host.express = express
            self.hosts[report.host] = host
            self._count_keys(host, +1)
        host.report = report
        host.last_seen = now
        self._push(now + self.policy.host_timeout, "host", report.host)
        outcomes: list[Outcome] = []
        while len(host.leases) > report.slots:  # the daemon now runs fewer jobs
            newest = next(reversed(host.leases))
            outcomes.append(self._end_lease(newest, "host reduced its slots", now))
        self._set_offered(host, offered_slots(report, self.policy, disabled=host.disabled))
        outcomes += self._serve_waiting(host, now)
        return outcomes + self._rebalance(host.keys, now)

    def host_gone(self, name: str, reason: str = "host left", now: float = 0.0) -> list[Outcome]:
        host = self.hosts.get(name)
        if host is None:
            return []
        self._set_offered(host, 0)
        ending = [*host.leases, *([host.express] if host.express is not None else [])]
        outcomes: list[Outcome] = [self._end_lease(lease, reason, now) for lease in ending]
        del self.hosts[name]
        self._count_keys(host, -1)
        return outcomes + self._rebalance(host.keys, now)

    def set_disabled(self, name: str, disabled: bool, now: float) -> list[Outcome]:
        """Drain (no new leases; running ones finish) or return a host."""
        host = self.hosts[name]
        host.disabled = disabled
        self._set_offered(host, offered_slots(host.report, self.policy, disabled=disabled))
        return self._serve_waiting(host, now) + self._rebalance(host.keys, now)

    # -- leases --------------------------------------------------------------------

    def request(self, req: LeaseRequest, now: float) -> list[Outcome]:
        """A lease on the fastest free compatible host, or the request waits."""
        key = req.compiler
        cost = self._costs.setdefault(key, CostModel()).relative(req.size)
        host = self._pick(key)
        waiting = self._waiting_count.get(key, 0)
        if host is not None and not waiting and self._worth(key, host, 0, cost):
            return [self._grant(req, host, now)]
        if not self._key_hosts.get(key):
            return [LeaseRefused(req.request, "no host has this compiler")]
        big = cost >= self.policy.express_min_cost
        lane = self._express(key, req.client) if host is None and big else None
        if lane is not None:
            return [self._grant(req, lane, now, express=True)]
        deadline = now + min(req.timeout, self.policy.max_wait)
        self._waiting[req.request] = (req, key, deadline, cost)
        ring = self._rings.setdefault(key, OrderedDict())
        if req.client not in ring:
            ring[req.client] = []
            # keep the ring in least-recently-served order: a client served
            # longer ago than the head goes first
            head = next(iter(ring))
            if self._last_served.get(req.client, 0) < self._last_served.get(head, 0):
                ring.move_to_end(req.client, last=False)
        bisect.insort(ring[req.client], (cost, req.request))
        heapq.heappush(self._cheapest.setdefault(key, []), (cost, req.request))
        self._waiting_count[key] = waiting + 1
        self._load[req.client] = self._load.get(req.client, 0) + 1
        self._push(deadline, "wait", req.request)
        if host is None:
            return []
        # a free slot exists but a faster host may be worth waiting for: the
        # queue decides who (if anyone) takes it; nobody waits for ever
        self._push(now + self.policy.patience, "patience", req.request)
        return list(self._serve_waiting(host, now))

    def release(self, lease: int, now: float) -> list[Outcome]:
        """The client is done with a lease (or its connection closed)."""
        record = self.leases.get(lease)
        if record is None:
            return []
        self._end_lease(lease, "released", now)
        host = self.hosts.get(record.host)
        if host is None:
            return []
        return self._serve_lane(host, now) if record.express else self._serve_waiting(host, now)

    def cancel(self, request: int) -> None:
        """A waiting request's client went away."""
        item = self._waiting.pop(request, None)
        if item is None:
            return
        req, key, _, cost = item
        self._unqueue(key, req.client, request, cost)

    def tick(self, now: float) -> list[Outcome]:
        """Expire what is due at `now`: silent hosts, old leases, long waits."""
        outcomes: list[Outcome] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, kind, ident = heapq.heappop(self._deadlines)
            if kind == "host":
                host = self.hosts.get(str(ident))
                if host is not None and host.last_seen + self.policy.host_timeout <= now:
                    outcomes += self.host_gone(str(ident), "host stopped sending heartbeats", now)
            elif kind == "lease":
                lease = self.leases.get(int(ident))
                if lease is not None and lease.expires <= now:
                    host_name = lease.host
                    outcomes.append(self._end_lease(lease.lease, "lease timed out", now))
                    if host_name in self.hosts:
                        host = self.hosts[host_name]
                        outcomes += (
                            self._serve_lane(host, now)
                            if lease.express
                            else self._serve_waiting(host, now)
                        )
            elif kind == "patience":
                outcomes += self._lose_patience(int(ident), now)
            elif kind == "wait":
                item = self._waiting.get(int(ident))
                if item is not None and item[2] <= now:
                    self.cancel(int(ident))
                    outcomes.append(LeaseRefused(int(ident), "no free host in time"))
        return outcomes

    def next_deadline(self) -> float | None:
        return self._deadlines[0][0] if self._deadlines else None

    # -- views for operators ---------------------------------------------------------

    def waiting(self) -> Iterator[LeaseRequest]:
        for req, *_ in self._waiting.values():
            yield req

    def held(self, client: str) -> int:
        """Leases `client` holds now."""
        return self._held.get(client, 0)

    def tier_order(self) -> list[int]:
        return sorted({h.tier for h in self.hosts.values()}, reverse=True)

    # -- internals -----------------------------------------------------------------

    def _push(self, when: float, kind: str, ident: int | str) -> None:
        self._seq += 1
        heapq.heappush(self._deadlines, (when, self._seq, kind, ident))

    def _set_offered(self, host: _Host, offered: int) -> None:
        """Change a host's offer and keep the free-slot pools in step."""
        before = host.free
        lane_before = host.lane_open
        delta = offered - host.offered
        host.offered = offered
        self._offered_total += delta
        after = host.free
        name = host.report.host
        if host.lane_open != lane_before:
            self._toggle_lane(host)
        for key in host.keys:
            if delta:
                cap = self._capacity.setdefault(key, {}).setdefault(host.tier, [0.0, 0.0])
                cap[0] += delta
                cap[1] += delta * host.report.speed
            pool = self._pool(self._pools, self._tiers, key, host.tier)
            for n in range(after, before):
                pool.remove((name, n))
            for n in range(before, after):
                pool.add((name, n))

    def _pick(self, key: CompilerIdentity | None) -> _Host | None:
        return self._fastest(self._pools, self._tiers, key)

    def _fastest(
        self,
        pools: _Pools,
        tiers: dict[CompilerIdentity | None, list[int]],
        key: CompilerIdentity | None,
    ) -> _Host | None:
        """A host from the fastest tier with an entry in `pools`; random within it."""
        for tier in tiers.get(key, ()):
            pool = pools[key][tier]
            if pool.entries:
                return self.hosts[pool.choose(self.rng)]
        return None

    @staticmethod
    def _pool(
        pools: _Pools,
        tiers: dict[CompilerIdentity | None, list[int]],
        key: CompilerIdentity | None,
        tier: int,
    ) -> _SlotPool:
        """The pool of `key` and `tier`, made (and the tier listed) on first use."""
        by_tier = pools.setdefault(key, {})
        pool = by_tier.get(tier)
        if pool is None:
            pool = by_tier[tier] = _SlotPool()
            tiers[key] = sorted(by_tier, reverse=True)
        return pool

    def _count_keys(self, host: _Host, delta: int) -> None:
        for key in host.keys:
            self._key_hosts[key] = self._key_hosts.get(key, 0) + delta

    def _grant(
        self, req: LeaseRequest, host: _Host, now: float, *, express: bool = False
    ) -> LeaseGranted:
        lease = self._next_lease
        self._next_lease += 1
        before = host.free
        expires = now + self.policy.lease_timeout
        self.leases[lease] = _Lease(
            lease, req, host.report.host, now, expires, express, host.report.speed
        )
        if express:
            host.express = lease
            self._toggle_lane(host)
        else:
            host.leases[lease] = None
            self._shrink_pools(host, before)
        self._push(expires, "lease", lease)
        self._served += 1
        self._last_served[req.client] = self._served
        self._held[req.client] = self._held.get(req.client, 0) + 1
        running = self._running.setdefault(req.client, [0.0, 0.0])
        running[0] += host.report.speed
        running[1] += host.report.speed * now
        self._load[req.client] = self._load.get(req.client, 0) + 1
        r = host.report
        return LeaseGranted(req.request, lease, r.host, r.address, r.port, express)

    def _shrink_pools(self, host: _Host, before: int) -> None:
        for n in range(host.free, before):
            for key in host.keys:
                self._pools[key][host.tier].remove((host.report.host, n))

    def _end_lease(self, lease: int, reason: str, now: float) -> LeaseRevoked:
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
        self._charge(client, used, now)
        model = self._costs.get(record.request.compiler)
        if model is not None and reason == "released" and not record.express:
            model.observe(record.request.size, used)
        host = self.hosts.get(record.host)
        if host is not None and record.express:
            host.express = None
            if host.lane_open:
                self._toggle_lane(host)
        elif host is not None:
            before = host.free
            del host.leases[lease]
            for n in range(before, host.free):
                for key in host.keys:
                    self._pools[key][host.tier].add((host.report.host, n))
        return LeaseRevoked(lease, record.request.request, reason)

    def _serve_waiting(self, host: _Host, now: float) -> list[Outcome]:
        """Give the host's free slots to waiting clients.

        Each compiler has a ring of waiting clients; a served client goes to
        the back of it. On a host of the fastest tier that has slots (nothing
        faster to wait for) the waiting client that used the farm least
        lately (`usage`; ring order breaks ties) takes it, with its biggest
        job: the big jobs go first and to the fast hosts. A slot on a slower
        host goes only to a job for which it is worth it (`_worth`, which
        weighs the job's relative cost), and then to the client's smallest
        job: first to the least-used client for which it is worth it at the
        front of the line (behind that client's own other jobs, which go to
        faster hosts first); if it is worth it only further back (a much
        slower host), to the client that used the farm most. So the heaviest
        user takes the slow host, a small build keeps its turn for a fast
        one, and no big job ends a build late on a slow host.
        """
        outcomes: list[Outcome] = []
        while host.free > 0 and host.report.host in self.hosts:
            best: tuple[tuple[int, float, int], CompilerIdentity | None, str, bool] | None = None
            for key in host.keys:
                ring = self._rings.get(key)
                if not ring:
                    continue
                need = self._need(key, host)
                count = self._waiting_count[key]
                if need > 0 and self._cheapest_cost(key) * need > count:
                    continue  # worth it for nobody: no need to look at each client
                choice = self._choose(ring, need, count, now)
                if choice is not None and (best is None or choice[0] < best[0]):
                    best = (choice[0], key, choice[1], need > 0)
            if best is None:
                break
            _, key, client, smallest = best
            outcomes.append(self._grant_waiting(key, client, host, now, smallest=smallest))
        return outcomes

    def _cheapest_cost(self, key: CompilerIdentity | None) -> float:
        heap = self._cheapest[key]
        while heap[0][1] not in self._waiting:
            heapq.heappop(heap)
        return heap[0][0]

    def _choose(
        self, ring: OrderedDict[str, list[tuple[float, int]]], need: float, count: int, now: float
    ) -> tuple[tuple[int, float, int], str] | None:
        """Which waiting client takes a slot of `need` (see `_need`), ranked
        (smaller first) against the other compilers' choices for the same slot."""
        front: tuple[float, str] | None = None
        back: tuple[float, str] | None = None
        for looked, (client, queue) in enumerate(ring.items()):
            if looked >= SCAN_CLIENTS and (front or back):
                break  # further back only when nobody this far can take it
            used = self.usage(client, now)
            cheapest = queue[0][0]
            # worth it at the front of the line, behind the client's own
            # bigger jobs (which the faster hosts take first)?
            if cheapest * need <= len(queue):
                if front is None or used < front[0]:
                    front = (used, client)
            elif cheapest * need <= count and (back is None or used >= back[0]):
                back = (used, client)  # worth it behind everyone: the heaviest
        if front is not None:
            used, client = front
            return (0, used, self._last_served.get(client, 0)), client
        if back is not None:
            used, client = back
            return (1, -used, -self._last_served.get(client, 0)), client
        return None

    def usage(self, client: str, now: float) -> float:
        """How much of the farm `client` used lately: speed x seconds of its
        leases, running ones included, halving every `usage_half_life`."""
        value, at = self._usage.get(client, (0.0, now))
        speeds, speed_times = self._running.get(client, (0.0, 0.0))
        return value * self._decay(now - at) + max(0.0, now * speeds - speed_times)

    def _charge(self, client: str, amount: float, now: float) -> None:
        value, at = self._usage.get(client, (0.0, now))
        self._usage[client] = (value * self._decay(now - at) + amount, now)

    def _decay(self, elapsed: float) -> float:
        return math.exp(-_LN2 * max(0.0, elapsed) / self.policy.usage_half_life)

    def _grant_waiting(
        self,
        key: CompilerIdentity | None,
        client: str,
        host: _Host,
        now: float,
        *,
        express: bool = False,
        smallest: bool = False,
    ) -> LeaseGranted:
        """The client's smallest or biggest waiting job (the oldest of equals) gets `host`."""
        queue = self._rings[key][client]
        pick = 0 if smallest else bisect.bisect_left(queue, (queue[-1][0],))
        cost, request_id = queue[pick]
        req, *_ = self._waiting.pop(request_id)
        self._unqueue(key, client, request_id, cost)
        grant = self._grant(req, host, now, express=express)
        ring = self._rings.get(key)
        if ring is not None and client in ring:
            ring.move_to_end(client)  # served: to the back of the line
        return grant

    def _rebalance(self, keys: tuple[CompilerIdentity | None, ...], now: float) -> list[Outcome]:
        """Faster capacity shrank (or grew): slow slots may now be worth taking."""
        outcomes: list[Outcome] = []
        for key in keys:
            while self._waiting_count.get(key, 0) > 0:
                host = self._pick(key)
                if host is None:
                    break
                served = self._serve_waiting(host, now)
                if not served:
                    break
                outcomes += served
        return outcomes

    def _lose_patience(self, request: int, now: float) -> list[Outcome]:
        """A request held back for a faster host too long takes any free slot."""
        item = self._waiting.get(request)
        if item is None:
            return []
        req, key, _, cost = item
        host = self._pick(key)
        if host is None:
            return []  # nothing free: it waits for the next release as usual
        self._waiting.pop(request)
        self._unqueue(key, req.client, request, cost)
        return [self._grant(req, host, now)]

    def _faster_capacity(self, key: CompilerIdentity | None, tier: int) -> tuple[float, float]:
        """(offered slots, their mean speed) of the tiers faster than `tier`."""
        slots = speed_slots = 0.0
        for t, (n, weighted) in self._capacity.get(key, {}).items():
            if t > tier:
                slots += n
                speed_slots += weighted
        return slots, (speed_slots / slots if slots > 0 else 0.0)

    def _worth(
        self, key: CompilerIdentity | None, host: _Host, ahead: int, cost: float = 1.0
    ) -> bool:
        """Is a free slot on `host` better than waiting for a faster host?

        With F busy slots on faster hosts (mean speed s_f) each freeing after
        an average job's time there (w/s_f), the (ahead+1)-th of them frees
        after about (ahead+1)/F of that; a job of c times the average size
        finishes sooner on this host (speed s_h) when
        c*w/s_h <= (ahead+1)/F * w/s_f + c*w/s_f, that is when
        ahead + 1 >= c * F * (s_f / s_h - 1)  (= c * `_need`).
        """
        return ahead + 1 >= cost * self._need(key, host)

    def _need(self, key: CompilerIdentity | None, host: _Host) -> float:
        """F * (s_f / s_h - 1) of `_worth`: 0 with nothing faster to wait for."""
        if not self.policy.prefer_fast:
            return 0.0
        slots, speed = self._faster_capacity(key, host.tier)
        if slots <= 0:
            return 0.0
        return max(0.0, slots * (speed / max(host.report.speed, 1e-9) - 1))

    def _express(self, key: CompilerIdentity | None, client: str) -> _Host | None:
        """The host for an express lease, if `client` should get one now.

        Only when every slot is taken, only for a client below its fair share
        (offered slots / active clients), and only for a light one (its
        demand, leases + waiting requests, at most half another client's): so
        a `make -j4` started during two `make -j200`s runs at once, while the
        big builds never get express leases, not even from each other; and
        (the caller checks) only for a job of at least `express_min_cost`:
        a small build's big jobs are its critical path. The fastest host
        whose lane is open takes it and runs it ahead of its other jobs.
        (Clients are few: the scans here are over clients, not hosts.)
        """
        if not self.policy.express:
            return None
        active = len(self._load) + (client not in self._load)
        share = self._offered_total / active
        if self._held.get(client, 0) >= share:
            return None
        # only a light client: its demand (leases + waiting requests) at most
        # half of the heaviest other client's. Two equal big builds never get
        # express leases (they would only slow each other's jobs down).
        demand = self._load.get(client, 0) + 1
        if not any(other != client and load >= 2 * demand for other, load in self._load.items()):
            return None
        return self._fastest(self._lanes, self._lane_tiers, key)

    def _toggle_lane(self, host: _Host) -> None:
        """Add or remove the host's express lane to match `host.lane_open`."""
        entry = (host.report.host, 0)
        for key in host.keys:
            pool = self._pool(self._lanes, self._lane_tiers, key, host.tier)
            if host.lane_open:
                pool.add(entry)
            else:
                pool.remove(entry)

    def _serve_lane(self, host: _Host, now: float) -> list[Outcome]:
        """An express lane opened: the longest-unserved waiting client below its
        share takes it for its biggest job, if that is big enough."""
        if not host.lane_open or not self.policy.express:
            return []
        for key in host.keys:
            ring = self._rings.get(key)
            for client, queue in (ring or {}).items():
                if queue[-1][0] < self.policy.express_min_cost:
                    continue
                if self._express(key, client) is not None:
                    return [self._grant_waiting(key, client, host, now, express=True)]
        return []

    def _unqueue(
        self, key: CompilerIdentity | None, client: str, request: int, cost: float
    ) -> None:
        _decrement(self._load, client)
        self._waiting_count[key] -= 1
        ring = self._rings[key]
        queue = ring[client]
        del queue[bisect.bisect_left(queue, (cost, request))]
        if not queue:
            del ring[client]
            if not ring:
                del self._rings[key]
                del self._cheapest[key]


def _decrement(counts: dict[str, int], client: str) -> None:
    if counts[client] <= 1:
        del counts[client]
    else:
        counts[client] -= 1
