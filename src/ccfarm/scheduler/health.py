"""Hosts that failed jobs: quarantine, then probation. Pure.

A wrapper whose job failed on a host for the host's sake (refused, reset,
timed out, garbage) reports the lease (`HFAL`). The host then offers no
slot for a backoff period (the policy's `quarantine` seconds, 10, doubling
with each consecutive failure, at most `quarantine_max`, 300); after it,
the host is on probation: `probation_slots` (1) at a time, the first lease
the probe. The probe released normally proves the host healthy and forgets
its failures; the probe failing sends it back to quarantine for twice as
long.

Only failures that say something new count: those of a healthy host's
leases and of the probe. Reports about leases granted before the host went
into quarantine, and repeated reports about one lease, change nothing.

Only hosts that are not healthy have an entry: the state of a farm of
healthy hosts is empty. An entry outlives the host's registration while
its quarantine lasts (a host that restarts with the same fault is still in
quarantine); a host that is gone and whose quarantine is over is
forgotten, so the entries are bounded by the hosts registered and those
quarantined lately.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

from ccfarm.scheduler.policy import Policy

__all__ = ["HostHealth", "Standing", "Trial"]


class Standing(Enum):
    QUARANTINED = "quarantined"
    PROBATION = "probation"


class Trial:
    """One host's failures and where it stands."""

    __slots__ = ("standing", "failures", "until", "probe")

    def __init__(self) -> None:
        self.standing = Standing.QUARANTINED
        self.failures = 0  # consecutive failures
        self.until = 0.0  # end of the quarantine
        self.probe: int | None = None  # the lease on probation


class HostHealth:
    """The hosts on trial, by name."""

    def __init__(self, policy: Policy | None = None) -> None:
        policy = policy or Policy()
        self.first = policy.quarantine
        self.longest = policy.quarantine_max
        self.probation_slots = max(1, policy.probation_slots)
        self.trials: dict[str, Trial] = {}

    def backoff(self, failures: int) -> float:
        """The quarantine after `failures` consecutive failures, in seconds."""
        return min(self.longest, self.first * 2.0 ** min(failures - 1, 64))

    def limit(self, host: str) -> int | None:
        """The most slots `host` may offer now (None: no limit)."""
        trial = self.trials.get(host)
        if trial is None:
            return None
        return 0 if trial.standing is Standing.QUARANTINED else self.probation_slots

    def standing(self, host: str) -> Standing | None:
        trial = self.trials.get(host)
        return None if trial is None else trial.standing

    def failed(self, host: str, lease: int, now: float) -> float | None:
        """A job on `lease` failed on `host`: when its quarantine ends, or
        None if the report changes nothing."""
        trial = self.trials.get(host)
        if trial is None:
            trial = self.trials[host] = Trial()
        elif trial.probe != lease:
            return None  # it is on trial already, for this failure or an older one
        trial.standing = Standing.QUARANTINED
        trial.probe = None
        trial.failures += 1
        trial.until = now + self.backoff(trial.failures)
        return trial.until

    def quarantine_over(self, host: str, now: float, *, present: bool = True) -> bool:
        """The quarantine's deadline came: True if `host` is now on probation
        (a host that is not `present` is forgotten instead)."""
        trial = self.trials.get(host)
        if trial is None or trial.standing is not Standing.QUARANTINED or trial.until > now:
            return False
        if not present:
            del self.trials[host]
            return False
        trial.standing = Standing.PROBATION
        return True

    def gone(self, host: str, now: float) -> None:
        """`host` left the farm: forgotten unless its quarantine still runs
        (then its deadline forgets it, `quarantine_over`)."""
        trial = self.trials.get(host)
        if trial is not None and (trial.standing is not Standing.QUARANTINED or trial.until <= now):
            del self.trials[host]

    def granted(self, host: str, lease: int) -> None:
        """A lease on `host`: on probation, it is the probe."""
        trial = self.trials.get(host)
        if trial is not None and trial.standing is Standing.PROBATION and trial.probe is None:
            trial.probe = lease

    def released(self, host: str, lease: int) -> bool:
        """A lease ended normally: True if it was the probe (the host is healthy)."""
        trial = self.trials.get(host)
        if trial is None or trial.probe != lease:
            return False
        del self.trials[host]
        return True

    def ended(self, host: str, lease: int) -> None:
        """A lease ended otherwise (revoked, timed out): a probe no longer."""
        trial = self.trials.get(host)
        if trial is not None and trial.probe == lease:
            trial.probe = None

    def quarantined(self) -> Iterator[tuple[str, float]]:
        """(host, end of quarantine) of each quarantined host."""
        for host, trial in self.trials.items():
            if trial.standing is Standing.QUARANTINED:
                yield host, trial.until

    def check(self) -> None:
        for host, trial in self.trials.items():
            assert trial.failures >= 1, f"{host}: on trial without a failure"
            if trial.standing is Standing.QUARANTINED:
                assert trial.probe is None, f"{host}: a probe in quarantine"
