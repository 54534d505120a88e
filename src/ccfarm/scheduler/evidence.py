"""How fast each host really is, from the jobs it ran; what a job costs. Pure.

A host's claimed speed (its probe, `--speed`, a hosts-info file) decides its
tier until its jobs say otherwise. Each job that ended well is a sample: the
compiler's cost model (`costs.CostModel`) predicts the job's cost from its
size, in the farm's cost units (seconds x speed), and that cost over the
lease's seconds is the speed the host showed. A host's observed speed is the
median of its last `WINDOW` samples: older jobs drop out, and a minority of
odd ones (a job slowed by a hiccup on the host, a lease its client released
early) moves nothing.

The circularity: costs are learnt from seconds x the hosts' speeds, so a host
claiming 100 times its speed teaches the cost models costs 100 times too big
and then looks honest by them. So the scale is anchored on the farm, not on
any host: over the hosts with `TRIAL_JOBS` samples or more (at least
`ANCHOR_HOSTS` of them), the median of observed over claimed speed is the
factor between the cost units and the claims' units, and the cost models are
rescaled by it (`CostModel.scale`) so that the median host's claim holds. One
host, or any minority, cannot move that median: a liar among honest hosts is
measured against them, and the costs it polluted are brought back to the
honest hosts' units. With fewer than three such hosts there is no majority
to trust and every claim stands.

A host's effective speed is its claim while the two agree within
`speed_tolerance`; otherwise its observed speed (in the claims' units) once
it has `speed_evidence_jobs` samples, blended with its claim before
(geometrically, by the share of that count it has). Both ways: a host faster
than it claims moves up as one slower moves down.

A host must run jobs to show its speed, and one that claims less than the
fastest gets few. So, once a compiler's cost model is warm, a host with
fewer than TRIAL_JOBS samples is on trial: it takes jobs of at most average
cost (`Decisions.need`) until it has them.

Samples are kept as logarithms in fixed units (those of the cost models
before the first rescaling) and the rescalings as one offset, so that a
rescaling costs O(compilers), not O(hosts). A host's evidence is forgotten
when it leaves.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from statistics import median

from ccfarm.scheduler.costs import CostModel
from ccfarm.scheduler.policy import Policy
from ccfarm.scheduler.slots import Key

__all__ = ["ANCHOR_HOSTS", "TRIAL_JOBS", "WINDOW", "HostEvidence", "SpeedEvidence"]

#: samples a host's observed speed is the median of
WINDOW = 16
#: samples before a host counts in the anchor and leaves its trial
TRIAL_JOBS = 3
#: hosts with TRIAL_JOBS samples needed before any claim is corrected
ANCHOR_HOSTS = 3
#: once a host has TRIAL_JOBS samples, a new one counts at most this factor
#: away from its observed speed (log): a client releasing leases at will
#: cannot drag a host far with one job
_STEP = math.log(8.0)


class HostEvidence:
    """One host's samples: log of the speed each job showed, in fixed units."""

    __slots__ = ("samples", "jobs", "level", "claim")

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=WINDOW)
        self.jobs = 0  # samples taken, also those gone from the window
        self.level = 0.0  # median of the samples
        self.claim = 0.0  # log of the speed it claims


class SpeedEvidence:
    """Per compiler the cost model, per host its evidence, and the anchor."""

    def __init__(self, policy: Policy) -> None:
        self.enabled = policy.speed_evidence
        self.full = max(1, policy.speed_evidence_jobs)
        self.tolerance = math.log(max(1.0, policy.speed_tolerance))
        #: per key: what a job costs by its size, learnt from ended leases
        self.costs: dict[Key, CostModel] = {}
        self.hosts: dict[str, HostEvidence] = {}
        #: hosts with TRIAL_JOBS samples or more
        self.tried: set[str] = set()
        #: has the anchor been taken (are claims corrected)?
        self.anchored = False
        self._offset = 0.0  # log of the fixed units over the cost models' units
        self._since = 0  # samples since the anchor was last taken

    # -- costs ---------------------------------------------------------------------

    def cost(self, key: Key, size: int) -> float:
        """A job's cost relative to the average job of its compiler."""
        model = self.costs.get(key)
        if model is None:
            model = self.costs[key] = CostModel()
        return model.relative(size)

    # -- hosts ---------------------------------------------------------------------

    def speed(self, name: str, claimed: float) -> float:
        """The speed the farm uses for host `name`, which claims `claimed`."""
        evidence = self.hosts.get(name)
        if evidence is None:
            evidence = self.hosts[name] = HostEvidence()
        evidence.claim = math.log(max(claimed, 1e-9))
        if not self.anchored or evidence.jobs < TRIAL_JOBS:
            return claimed
        off = evidence.level - self._offset - evidence.claim
        if abs(off) <= self.tolerance:
            return claimed
        return claimed * math.exp(min(1.0, evidence.jobs / self.full) * off)

    def observed(self, name: str) -> float | None:
        """The speed host `name` showed, in the claims' units (None: not known yet)."""
        evidence = self.hosts.get(name)
        if evidence is None or not self.anchored or evidence.jobs < TRIAL_JOBS:
            return None
        return math.exp(evidence.level - self._offset)

    def on_trial(self, key: Key, name: str) -> bool:
        """Should host `name` be tried with a job of `key` (see the module's doc)?"""
        evidence = self.hosts.get(name)
        if evidence is None or evidence.jobs >= TRIAL_JOBS or not self.enabled:
            return False
        model = self.costs.get(key)
        return model is not None and model.warm

    def forget(self, name: str) -> None:
        """Host `name` left the farm."""
        self.hosts.pop(name, None)
        self.tried.discard(name)

    # -- jobs ----------------------------------------------------------------------

    def ended(self, name: str, key: Key, size: int, seconds: float, cost: float) -> bool:
        """A job of `size` bytes ended well after `seconds` on host `name`,
        costing `cost` (seconds x the speed it was granted at): a sample of
        the host's speed, then of the job's cost. True if the host's evidence
        changed."""
        model = self.costs.get(key)
        if model is None:
            model = self.costs[key] = CostModel()
        changed = False
        evidence = self.hosts.get(name)
        if self.enabled and evidence is not None and seconds > 0 and model.warm:
            predicted = model.predicted(size)
            if predicted is not None:
                self._sample(name, evidence, math.log(predicted / seconds) + self._offset)
                changed = True
        model.observe(size, cost)
        return changed

    def _sample(self, name: str, evidence: HostEvidence, value: float) -> None:
        if evidence.jobs >= TRIAL_JOBS:
            value = min(evidence.level + _STEP, max(evidence.level - _STEP, value))
        evidence.samples.append(value)
        evidence.jobs += 1
        evidence.level = median(evidence.samples)
        if evidence.jobs >= TRIAL_JOBS:
            self.tried.add(name)
        self._since += 1
        # each sample in a small farm; in a large one every len/8 samples
        # (a median over hosts costs O(hosts))
        if self._since >= max(1, len(self.tried) // 8):
            self._anchor()

    def _anchor(self) -> None:
        """Rescale the cost models so that the median tried host's claim holds."""
        self._since = 0
        if len(self.tried) < ANCHOR_HOSTS:
            return
        hosts = self.hosts
        ratio = median(hosts[n].level - hosts[n].claim for n in self.tried) - self._offset
        if ratio:
            factor = math.exp(-ratio)
            for model in self.costs.values():
                model.scale(factor)
            self._offset += ratio
        self.anchored = True

    def check(self, registered: Iterable[str]) -> None:
        """Raise AssertionError unless the evidence is of `registered` hosts
        and its indexes agree with it."""
        assert set(self.hosts) <= set(registered), "evidence of hosts gone"
        assert self.tried == {n for n, e in self.hosts.items() if e.jobs >= TRIAL_JOBS}, "tried"
        for name, evidence in self.hosts.items():
            assert len(evidence.samples) == min(evidence.jobs, WINDOW), f"{name}: samples"
            if evidence.samples:
                assert evidence.level == median(evidence.samples), f"{name}: level"
        assert self.enabled or not self.tried, "samples taken while disabled"
