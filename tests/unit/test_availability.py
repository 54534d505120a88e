"""Availability from a cgroup's own CPU use, net of ccfarm's jobs: the rate
from fake counters and clock, the report's field, and the slots a
CPU-limited host offers."""

from __future__ import annotations

from ccfarm.control.codec import MessageParser, hello
from ccfarm.control.messages import decode_host_report, encode_host_report
from ccfarm.daemon.agent import CgroupLoad, HostAgent, LoadAverageLoad, cgroup_counts
from ccfarm.model import HostReport
from ccfarm.scheduler.policy import Policy, offered_slots

# -- the rate ----------------------------------------------------------------------


class Counters:
    def __init__(self) -> None:
        self.now, self.usage, self.own = 100.0, 50.0, 10.0
        self.readable = True

    def advance(self, seconds: float, usage: float, own: float) -> None:
        self.now += seconds
        self.usage += usage
        self.own += own

    def measure(self, cpus: float) -> CgroupLoad:
        return CgroupLoad(
            cpus,
            lambda: self.usage if self.readable else None,
            lambda: self.own,
            lambda: self.now,
        )


def test_cgroup_load_is_use_net_of_ccfarm() -> None:
    c = Counters()
    load = c.measure(cpus=0.3)
    assert load() == 0.0  # no interval yet
    c.advance(2.0, usage=0.6, own=0.6)  # its whole quota, all ccfarm's
    assert load() == 0.0
    c.advance(2.0, usage=0.6, own=0.0)  # its whole quota, someone else's
    assert load() == 1.0
    c.advance(0.5, usage=0.0, own=0.0)  # a second scheduler's heartbeat: same figure
    assert load() == 1.0
    c.advance(2.0, usage=0.45, own=0.15)  # 0.3 of 2.5 s on 0.3 CPUs
    assert load() == 0.4
    c.advance(2.0, usage=0.3, own=0.5)  # ccfarm's time may lag: never below 0
    assert load() == 0.0
    c.readable = False
    c.advance(2.0, usage=0.6, own=0.0)
    assert load() == 0.0  # unreadable: the last figure
    c.readable = True
    c.advance(2.0, usage=0.6, own=0.0)
    assert load() == 1.0  # 1.2 CPU s over the 4 s since the last reading, on 0.3 CPUs


def test_which_measure() -> None:
    assert cgroup_counts(0.3, 8, 8, container=False)  # a quota
    assert cgroup_counts(None, 2, 8, container=False)  # pinned to 2 of 8 CPUs
    assert cgroup_counts(None, 8, 8, container=True)
    assert not cgroup_counts(None, 8, 8, container=False)  # the whole machine
    assert not cgroup_counts(8.0, 8, 8, container=False)  # a quota of all of it


def test_load_average_net_of_the_jobs_it_just_ran() -> None:
    now, load, running = [0.0], [0.0], [0]
    measure = LoadAverageLoad(4.0, lambda: running[0], lambda: load[0], lambda: now[0])
    assert measure() == 0.0
    running[0] = 4  # its own jobs start; the load average is still catching up
    now[0], load[0] = 2.0, 0.5
    assert measure() == 0.0
    for t in range(4, 300, 2):  # four jobs for minutes: the load average is 4
        now[0], load[0] = float(t), 4.0
        assert measure() == 0.0
    running[0] = 0  # they end; the load average takes a minute to fall
    now[0], load[0] = 302.0, 3.74  # 4 x e^(-4/60)
    assert measure() < 0.01
    now[0], load[0] = 360.0, 1.42  # 4 x e^(-62/60)
    assert measure() < 0.01
    now[0], load[0] = 362.0, 4.0  # someone else's four busy loops meanwhile
    assert measure() > 0.6
    assert LoadAverageLoad(2.0, lambda: 1, lambda: 3.0, lambda: 0.0)() == 1.0


# -- what the scheduler offers ------------------------------------------------------


def _report(**kw: object) -> HostReport:
    fields: dict[str, object] = dict(
        host="h:3632", address="h", port=3632, slots=2, cpus=1, speed=1.0, load=0.0
    )
    fields.update(kw)
    return HostReport(**fields)  # type: ignore[arg-type]


def _agent(external: CgroupLoad, running: int) -> HostAgent:
    return HostAgent(
        port=3632,
        listen="0.0.0.0",
        advertise="",
        slots=2,
        cpus=0.3,
        speed=lambda: 1.0,
        compilers=(),
        running=lambda: running,
        desktop=lambda: False,
        external=external,
    )


def _round_trip(report: HostReport) -> HostReport:
    parser = MessageParser(expect_hello=True)
    parser.receive_data(hello() + encode_host_report(report))
    message = parser.next_message()
    return decode_host_report(message)  # type: ignore[arg-type]


def test_limited_host_on_a_busy_machine_offers_its_slots() -> None:
    # the machine's load average counts the neighbours' compiles (0.9 per
    # CPU on the emulated farm); the host's own cgroup is idle
    c = Counters()
    agent = _agent(c.measure(cpus=0.3), running=0)
    c.advance(2.0, usage=0.0, own=0.0)
    report = _round_trip(agent.report("10.0.0.1"))
    assert report.external_load == 0.0
    busy_machine = _report(load=1.8, cpus=1, external_load=report.external_load)
    assert offered_slots(busy_machine, Policy(), disabled=False) == 2
    c.advance(2.0, usage=0.6, own=0.6)  # then its own jobs take its whole quota
    report = _round_trip(agent.report("10.0.0.1"))
    assert report.external_load == 0.0
    assert offered_slots(_report(load=1.8, external_load=0.0), Policy(), disabled=False) == 2


def test_limited_host_busy_with_other_work_is_withdrawn() -> None:
    c = Counters()
    load = c.measure(cpus=0.3)
    c.advance(2.0, usage=0.6, own=0.0)  # its quota taken by non-ccfarm work
    report = _round_trip(_agent(load, running=0).report("10.0.0.1"))
    assert report.external_load == 1.0
    assert offered_slots(report, Policy(), disabled=False) == 0
    c.advance(2.0, usage=0.39, own=0.0)  # 0.65 of its quota: partly back
    assert offered_slots(_report(external_load=load()), Policy(), disabled=False) == 1


def test_older_hosts_report_the_load_average() -> None:
    old = _report(cpus=4, slots=4, load=4.0, running=1)
    assert old.external_load is None and _round_trip(old).external_load is None
    assert offered_slots(old, Policy(), disabled=False) == 1  # (4 - 1) / 4 = 0.75
    assert offered_slots(_report(cpus=4, slots=4, load=4.0, running=4), Policy(), disabled=False)
