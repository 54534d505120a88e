"""The farm model: events in, outcomes out. Pure: no sockets, no clock.

The shell feeds events with the current time (`now`) and gets outcomes
back: grants, refusals, revocations. Randomness comes from the `random.Random`
given at construction, so tests replay exactly.

`Farm` composes parts that each own one kind of state: the hosts and their
free slots (`slots.SlotIndex`), the requests waiting (`queue.WaitQueue`), the
leases and each client's use (`ledger.LeaseLedger`), the deadlines
(`timers.Timers`), and what the farm learnt of each host: its health, its
leaving and its speed from evidence, with the cost models
(`standing.HostStanding`); the rules that choose between them are in
`decisions.Decisions`. Hot-path costs do not grow with the farm: free slots
are in pools with O(1) add, remove and weighted random choice, waiting
clients in per-compiler rings, deadlines in a heap.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from ccfarm.model import LOCAL, HostReport, LeaseGranted, LeaseRefused, LeaseRequest, LeaseRevoked
from ccfarm.scheduler.decisions import Decisions, Turn
from ccfarm.scheduler.journal import News
from ccfarm.scheduler.ledger import Lease, LeaseLedger
from ccfarm.scheduler.policy import Policy
from ccfarm.scheduler.queue import WaitingRequest, WaitQueue
from ccfarm.scheduler.slots import Host, Key, SlotIndex
from ccfarm.scheduler.standing import HostStanding
from ccfarm.scheduler.timers import (
    Deadline,
    HostDeadline,
    LeaseDeadline,
    PatienceDeadline,
    QuarantineDeadline,
    Timers,
    WaitDeadline,
)

__all__ = ["SCAN_CLIENTS", "Farm", "Outcome"]

#: what the core answers an event with
Outcome = LeaseGranted | LeaseRefused | LeaseRevoked
#: a freed slot looks at this many waiting clients (of each compiler), those
#: served longest ago, and further only if none of them can take it: the
#: cost of a grant does not grow with the queue; beyond them the ring's
#: order decides (read when a `Farm` is made)
SCAN_CLIENTS = 64


class Farm:
    """All hosts, leases and waiting requests of one scheduler."""

    def __init__(self, policy: Policy | None = None, rng: random.Random | None = None) -> None:
        self.policy = policy or Policy()
        self.rng = rng or random.Random()
        self.slots = SlotIndex(self.policy, self.rng)
        self.queue = WaitQueue()
        self.ledger = LeaseLedger(self.policy.usage_half_life)
        self.timers = Timers()
        self.standing = HostStanding(self.policy, self.slots, self.timers)
        self.health = self.standing.health
        self.evidence = self.standing.evidence
        self.decisions = Decisions(
            self.policy, self.slots, self.queue, self.ledger, SCAN_CLIENTS, self.evidence
        )
        self.hosts: dict[str, Host] = self.slots.hosts
        self.leases: dict[int, Lease] = self.ledger.leases
        self.costs = self.evidence.costs  # per key: what a job costs by its size
        #: hosts joining, leaving, drained, quarantined: for the operator's log
        self.journal = self.standing.journal

    # -- hosts ---------------------------------------------------------------------

    def host_report(self, report: HostReport, now: float) -> list[Outcome]:
        """A registration or heartbeat: (re)compute what the host offers."""
        host = self.standing.join(report, now)
        self.timers.set_host(now + self.policy.host_timeout, report.host)
        outcomes: list[Outcome] = []
        while len(host.leases) > report.slots:  # the daemon now runs fewer jobs
            newest = next(reversed(host.leases))
            outcomes.append(self._end_lease(newest, "host reduced its slots", now))
        self.standing.offer(host)
        outcomes += self._serve_waiting(host, now)
        return outcomes + self._rebalance(host.keys, now)

    def host_gone(self, name: str, reason: str = "host left", now: float = 0.0) -> list[Outcome]:
        host = self.hosts.get(name)
        if host is None:
            return []
        self.slots.set_offered(host, 0)
        ending = [*host.leases, *([host.express] if host.express is not None else [])]
        outcomes: list[Outcome] = [self._end_lease(lease, reason, now) for lease in ending]
        self.slots.leave(host)
        self.standing.gone(name, reason, now)
        return outcomes + self._rebalance(host.keys, now)

    def host_failed(self, lease: int, now: float) -> list[Outcome]:
        """A client says the job on `lease` failed on its host (refused, reset,
        timed out, garbage): the host goes into quarantine (`standing`)."""
        record = self.leases.get(lease)
        host = None if record is None else self.standing.failed(record, now)
        # slower hosts may be worth it now
        return [] if host is None else self._rebalance(host.keys, now)

    def host_leaving(self, name: str, now: float) -> list[Outcome]:
        """The host said it is going (its daemon drains): no new leases, its
        running jobs finish; it is gone when its connection closes (or its
        heartbeats stop), which ends what is still running then."""
        host = self.standing.leaving(name)
        # slower hosts may be worth it now
        return [] if host is None else self._rebalance(host.keys, now)

    def set_disabled(self, name: str, disabled: bool, now: float) -> list[Outcome]:
        """Drain (no new leases; running ones finish) or return a host."""
        host = self.hosts[name]
        if disabled != host.disabled:
            self.journal.note(name, News.DISABLED if disabled else News.ENABLED)
        self.slots.set_disabled(host, disabled)
        return self._serve_waiting(host, now) + self._rebalance(host.keys, now)

    # -- leases --------------------------------------------------------------------

    def request(self, req: LeaseRequest, now: float) -> list[Outcome]:
        """A lease on the fastest free compatible host, or the request waits."""
        key = req.compiler
        cost = self.evidence.cost(key, req.size, req.main)
        host = self.standing.trial(key, req.size, cost) or self.slots.pick(key)
        waiting = self.queue.counts.get(key, 0)
        if req.local_slot and self.slots.has_compiler(key):
            # the client's own free slot is the alternative: it never waits
            why = self.decisions.stay_local(host, req.local_speed)
            if why or host is None:
                return [LeaseRefused(req.request, LOCAL, why)]
            return [self._grant(req, host, now)]
        if host is not None and not waiting and self.decisions.worth(key, host, 0, cost):
            return [self._grant(req, host, now)]
        if not self.slots.has_compiler(key):
            return [LeaseRefused(req.request, "no host has this compiler")]
        big = cost >= self.policy.express_min_cost
        lane = self.decisions.express_host(key, req.client) if host is None and big else None
        if lane is not None:
            return [self._grant(req, lane, now, express=True)]
        deadline = now + min(req.timeout, self.policy.max_wait)
        self.queue.add(WaitingRequest(req, key, deadline, cost, now))
        self.ledger.wait(req.client)
        self.timers.set_wait(deadline, req.request)
        if host is None:
            return []
        # a free slot exists but a faster host may be worth waiting for: the
        # queue decides who (if anyone) takes it; nobody waits for ever
        self.timers.set_patience(now + self.policy.patience, req.request)
        return self._serve_waiting(host, now)

    def release(self, lease: int, now: float) -> list[Outcome]:
        """The client is done with a lease (or its connection closed)."""
        record = self.leases.get(lease)
        if record is None:
            return []
        before = self.hosts.get(record.host)
        self._end_lease(lease, "released", now)
        outcomes = self._serve_freed(record, now)
        host = self.hosts.get(record.host)
        if host is not None and before is not None and host.tiers != before.tiers:
            outcomes += self._rebalance(host.keys, now)  # its evidence moved it
        return outcomes

    def cancel(self, request: int) -> None:
        """A waiting request's client went away."""
        self._unqueue(request)

    def tick(self, now: float) -> list[Outcome]:
        """Expire what is due at `now`: silent hosts, old leases, long waits."""
        outcomes: list[Outcome] = []
        while (due := self.timers.pop_due(now)) is not None:
            match due:
                case HostDeadline(name):
                    host = self.hosts.get(name)
                    if host is not None and host.last_seen + self.policy.host_timeout <= now:
                        outcomes += self.host_gone(name, "host stopped sending heartbeats", now)
                case LeaseDeadline(lease):
                    record = self.leases.get(lease)
                    if record is not None and record.expires <= now:
                        outcomes.append(self._end_lease(lease, "lease timed out", now))
                        outcomes += self._serve_freed(record, now)
                case QuarantineDeadline(name):
                    outcomes += self._end_quarantine(name, now)
                case PatienceDeadline(request):
                    outcomes += self._lose_patience(request, now)
                case WaitDeadline(request):
                    waiting = self.queue.get(request)
                    if waiting is not None and waiting.deadline <= now:
                        self._unqueue(request)
                        outcomes.append(LeaseRefused(request, "no free host in time"))
        # what can still expire: per host a heartbeat and a quarantine, per
        # lease its timeout, per waiting request its wait and its patience
        live = 2 * len(self.hosts) + len(self.leases) + 2 * len(self.queue)
        if self.timers.needs_compacting(live):
            self.timers.compact(self._deadline_applies)
        return outcomes

    def _deadline_applies(self, when: float, deadline: Deadline) -> bool:
        """Could `deadline`, due at `when`, still do something in `tick`?"""
        match deadline:
            case HostDeadline(name):
                host = self.hosts.get(name)
                return host is not None and when >= host.last_seen + self.policy.host_timeout
            case LeaseDeadline(lease):
                return lease in self.leases
            case PatienceDeadline(request) | WaitDeadline(request):
                return self.queue.get(request) is not None
        return True  # a quarantine's end (few: one per host at most)

    def next_deadline(self) -> float | None:
        return self.timers.next()

    # -- views for operators ---------------------------------------------------------

    def waiting(self) -> Iterator[LeaseRequest]:
        for waiting in self.queue:
            yield waiting.request

    def held(self, client: str) -> int:
        """Leases `client` holds now."""
        return self.ledger.held(client)

    def usage(self, client: str, now: float) -> float:
        """How much of the farm `client` used lately (see `LeaseLedger.usage`)."""
        return self.ledger.usage(client, now)

    def tier_order(self) -> list[int]:
        return self.slots.tier_order()

    def check(self, now: float) -> None:
        """Raise AssertionError unless every part's indexes agree, the parts
        agree with each other, and all that can expire has its deadline."""
        self.slots.check(self.leases)
        self.queue.check()
        self.ledger.check(self.waiting(), now)
        host_timeout = self.policy.host_timeout
        self.timers.check(
            [
                *((h.last_seen + host_timeout, HostDeadline(n)) for n, h in self.hosts.items()),
                *((r.expires, LeaseDeadline(r.lease)) for r in self.leases.values()),
                *((w.deadline, WaitDeadline(w.request.request)) for w in self.queue),
                *self.standing.deadlines(),
            ]
        )
        self.standing.check(self.leases)

    # -- grants ----------------------------------------------------------------------

    def _grant(
        self, req: LeaseRequest, host: Host, now: float, *, express: bool = False
    ) -> LeaseGranted:
        """A lease for `req` on `host`, in every part that keeps leases."""
        r = host.report
        expires = now + self.policy.lease_timeout
        # what the job gets (and is charged at), before the slot it takes is gone
        speed, share, tier = host.next_speed, host.next_share, host.next_tier
        lease = self.ledger.open(req, r.host, speed, now, expires, express, share).lease
        if express:
            self.slots.take_lane(host, lease)
        else:
            self.slots.take_slot(host, lease)
            self.standing.granted(host, lease)
        self.timers.set_lease(expires, lease)
        self.queue.served(req.client)
        return LeaseGranted(req.request, lease, r.host, r.address, r.port, express, r.speed, tier)

    def _grant_waiting(
        self, turn: Turn, host: Host, now: float, *, express: bool = False
    ) -> LeaseGranted:
        """The client's smallest or biggest waiting job (the oldest of equals) gets `host`."""
        waiting = self.queue.take(turn.key, turn.client, smallest=turn.smallest)
        self.ledger.stop_waiting(turn.client)
        return self._grant(waiting.request, host, now, express=express)

    def _end_lease(self, lease: int, reason: str, now: float) -> LeaseRevoked:
        """The lease ends: its client is charged, its slot or lane is free
        again, and a released one is evidence of its host's health, its speed
        and the job's cost (`standing`; a revoked one says nothing)."""
        record, used = self.ledger.close(lease, now)
        self.standing.ended(record, used, reason == "released", now)
        host = self.hosts.get(record.host)
        if host is not None and record.express:
            self.slots.free_lane(host)
        elif host is not None:
            self.slots.free_slot(host, lease)
        return LeaseRevoked(lease, record.request.request, reason)

    def _serve_freed(self, ended: Lease, now: float) -> list[Outcome]:
        """Give what an ended lease freed (a slot or an express lane) to who waits."""
        host = self.hosts.get(ended.host)
        if host is None:
            return []
        if not ended.express:
            return self._serve_waiting(host, now)
        turn = self.decisions.lane_turn(host)
        return [] if turn is None else [self._grant_waiting(turn, host, now, express=True)]

    def _serve_waiting(self, host: Host, now: float) -> list[Outcome]:
        """Give the host's free slots to waiting clients, each in its turn
        (`Decisions.turn`)."""
        outcomes: list[Outcome] = []
        while host.free > 0 and host.report.host in self.hosts:
            turn = self.decisions.turn(host, now)
            if turn is None:
                break
            outcomes.append(self._grant_waiting(turn, host, now))
        return outcomes

    def _rebalance(self, keys: tuple[Key, ...], now: float) -> list[Outcome]:
        """Faster capacity shrank (or grew): slow slots may now be worth taking."""
        outcomes: list[Outcome] = []
        for key in keys:
            while self.queue.counts.get(key, 0) > 0:
                host = self.slots.pick(key)
                if host is None:
                    break
                served = self._serve_waiting(host, now)
                if not served:
                    break
                outcomes += served
        return outcomes

    def _end_quarantine(self, name: str, now: float) -> list[Outcome]:
        """A quarantine's deadline: the host goes on probation."""
        host = self.standing.quarantine_over(name, now)
        if host is None:
            return []
        return self._serve_waiting(host, now) + self._rebalance(host.keys, now)

    def _lose_patience(self, request: int, now: float) -> list[Outcome]:
        """A request held back for a faster host too long takes any free slot,
        once it has waited as long as that slot would cost it: a big job
        does not end a build late on a host many times slower because a
        faster one took a few seconds to free (`slower_by`)."""
        waiting = self.queue.get(request)
        if waiting is None:
            return []
        host = self.slots.pick(waiting.key)
        if host is None:
            return []  # nothing free: it waits for the next release as usual
        lost = self._slower_by(waiting, host)
        if now - waiting.since < lost:
            self.timers.set_patience(waiting.since + lost, request)
            return []
        self._unqueue(request)
        return [self._grant(waiting.request, host, now)]

    def _slower_by(self, waiting: WaitingRequest, host: Host) -> float:
        """Seconds `waiting`'s job would take longer on `host` than on the
        faster hosts (their mean speed), by its cost and the average job's;
        0 while no average is known or nothing is faster."""
        model = self.costs.get(waiting.key)
        mean = model.mean_cost() if model is not None else None
        speed = host.next_speed
        slots, faster = self.slots.capacity.faster(waiting.key, host.next_tier)
        if mean is None or slots <= 0 or faster <= speed:
            return 0.0
        return waiting.cost * mean * (1 / max(speed, 1e-9) - 1 / faster)

    def _unqueue(self, request: int) -> None:
        """Take a request out of line (it no longer waits: gone, refused or
        granted out of turn)."""
        waiting = self.queue.remove(request)
        if waiting is not None:
            self.ledger.stop_waiting(waiting.request.client)
