"""A real CPU-limited cgroup: its host is not withdrawn because the machine is
busy, and is when its own group is busy with other work.

Needs a writable cgroup v1 `cpu` hierarchy (root, usually); skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CPU_ROOT = Path("/sys/fs/cgroup/cpu")
BUSY = [sys.executable, "-c", "while True: pass"]
MEASURE = """
import sys, time
from ccfarm.daemon.agent import availability
from ccfarm.cgroups import effective_cpus
what, measure = availability(effective_cpus(), lambda: 0)
print(what, flush=True)
for line in sys.stdin:  # one figure per line asked, over the time since the last
    print(measure(), flush=True)
"""


@pytest.fixture
def group() -> Iterator[Path]:
    path = CPU_ROOT / f"ccfarm-test-{os.getpid()}"
    try:
        path.mkdir()
        (path / "cpu.cfs_period_us").write_text("100000\n")
        (path / "cpu.cfs_quota_us").write_text("30000\n")
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.rmdir()
        pytest.skip(f"no writable cgroup v1 cpu hierarchy ({exc})")
    try:
        yield path
    finally:
        path.rmdir()


@contextlib.contextmanager
def started(argv: list[str], group: Path | None, **kw: object) -> Iterator[subprocess.Popen[str]]:
    move = f"echo $$ > {group}/cgroup.procs; " if group else ""
    with subprocess.Popen(
        ["sh", "-c", f'{move}exec "$@"', "sh", *argv],
        text=True,
        **kw,  # type: ignore[call-overload]
    ) as proc:
        try:
            yield proc
        finally:
            proc.kill()


def _figure(measurer: subprocess.Popen[str], seconds: float) -> float:
    """The external load per CPU measured over the next `seconds` (at least 1)."""
    time.sleep(seconds)
    assert measurer.stdin is not None and measurer.stdout is not None
    measurer.stdin.write("\n")
    measurer.stdin.flush()
    return float(measurer.stdout.readline())


def test_limited_host_measures_its_own_group(group: Path) -> None:
    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with started([sys.executable, "-c", MEASURE], group, **pipes) as measurer:
        assert measurer.stdout is not None
        assert measurer.stdout.readline().startswith("cgroup v1 (0.3 CPUs)")
        with started(BUSY, None), started(BUSY, None):  # the neighbours
            _figure(measurer, 1.2)
            assert _figure(measurer, 2.0) < 0.2
        with started(BUSY, group):  # other work inside its own group
            _figure(measurer, 1.2)
            assert _figure(measurer, 2.0) > 0.7
        _figure(measurer, 1.2)
        assert _figure(measurer, 2.0) < 0.2


def test_a_wrapper_in_a_limited_group_has_one_local_slot_per_cpu_of_its_quota(
    group: Path,
) -> None:
    """A build in a container limited to 0.3 CPU compiles one job here at a
    time, not one per CPU of the machine (the local slots of distcc's
    --localslots default)."""
    ask = [sys.executable, "-c", "from ccfarm.client.job.run import _cpus; print(_cpus())"]
    pipes = dict(stdout=subprocess.PIPE)
    with started(ask, group, **pipes) as inside:
        out, _ = inside.communicate(timeout=60)
    assert int(out) == 1
    with started(ask, None, **pipes) as outside:
        out, _ = outside.communicate(timeout=60)
    assert int(out) == len(os.sched_getaffinity(0))
