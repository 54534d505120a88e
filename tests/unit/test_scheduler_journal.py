"""The farm's journal: each change of a host's membership or standing is
noted once, and heartbeats that change nothing note nothing."""

from __future__ import annotations

import random

from ccfarm.model import CompilerIdentity, HostReport, LeaseGranted, LeaseRequest
from ccfarm.scheduler.core import Farm
from ccfarm.scheduler.journal import HostNews, Journal, News
from ccfarm.scheduler.policy import Policy

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")


def report(name: str, slots: int = 2) -> HostReport:
    return HostReport(
        host=name,
        address=name,
        port=3632,
        slots=slots,
        cpus=slots,
        speed=1.5,
        load=0.0,
        compilers=(GCC,),
    )


def news(farm: Farm) -> list[tuple[str, News, str]]:
    return [(n.host, n.news, n.detail) for n in farm.journal.take()]


def lease(farm: Farm, request: int, now: float) -> LeaseGranted:
    outcomes = farm.request(LeaseRequest(request, "m/u", GCC, 30.0, 0), now)
    (grant,) = [o for o in outcomes if isinstance(o, LeaseGranted)]
    return grant


def test_a_join_is_noted_once_with_what_the_host_offers() -> None:
    farm = Farm(Policy(), random.Random(1))
    farm.host_report(report("h1"), 0.0)
    assert news(farm) == [("h1", News.JOINED, "2 slots, speed 1.5, 2 CPUs")]
    farm.host_report(report("h1"), 1.0)  # a heartbeat
    farm.host_report(report("h1", slots=1), 2.0)  # a change of slots is no news
    assert news(farm) == []


def test_leaving_says_why() -> None:
    farm = Farm(Policy(host_timeout=5.0), random.Random(1))
    for name in ("h1", "h2"):
        farm.host_report(report(name), 0.0)
    farm.journal.take()
    farm.host_gone("h1", "host's connection closed", 1.0)
    farm.tick(10.0)  # h2's heartbeats stopped
    assert news(farm) == [
        ("h1", News.LEFT, "host's connection closed"),
        ("h2", News.LEFT, "host stopped sending heartbeats"),
    ]
    farm.host_gone("h1", "again", 11.0)  # a host already gone: nothing happens
    assert news(farm) == []


def test_drains_by_the_host_and_by_an_operator() -> None:
    farm = Farm(Policy(), random.Random(1))
    farm.host_report(report("h1"), 0.0)
    farm.host_report(report("h2"), 0.0)
    lease(farm, 1, 0.5)
    farm.journal.take()
    farm.set_disabled("h2", True, 1.0)
    farm.set_disabled("h2", True, 1.5)  # disabled already: no news
    farm.set_disabled("h2", False, 2.0)
    farm.host_leaving("h1", 3.0)
    assert news(farm) == [
        ("h2", News.DISABLED, ""),
        ("h2", News.ENABLED, ""),
        ("h1", News.LEAVING, "1 jobs still running"),
    ]


def test_quarantine_probation_and_health_again() -> None:
    farm = Farm(Policy(host_timeout=1000.0), random.Random(1))
    farm.host_report(report("h1"), 0.0)
    first = lease(farm, 1, 0.0)
    farm.journal.take()
    farm.host_failed(first.lease, 1.0)
    farm.host_failed(first.lease, 1.5)  # the same failure again: no news
    farm.release(first.lease, 2.0)  # the wrapper gave up on it
    assert news(farm) == [("h1", News.QUARANTINED, f"for {Policy().quarantine:g} s")]
    farm.tick(1.0 + Policy().quarantine)
    assert news(farm) == [("h1", News.PROBATION, "one job at a time")]
    probe = lease(farm, 2, 20.0)
    farm.release(probe.lease, 21.0)
    assert news(farm) == [("h1", News.HEALTHY, "")]
    other = lease(farm, 3, 22.0)
    farm.release(other.lease, 23.0)  # a healthy host's release is no news
    assert news(farm) == []


def test_the_journal_gives_each_note_once_in_order() -> None:
    journal = Journal()
    assert not journal
    journal.note("a", News.JOINED, "x")
    journal.note("b", News.LEFT)
    assert journal
    assert journal.take() == [HostNews("a", News.JOINED, "x"), HostNews("b", News.LEFT)]
    assert journal.take() == [] and not journal
    assert HostNews("a", News.JOINED, "x").text() == "host a joined: x"
    assert HostNews("b", News.PROBATION).text() == "host b on probation"
