"""The scheduler's tunable rules, as pure functions of a policy and a host."""

from __future__ import annotations

import math

from ccfarm._record import record
from ccfarm.model import HostReport


@record
class Policy:
    #: hosts whose speeds are within this factor of each other share a tier
    tier_ratio: float = 1.25
    #: external load (load average minus ccfarm's own jobs) per CPU at or
    #: below which a host offers all its slots ...
    load_low: float = 0.3
    #: ... and at or above which it offers none (linear in between)
    load_high: float = 1.0
    #: slots a host offers while someone uses its desktop
    desktop_slots: int = 0
    #: a host not heard from for this long is dropped
    host_timeout: float = 15.0
    #: a lease not released after this long is revoked
    lease_timeout: float = 600.0
    #: longest time a request may wait for a slot
    max_wait: float = 60.0
    #: hold a job back from a free slow host while a faster one is expected
    #: to finish it sooner (see `core.Farm._worth`) ...
    prefer_fast: bool = True
    #: ... but never longer than this many seconds
    patience: float = 5.0
    #: a freed slot goes to the waiting client that used the farm least
    #: lately (speed x seconds of its leases), its past use halving every
    #: this many seconds: a small build started during big ones goes first
    usage_half_life: float = 60.0
    #: a light client below its fair share (offered slots / active clients)
    #: whose request would wait gets an express lease instead: one job beyond
    #: the slots of the fastest host whose express lane is free, which the
    #: host runs ahead of its other jobs (see `core.Farm._express`). Off by
    #: default: on the emulated farm it made a small build slower, not faster
    #: (docs/benchmarks.md)
    express: bool = False
    #: ... and only for a job at least this costly relative to the average
    #: (its preprocessed size, see `core.Farm._worth`): the big jobs of a
    #: small build are its critical path, its small ones wait for a slot
    express_min_cost: float = 1.0


def tier_of(speed: float, policy: Policy) -> int:
    """Tier number of a speed: larger is faster; fixed buckets on a log scale."""
    return math.floor(math.log(max(speed, 1e-9)) / math.log(policy.tier_ratio) + 1e-9)


def offered_slots(report: HostReport, policy: Policy, *, disabled: bool) -> int:
    """How many jobs the host may run now, given its load and desktop use."""
    if disabled:
        return 0
    if report.desktop_in_use:
        return min(report.slots, policy.desktop_slots)
    cpus = max(report.cpus, 1)
    external = max(0.0, report.load - report.running) / cpus
    if external <= policy.load_low:
        return report.slots
    if external >= policy.load_high:
        return 0
    share = (policy.load_high - external) / (policy.load_high - policy.load_low)
    return max(0, min(report.slots, math.floor(report.slots * share)))
