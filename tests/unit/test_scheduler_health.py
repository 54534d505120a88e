"""Hosts that fail jobs: the policy's quarantine and probation knobs, and a
memory of failed hosts that does not grow with hosts that never return."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.model import CompilerIdentity, HostReport, LeaseGranted, LeaseRequest
from ccfarm.scheduler.core import Farm
from ccfarm.scheduler.health import HostHealth, Standing
from ccfarm.scheduler.policy import Policy

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
_ids = iter(range(1, 10**9))


def host(name: str, slots: int = 3) -> HostReport:
    return HostReport(
        host=name, address=name, port=3632, slots=slots, cpus=slots, speed=1.0, load=0.0,
        compilers=(GCC,),
    )  # fmt: skip


def grant(farm: Farm, now: float) -> LeaseGranted:
    req = LeaseRequest(next(_ids), "c/u", GCC, 1e6, 0)
    out = farm.request(req, now) + farm.tick(now)
    (g,) = [o for o in out if isinstance(o, LeaseGranted) and o.request == req.request]
    return g


def test_quarantine_backoff_and_probation_are_the_policys() -> None:
    policy = Policy(host_timeout=1e9, quarantine=2.0, quarantine_max=5.0, probation_slots=2)
    farm = Farm(policy, random.Random(1))
    farm.host_report(host("a"), 0)
    now = 0.0
    for backoff in (2.0, 4.0, 5.0, 5.0):  # doubling, at most quarantine_max
        g = grant(farm, now)
        farm.host_failed(g.lease, now)
        farm.release(g.lease, now)
        assert farm.hosts["a"].offered == 0
        assert farm.tick(now + backoff - 0.01) == []
        now += backoff
        farm.tick(now)
        assert farm.hosts["a"].offered == 2, backoff  # on probation: two slots
        farm.check(now)
    probe = grant(farm, now)
    farm.release(probe.lease, now + 1)  # the probe came back well
    assert farm.hosts["a"].offered == 3 and farm.health.trials == {}


def test_the_defaults_are_10_s_doubling_to_300_s_and_one_probe() -> None:
    health = HostHealth()
    assert [health.backoff(n) for n in (1, 2, 3, 5, 6, 7, 1000)] == [
        10.0, 20.0, 40.0, 160.0, 300.0, 300.0, 300.0,
    ]  # fmt: skip
    health.failed("a", 1, 0.0)
    assert health.quarantine_over("a", 10.0) and health.limit("a") == 1


def test_a_gone_host_is_forgotten_when_its_quarantine_ends() -> None:
    farm = Farm(Policy(host_timeout=1e9), random.Random(2))
    farm.host_report(host("a"), 0)
    g = grant(farm, 0)
    farm.host_failed(g.lease, 1)
    farm.host_gone("a", "host's connection closed", 2)
    assert "a" in farm.health.trials  # a restart within the quarantine is still quarantined
    farm.tick(11)
    assert farm.health.trials == {}
    farm.check(11)


def test_a_gone_host_on_probation_is_forgotten_at_once() -> None:
    farm = Farm(Policy(host_timeout=1e9), random.Random(3))
    farm.host_report(host("a"), 0)
    g = grant(farm, 0)
    farm.host_failed(g.lease, 1)
    farm.release(g.lease, 1)
    farm.tick(11)
    assert farm.health.standing("a") is Standing.PROBATION
    farm.host_gone("a", "host left", 12)
    assert farm.health.trials == {} and farm.evidence.hosts == {}
    farm.check(12)


def test_memory_is_bounded_by_hosts_present_and_quarantined_lately() -> None:
    """A thousand hosts, each failing a job and never coming back: once
    their quarantines are over, nothing of them is left."""
    farm = Farm(Policy(host_timeout=1e9), random.Random(4))
    now = 0.0
    for i in range(1000):
        name = f"h{i}"
        farm.host_report(host(name, slots=1), now)
        g = grant(farm, now)
        farm.host_failed(g.lease, now)
        farm.host_gone(name, "host left", now)
        now += 0.01
        assert len(farm.health.trials) <= 1 + 10 / 0.01  # at most those of the last 10 s
    farm.tick(now + 10)
    assert farm.health.trials == {} and farm.hosts == {} and farm.evidence.hosts == {}
    farm.tick(3e9)  # past every host's and lease's deadline
    assert len(farm.timers) == 0  # their deadlines are gone too
    farm.check(3e9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["join", "fail", "gone", "tick"]), st.sampled_from("abc")),
        max_size=40,
    )
)
def test_trials_are_only_of_hosts_present_or_in_quarantine(steps: list[tuple[str, str]]) -> None:
    farm = Farm(Policy(host_timeout=1e9), random.Random(5))
    now = 0.0
    for action, name in steps:
        now += 3.0
        if action == "join":
            farm.host_report(host(name), now)
        elif action == "fail":
            mine = [lease for lease in farm.leases.values() if lease.host == name]
            if name in farm.hosts and not mine and farm.hosts[name].free:
                mine = [farm.leases[grant(farm, now).lease]]
            if mine:
                farm.host_failed(mine[0].lease, now)
        elif action == "gone":
            farm.host_gone(name, "host left", now)
        else:
            farm.tick(now)
        farm.check(now)
        for trial_host, trial in farm.health.trials.items():
            # a gone host is remembered only while its quarantine runs (until its deadline)
            assert trial_host in farm.hosts or trial.standing is Standing.QUARANTINED
    farm.tick(now + 1000)
    assert set(farm.health.trials) <= set(farm.hosts)
