"""The scheduler's tunable rules, as pure functions of a policy and a host."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ccfarm.config import setting
from ccfarm.model import HostReport


@dataclass(frozen=True)
class Policy:
    """The scheduler's knobs; each is also a flag and a TOML key of its name
    (`SchedulerConfig` holds a Policy as a group, see `ccfarm.config`)."""

    tier_ratio: float = setting(
        1.25,
        "hosts whose speeds are within this factor of each other share a tier",
        metavar="FACTOR",
    )
    #: external load is what the host measured (its cgroup's CPU use or the
    #: load average, net of ccfarm's own jobs), per CPU it may use
    load_low: float = setting(
        0.3, "external load per CPU at or below which a host offers all its slots", metavar="LOAD"
    )
    load_high: float = setting(
        1.0,
        "external load per CPU at or above which a host offers none (linear in between)",
        metavar="LOAD",
    )
    desktop_slots: int = setting(
        0, "slots a host offers while someone uses its desktop", metavar="N"
    )
    #: three heartbeats (ccfarmd sends one every 2 s): a lost host is noticed in seconds
    host_timeout: float = setting(6.0, "drop a host not heard from for S seconds", metavar="S")
    lease_timeout: float = setting(
        600.0, "revoke a lease not released after S seconds", metavar="S"
    )
    max_wait: float = setting(60.0, "longest wait for a free slot, in seconds", metavar="S")
    #: see `decisions.Decisions.worth`
    prefer_fast: bool = setting(
        True,
        "hold a job back from a free slow host while a faster one is expected to finish it"
        " sooner (--no-prefer-fast: always use a free slot, however slow its host)",
    )
    patience: float = setting(
        5.0,
        "wait for a faster host while a slow one is free, in seconds (a big job waits"
        " longer: as long as the slow host would cost it)",
        metavar="S",
    )
    #: a freed slot goes to the waiting client that used the farm least lately
    #: (speed x seconds of its leases): a small build started during big ones
    #: goes first
    usage_half_life: float = setting(
        60.0, "seconds for a client's past farm use to count half as much", metavar="S"
    )
    #: a client with a free local slot sends its machine's speed: its job
    #: stays there unless a free host is more than this much faster (the
    #: transfer costs; icecream likewise keeps a job local when the local
    #: machine is nearly as fast as the best free host, within 10 %)
    local_margin: float = setting(
        1.1,
        "a job whose client has a free local slot compiles there unless a free host"
        " is more than FACTOR times as fast",
        metavar="FACTOR",
    )
    #: a light client below its fair share (offered slots / active clients)
    #: whose request would wait gets an express lease: one job beyond the
    #: slots of the fastest host whose express lane is free, run there ahead
    #: of its other jobs (see `decisions.Decisions.express_host`). Off by
    #: default: on the emulated farm it made a small build slower, not
    #: faster (docs/benchmarks.md)
    express: bool = setting(
        False, "express leases: a light client's job beyond a host's slots, run first there"
    )
    #: the cost is the preprocessed size (see `decisions.Decisions.worth`):
    #: the big jobs of a small build are its critical path, its small ones wait
    express_min_cost: float = setting(
        1.0, "express leases only for jobs this costly relative to the average", metavar="RATIO"
    )
    #: a host whose job failed for the host's sake (`HFAL`) offers nothing
    #: for `quarantine` seconds, doubled per consecutive failure up to
    #: `quarantine_max`; then it is on probation (see `health.HostHealth`)
    quarantine: float = setting(
        10.0,
        "seconds a host that failed a job offers no slot (doubled per consecutive failure)",
        metavar="S",
    )
    quarantine_max: float = setting(300.0, "longest quarantine, in seconds", metavar="S")
    probation_slots: int = setting(
        1,
        "slots a host offers after its quarantine, until its first job there ends well",
        metavar="N",
    )
    #: a host's claimed (or probed) speed is corrected by its jobs' times
    #: (see `evidence.SpeedEvidence`)
    speed_evidence: bool = setting(
        True,
        "correct hosts' claimed speeds by how long their jobs take"
        " (--no-speed-evidence: trust every claim)",
    )
    speed_evidence_jobs: int = setting(
        8,
        "jobs after which a host's observed speed replaces its claim (blended before)",
        metavar="N",
    )
    speed_tolerance: float = setting(
        1.5,
        "an observed speed within this factor of the claim leaves the claim in force",
        metavar="FACTOR",
    )


def tier_of(speed: float, policy: Policy) -> int:
    """Tier number of a speed: larger is faster; fixed buckets on a log scale."""
    return math.floor(math.log(max(speed, 1e-9)) / math.log(policy.tier_ratio) + 1e-9)


def cpu_share(report: HostReport, jobs: int) -> float:
    """The share of a CPU each of `jobs` jobs running at once on the host gets:
    1 while they are no more than its CPUs, CPUs / jobs beyond (1 when the
    host does not say how many CPUs it has).

    A host with 1 CPU and 2 slots runs one job at its claimed speed and two
    at half that each: counting every slot at the claim sent the biggest jobs
    to such a host in pairs, and counting every slot at half sent them to
    slower hosts while it sat idle. So a free slot counts at the speed the
    job that takes it would get (`slots.Host.speed_of`).
    """
    if report.cpus <= 0:
        return 1.0
    return min(1.0, report.cpus / max(jobs, 1))


def offered_slots(report: HostReport, policy: Policy, *, disabled: bool) -> int:
    """How many jobs the host may run now, given its load and desktop use."""
    if disabled:
        return 0
    if report.desktop_in_use:
        return min(report.slots, policy.desktop_slots)
    external = report.external_load
    if external is None:  # an older host: its load average, net of its jobs
        external = max(0.0, report.load - report.running) / max(report.cpus, 1)
    if external <= policy.load_low:
        return report.slots
    if external >= policy.load_high:
        return 0
    share = (policy.load_high - external) / (policy.load_high - policy.load_low)
    return max(0, min(report.slots, math.floor(report.slots * share)))
