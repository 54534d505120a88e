"""How fast each host really is, from the jobs it ran; what a job costs. Pure.

A host's claimed speed (its probe, `--speed`, a hosts-info file) decides its
tier until its jobs say otherwise. Each job that ended well is a sample: its
compiler's cost model (`costs.CostModel`) predicts the job's cost from its
size, in the farm's cost units (seconds x speed), and that cost over the
lease's seconds is the speed the host showed. A host's observed speed is the
median over its last `WINDOW` jobs, each predicted by the cost models as they
are now: older jobs drop out, and a minority of odd ones (a job slowed by a
hiccup on the host, a lease its client released early) moves nothing.

The circularity: costs are learnt from seconds x the hosts' speeds, so a host
claiming 100 times its speed would teach the cost models costs 100 times too
big and then look honest by them. So costs and speeds are estimated
together. The scale is anchored on the farm, not on any host: over the hosts
with `TRIAL_JOBS` samples or more (at least `ANCHOR_HOSTS` of them), the
median of observed over claimed speed is the factor between cost units and
claimed units, and each host is judged by its own ratio over that median.
One host, or any minority, cannot move the median: a liar among honest hosts
is measured against them. And every job a host ran counts in the cost models
at the speed the farm now believes it has (`CostModel.respeed`); the hosts
furthest from the median beyond the tolerance, a minority of the measured
ones, do not count at all (their past jobs included), so the costs a liar
taught leave with its claim and it is judged by the others' costs (a
liar's big jobs would otherwise teach that big jobs cost more, and keep it
looking fast). Never more than a minority: excluding every host that looks
off in a round could leave the models with no job at all. With fewer than three such hosts
there is no majority to trust and every claim stands.

A host's effective speed is its claim while its ratio is within
`speed_tolerance` of the median's; otherwise its observed speed (in the
claims' units) once it has `speed_evidence_jobs` samples, blended with its
claim before (geometrically, by the share of that count it has). Both ways:
a host faster than it claims moves up as one slower moves down.

A host must run jobs to show its speed, and one that claims less than the
fastest gets few (one that claims more may get all, and with no other host
working nothing would contradict it). So, once a compiler's cost model is
warm, a host with fewer than TRIAL_JOBS samples is on trial: a job of at
most average cost goes to it when it is free (`trials`), and a slower one
on trial takes such jobs from the queue (`Decisions.need`), until it has
them: a few small jobs per host in the scheduler's life. A host whose
samples contradict its claim stays on trial until they are
`speed_evidence_jobs`, so that it is re-tiered by its full evidence
(an underclaiming host would otherwise stay in a slow tier, half-corrected). A host's evidence
is forgotten when it leaves.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable
from statistics import median

from ccfarm.scheduler.costs import CostModel, Line
from ccfarm.scheduler.policy import Policy
from ccfarm.scheduler.slots import Key

__all__ = ["ANCHOR_HOSTS", "TRIAL_JOBS", "WINDOW", "HostEvidence", "SpeedEvidence"]

#: jobs a host's observed speed is the median over
WINDOW = 16
#: samples before a host counts in the anchor and leaves its trial
TRIAL_JOBS = 3
#: hosts with TRIAL_JOBS samples needed before any claim is corrected
ANCHOR_HOSTS = 3
#: hosts on trial a request looks at (the cost of a request stays bounded)
_TRIAL_LOOKS = 8


class HostEvidence:
    """One host's last jobs (compiler, size, main bytes, seconds) and what they say."""

    __slots__ = ("samples", "jobs", "level", "claimed", "claim", "speed", "counted", "keys")

    def __init__(self, claimed: float) -> None:
        #: (the compiler's cost model, size, main bytes, seconds) of its last jobs
        self.samples: deque[tuple[CostModel, int, int, float]] = deque(maxlen=WINDOW)
        self.jobs = 0  # samples taken, also those gone from the window
        self.level = 0.0  # log of its observed speed in cost units (the samples' median)
        self.claimed = claimed  # the speed it claims
        self.claim = math.log(max(claimed, 1e-9))  # and its log
        self.speed = claimed  # the speed the farm uses for it
        self.counted = claimed  # the speed its jobs count at in the cost models (0: not)
        self.keys: set[Key] = set()  # the cost models its jobs count in


class SpeedEvidence:
    """Per compiler the cost model, per host its evidence, and the anchor."""

    def __init__(self, policy: Policy) -> None:
        self.enabled = policy.speed_evidence
        self.full = max(1, policy.speed_evidence_jobs)
        self.tolerance = math.log(max(1.0, policy.speed_tolerance))
        #: per key: what a job costs by its size, learnt from ended leases
        self.costs: dict[Key, CostModel] = {}
        self.hosts: dict[str, HostEvidence] = {}
        #: hosts with TRIAL_JOBS samples or more (those the anchor is taken over)
        self.tried: set[str] = set()
        #: hosts on trial, in the order `trials` looks at them: those with
        #: fewer than TRIAL_JOBS samples, and those whose samples contradict
        #: their claim until they have `speed_evidence_jobs`
        self.trying: dict[str, None] = {}
        #: log of the median tried host's observed over claimed speed (None:
        #: fewer than ANCHOR_HOSTS tried hosts yet, no claim is corrected)
        self.anchor: float | None = None
        #: the tried hosts furthest from the anchor beyond the tolerance, a
        #: minority of them: their jobs do not count in the cost models
        self.excluded: set[str] = set()
        self._since = 0  # samples since the anchor was last taken

    # -- costs ---------------------------------------------------------------------

    def cost(self, key: Key, size: int, main: int = 0) -> float:
        """A job's cost relative to the average job of its compiler (`size`
        bytes, `main` of them from its main file)."""
        model = self.costs.get(key)
        if model is None:
            model = self.costs[key] = CostModel()
        return model.relative(size, main)

    # -- hosts ---------------------------------------------------------------------

    def speed(self, name: str, claimed: float) -> float:
        """The speed the farm uses for host `name`, which claims `claimed`."""
        evidence = self.hosts.get(name)
        if evidence is None:
            evidence = self.hosts[name] = HostEvidence(claimed)
            self.trying[name] = None
        evidence.claimed = claimed
        evidence.claim = math.log(max(claimed, 1e-9))
        speed = claimed
        if self.anchor is not None and evidence.jobs >= TRIAL_JOBS:
            off = evidence.level - evidence.claim - self.anchor
            if abs(off) > self.tolerance:
                speed = claimed * math.exp(min(1.0, evidence.jobs / self.full) * off)
        evidence.speed = speed
        if evidence.jobs >= TRIAL_JOBS and (speed == claimed or evidence.jobs >= self.full):
            self.trying.pop(name, None)
        elif name not in self.trying:
            self.trying[name] = None
        # its jobs count at the speed believed, not at all if it is one of the
        # minority furthest off (see the module's doc)
        counted = 0.0 if name in self.excluded else speed
        if counted != evidence.counted:
            evidence.counted = counted
            for key in evidence.keys:
                self.costs[key].respeed(name, counted)
        return speed

    def observed(self, name: str) -> float | None:
        """The speed host `name` showed, in the claims' units (None: not known yet)."""
        evidence = self.hosts.get(name)
        if evidence is None or self.anchor is None or evidence.jobs < TRIAL_JOBS:
            return None
        return math.exp(evidence.level - self.anchor)

    def on_trial(self, key: Key, name: str) -> bool:
        """Should host `name` be tried with a job of `key` (see the module's doc)?"""
        if name not in self.trying or not self.enabled:
            return False
        model = self.costs.get(key)
        return model is not None and model.warm

    def trials(self, key: Key, size: int, cost: float) -> list[str]:
        """Hosts on trial that a job of `key`, `size` bytes and relative
        `cost` could go to (a few, the longest unlooked-at first; each looked
        at goes to the back of the line): a job of known size and at most
        average cost, once the compiler's cost model is warm."""
        if not self.trying or size <= 0 or cost > 1.0 or not self.enabled:
            return []
        model = self.costs.get(key)
        if model is None or not model.warm:
            return []
        names = list(itertools.islice(self.trying, _TRIAL_LOOKS))
        for name in names:  # to the back of the line
            del self.trying[name]
            self.trying[name] = None
        return names

    def forget(self, name: str) -> None:
        """Host `name` left the farm."""
        evidence = self.hosts.pop(name, None)
        self.tried.discard(name)
        self.trying.pop(name, None)
        self.excluded.discard(name)
        if evidence is not None:
            for key in evidence.keys:
                self.costs[key].forget(name)

    # -- jobs ----------------------------------------------------------------------

    def ended(
        self, name: str, key: Key, size: int, seconds: float, cost: float, main: int = 0
    ) -> list[str]:
        """A job of `size` bytes (`main` from its main file) ended well after
        `seconds` on host `name`, costing `cost` (seconds x the speed it was
        granted at): a sample of the host's speed, then of the job's cost.
        Returns the hosts whose effective speed may have changed (see `speed`)."""
        model = self.costs.get(key)
        if model is None:
            model = self.costs[key] = CostModel()
        evidence = self.hosts.get(name)
        if evidence is None or not self.enabled:
            model.observe(size, cost, main)
            return []
        sampled = seconds > 0 and size > 0 and model.warm
        if sampled:
            evidence.samples.append((model, size, main, seconds))
            evidence.jobs += 1
            evidence.level = self._level(evidence)
            if evidence.jobs >= TRIAL_JOBS:
                self.tried.add(name)
        model.observe_on(name, size, seconds, evidence.counted, main)
        evidence.keys.add(key)
        if not sampled:
            return []
        self._since += 1
        # each sample in a farm of up to 9 measured hosts; in a larger one
        # every len - 8 samples: it predicts each tried host's last jobs
        # again, O(hosts) (measured: every len/8 samples took the core's
        # request + release from ~40 to ~300 us at 100 hosts)
        if self._since < max(1, len(self.tried) - 8) or len(self.tried) < ANCHOR_HOSTS:
            return [name]
        self._anchor()
        return [name, *self.tried]

    def _level(
        self,
        evidence: HostEvidence,
        lines: dict[CostModel, Line | None] | None = None,
    ) -> float:
        """The median of log(predicted cost / seconds) over the host's samples
        (`lines`: the cost models' `line()`, when computed already)."""
        lines = {} if lines is None else lines
        values = []
        for model, size, main, seconds in evidence.samples:
            if model in lines:
                line = lines[model]
            else:
                line = lines[model] = model.line()
            if line is not None:
                predicted = model.predicted(size, main, line)
                if predicted is not None and predicted > 0:
                    values.append(math.log(predicted / seconds))
        return median(values) if values else evidence.level

    def _anchor(self, rounds: int = 3) -> None:
        """Take the median tried host's observed over claimed speed, each
        tried host's jobs predicted by the cost models as they are now; then
        count each one's jobs at its new speed, and again: costs and speeds
        settle together (a few rounds of alternating estimates)."""
        self._since = 0
        hosts = self.hosts
        for _ in range(rounds):
            lines: dict[CostModel, Line | None] = {}
            ratios = []
            for name in self.tried:
                evidence = hosts[name]
                evidence.level = self._level(evidence, lines)
                ratios.append(evidence.level - evidence.claim)
            self.anchor = anchor = median(ratios)
            offs = sorted(
                ((abs(hosts[n].level - hosts[n].claim - anchor), n) for n in self.tried),
                reverse=True,
            )
            minority = (len(offs) - 1) // 2
            self.excluded = {n for off, n in offs[:minority] if off > self.tolerance}
            for name in self.tried:
                self.speed(name, hosts[name].claimed)

    def check(self, registered: Iterable[str]) -> None:
        """Raise AssertionError unless the evidence is of `registered` hosts
        and its indexes agree with it."""
        assert set(self.hosts) <= set(registered), "evidence of hosts gone"
        assert self.tried == {n for n, e in self.hosts.items() if e.jobs >= TRIAL_JOBS}, "tried"
        for name, evidence in self.hosts.items():
            contradicted = evidence.speed != evidence.claimed and evidence.jobs < self.full
            trying = evidence.jobs < TRIAL_JOBS or contradicted
            assert (name in self.trying) == trying, f"{name}: on trial or not"
        for name, evidence in self.hosts.items():
            assert len(evidence.samples) == min(evidence.jobs, WINDOW), f"{name}: samples"
            for key in evidence.keys:
                share = self.costs[key]._hosts.get(name)
                assert share is None or share[0] == evidence.counted, f"{name}: counted at"
        assert self.enabled or not self.tried, "samples taken while disabled"
