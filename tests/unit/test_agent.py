"""The host agent's pure parts: speed estimate and its refinement, desktop sources."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ccfarm.cgroups import effective_cpus
from ccfarm.daemon.activity import desktop_in_use, parse_source
from ccfarm.daemon.agent import HostAgent, RefinedSpeed
from ccfarm.daemon.probe import SpeedEstimate, measure_speed
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
