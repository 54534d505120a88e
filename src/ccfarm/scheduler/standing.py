"""What the farm knows of each host beyond its last report. Pure.

`HostStanding` keeps, per host, its health (`health.HostHealth`: quarantine
and probation after failed jobs), whether it is leaving (it said BYEE), and
its speed from evidence (`evidence.SpeedEvidence`, which owns the cost
models). It is the only code that sets a host's limit, leaving flag and
effective speed in the slot index, and it sets the quarantine deadlines.
Its methods return the host whose offer changed, for `core.Farm` to give
what it frees to who waits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ccfarm.model import HostReport
from ccfarm.scheduler.evidence import SpeedEvidence
from ccfarm.scheduler.health import HostHealth
from ccfarm.scheduler.journal import Journal, News
from ccfarm.scheduler.ledger import Lease
from ccfarm.scheduler.policy import Policy, tier_of
from ccfarm.scheduler.slots import Host, Key, SlotIndex
from ccfarm.scheduler.timers import QuarantineDeadline, Timers

__all__ = ["HostStanding"]


class HostStanding:
    """Health, leaving and speed evidence of the hosts of one farm."""

    def __init__(self, policy: Policy, slots: SlotIndex, timers: Timers) -> None:
        self.policy = policy
        self.slots = slots
        self.timers = timers
        self.health = HostHealth(policy)
        self.evidence = SpeedEvidence(policy)
        #: what changed, for the operator's log (`journal`)
        self.journal = Journal()
        #: leases reported failed (`HFAL`) and not ended: their times say
        #: nothing of the host's speed or the job's cost
        self._failed: set[int] = set()

    # -- host events ---------------------------------------------------------------

    def join(self, report: HostReport, now: float) -> Host:
        """The host of a registration or heartbeat, at the speed the farm
        believes (see `SpeedEvidence.speed`); it offers on `offer`."""
        if report.host not in self.slots.hosts:
            detail = f"{report.slots} slots, speed {report.speed:.3g}, {report.cpus} CPUs"
            self.journal.note(report.host, News.JOINED, detail)
        return self.slots.join(report, now, self.evidence.speed(report.host, report.speed))

    def offer(self, host: Host) -> None:
        """Offer what the host's report, its state and its health allow."""
        self.slots.set_limit(host, self.health.limit(host.report.host))

    def failed(self, record: Lease, now: float) -> Host | None:
        """A client says the job on lease `record` failed for its host's sake:
        the host goes into quarantine, unless that says nothing new."""
        self._failed.add(record.lease)
        until = self.health.failed(record.host, record.lease, now)
        if until is None:
            return None
        self.timers.set_quarantine(until, record.host)
        self.journal.note(record.host, News.QUARANTINED, f"for {until - now:g} s")
        host = self.slots.hosts.get(record.host)
        if host is not None:
            self.offer(host)
        return host

    def leaving(self, name: str) -> Host | None:
        """The host said it is going: no new leases, its running jobs finish."""
        host = self.slots.hosts.get(name)
        if host is not None:
            self.slots.set_leaving(host)
            self.journal.note(name, News.LEAVING, f"{len(host.leases)} jobs still running")
        return host

    def quarantine_over(self, name: str, now: float) -> Host | None:
        """A quarantine's deadline: the host goes on probation (a host that
        is gone is forgotten)."""
        host = self.slots.hosts.get(name)
        if not self.health.quarantine_over(name, now, present=host is not None):
            return None
        if host is not None:
            self.journal.note(name, News.PROBATION, "one job at a time")
            self.offer(host)
        return host

    def gone(self, name: str, reason: str, now: float) -> None:
        """The host left the farm, for `reason` (its leases ended first)."""
        self.journal.note(name, News.LEFT, reason)
        self.health.gone(name, now)
        self.evidence.forget(name)

    # -- leases --------------------------------------------------------------------

    def trial(self, key: Key, size: int, cost: float) -> Host | None:
        """A free host on trial that this job should go to, if any (see
        `SpeedEvidence.trials`)."""
        hosts = self.slots.hosts
        for name in self.evidence.trials(key, size, cost):
            host = hosts.get(name)
            if host is not None and host.free > 0 and key in host.keys:
                return host
        return None

    def granted(self, host: Host, lease: int) -> None:
        """A lease (not express) on `host`: on probation, it may be the probe."""
        self.health.granted(host.report.host, lease)

    def ended(self, record: Lease, used: float, released: bool, now: float) -> None:
        """A lease ended, `released` by its client (else revoked or timed
        out), `used` (seconds x speed) long: a probe released proves its host
        healthy; a job that ended well is evidence of its host's speed and its
        cost, which may move the host to another tier."""
        failed = record.lease in self._failed
        self._failed.discard(record.lease)
        name = record.host
        if released and self.health.released(name, record.lease):
            host = self.slots.hosts.get(name)
            if host is not None:  # the probe came back well: a healthy host again
                self.offer(host)
            self.journal.note(name, News.HEALTHY)
        else:
            self.health.ended(name, record.lease)
        if not released or failed or record.express:
            return
        req = record.request
        # as long as it would have taken alone (it shared the host's CPUs with
        # the jobs it ran beside): the evidence is of the speed of one job alone
        seconds = (now - record.granted) * record.share
        for moved in self.evidence.ended(name, req.compiler, req.size, seconds, used, req.main):
            host = self.slots.hosts.get(moved)
            if host is not None:
                speed = self.evidence.speed(moved, host.report.speed)
                if speed != host.speed:
                    self.offer(self.slots.join(host.report, host.last_seen, speed))

    # -- invariants ----------------------------------------------------------------

    def deadlines(self) -> Iterator[tuple[float, QuarantineDeadline]]:
        """The deadlines that must be pending: the end of each quarantine."""
        for name, until in self.health.quarantined():
            yield until, QuarantineDeadline(name)

    def check(self, leases: Mapping[int, Lease]) -> None:
        """Raise AssertionError unless each host's limit is its health's and
        its tier its speed's, and the parts' own indexes agree."""
        self.health.check()
        self.evidence.check(self.slots.hosts)
        assert self._failed <= leases.keys(), "failed leases that ended"
        for name, host in self.slots.hosts.items():
            assert host.limit == self.health.limit(name), f"{name}: limit not its standing"
            assert host.tier == tier_of(host.speed, self.policy), f"{name}: tier not its speed's"
