"""The host agent's pure parts: speed estimate and its refinement, desktop sources."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ccfarm.cgroups import effective_cpus
from ccfarm.daemon.activity import desktop_in_use, parse_source
from ccfarm.daemon.agent import HostAgent, RefinedSpeed
from ccfarm.daemon.probe import Entitlement, SpeedEstimate, measure_speed
from ccfarm.errors import ConfigError
from ccfarm.model import CompilerIdentity


def test_speed_from_the_probe() -> None:
    # 0.25 s of CPU in 1 s of wall time: a host with a quarter of a core
    est = SpeedEstimate(reference_cpu=0.25, reference_wall=1.0)
    assert est.speed == 1.0
    assert SpeedEstimate(0.25, 0.25).speed == 4.0


def test_jobs_refine_the_speed() -> None:
    est = SpeedEstimate(0.25, 0.25, weight=0.5)  # idle host: speed 4
    est.observe(cpu_seconds=1.0, wall_seconds=4.0)  # now it only gets a quarter of a core
    assert est.speed == 2.5
    for _ in range(10):
        est.observe(1.0, 4.0)
    assert est.speed == 1.0
    est.observe(0.1, 0.2)  # too little wall time to say anything
    assert est.speed == 1.0
    for _ in range(10):
        est.observe(4.0, 4.0)  # calm again
    assert est.speed == 4.0


def test_refined_speed_uses_deltas() -> None:
    wall, cpu = [10.0], [5.0]
    speed = RefinedSpeed(SpeedEstimate(0.5, 0.5, weight=1.0), lambda: wall[0], lambda: cpu[0])
    assert speed() == 2.0
    wall[0] += 2.0
    cpu[0] += 1.0  # half the wall time on CPU
    assert speed() == 1.0
    assert speed() == 1.0  # nothing new


def test_entitlement_is_a_cpu_per_compiler_up_to_the_cpus_then_a_share() -> None:
    due = Entitlement(cpus=2)
    assert due.change(0.0, 1) == 0.0
    assert due.change(1.0, 2) == 1.0  # one alone for 1 s: 1 s of a CPU
    assert due.change(2.0, 4) == 2.0  # two on two CPUs: each a whole one
    assert due.at(3.0) == 2.5  # four on two: half a CPU each
    assert due.change(4.0, 0) == 3.0
    assert due.at(10.0) == 3.0  # nothing ran
    # a job's entitlement: the value at its end minus at its start
    one = Entitlement(cpus=1)
    start_a = one.change(0.0, 1)
    start_b = one.change(1.0, 2)
    end_a = one.change(3.0, 1)  # a: 1 s alone, 2 s shared
    end_b = one.change(4.0, 0)  # b: 2 s shared, 1 s alone
    assert end_a - start_a == 2.0 and end_b - start_b == 2.0
    assert Entitlement(cpus=0).cpus == 1


def test_probe_runs_the_real_compiler() -> None:
    est = measure_speed(rounds=1)
    assert 0 < est.speed < 1000 and 0 < est.share <= 1.0
    assert 0 < effective_cpus() <= (os.cpu_count() or 1)


def test_agent_report() -> None:
    gcc = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
    agent = HostAgent(
        port=3632,
        listen="0.0.0.0",
        advertise="",
        slots=4,
        cpus=1.5,
        speed=lambda: 2.0,
        compilers=(gcc,),
        running=lambda: 1,
        desktop=lambda: False,
    )
    report = agent.report("10.0.0.7")
    assert (report.host, report.address, report.cpus, report.speed, report.running) == (
        "10.0.0.7:3632",
        "10.0.0.7",
        2,
        2.0,
        1,
    )
    assert report.compilers == (gcc,) and 0x43460001 in report.protocols


def test_desktop_sources(tmp_path: Path) -> None:
    marker = tmp_path / "last-input"
    marker.write_text("")
    source = parse_source(f"file:{marker}")
    assert desktop_in_use(source, 300)
    old = time.time() - 600
    os.utime(marker, (old, old))
    assert not desktop_in_use(source, 300)
    assert not desktop_in_use(parse_source("none"), 300)
    assert desktop_in_use(parse_source("command:echo 12"), 300)
    assert not desktop_in_use(parse_source("command:echo 1200"), 300)
    assert not desktop_in_use(parse_source("command:false"), 300)
    with pytest.raises(ConfigError):
        parse_source("x11")
