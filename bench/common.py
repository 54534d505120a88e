"""Shared bits of the benchmarks: daemons on loopback, timing, report lines."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ccfarm.demo.farm import (
    LocalDaemon,
    distccd_command,
    scheduler_command,
    start_daemon,
    stop_daemon,
    wait_listening,
)


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


@contextmanager
def ccfarmd(
    address: str,
    jobs: int,
    log_dir: str,
    wrapper: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> Iterator[LocalDaemon]:
    daemon = start_daemon(address, free_port(address), jobs, log_dir, extra=extra, wrapper=wrapper)
    try:
        yield daemon
    finally:
        stop_daemon(daemon)


@contextmanager
def scheduler(address: str, log_dir: str, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """A ccfarm-scheduler on `address` (a free port); yields its HOST:PORT."""
    port = free_port(address)
    log = os.path.join(log_dir, "scheduler.log")
    proc = subprocess.Popen(
        scheduler_command(address, port, ("--log-file", log, *extra)), stdin=subprocess.DEVNULL
    )
    try:
        wait_listening(address, port)
        yield f"{address}:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def distccd(
    address: str, jobs: int, log_dir: str, wrapper: tuple[str, ...] = ()
) -> Iterator[tuple[str, int]]:
    binary = shutil.which("distccd")
    if binary is None:
        sys.exit("distccd is not installed (apt-get install distcc)")
    port = free_port(address)
    log_path = os.path.join(log_dir, f"distccd-{address}.log")
    cmd = [*wrapper, *distccd_command(binary, address, port, jobs)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log)
    try:
        wait_listening(address, port)
        yield address, port
    finally:
        proc.terminate()
        proc.wait(10)


def timed(cmd: Sequence[str], cwd: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


# Emulated hosts of different speeds: cgroup v1 CPU groups (root only).
CGROOT = "/sys/fs/cgroup/cpu"
PERIOD = 100_000


def cgroups_available() -> bool:
    return os.geteuid() == 0 and os.access(CGROOT, os.W_OK)


#: held by a benchmark that makes groups, for as long as it runs (`only_benchmark`)
_LOCK: int | None = None


def only_benchmark() -> None:
    """Stop here if another benchmark that makes groups runs: every script
    names its groups `ccfarm-bench-NAME`, and a second one would requota and
    remove the first one's groups mid-build."""
    global _LOCK
    if _LOCK is not None:
        return
    import fcntl
    import tempfile

    fd = os.open(os.path.join(tempfile.gettempdir(), "ccfarm-bench.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        sys.exit("another ccfarm benchmark is running here; wait for it to end")
    _LOCK = fd


@contextmanager
def cgroup(name: str, cpus: float) -> Iterator[str]:
    """A cgroup v1 CPU group with a quota of `cpus` CPUs; removed afterwards."""
    only_benchmark()
    path = os.path.join(CGROOT, f"ccfarm-bench-{name}")
    os.makedirs(path, exist_ok=True)
    set_quota(path, cpus)
    try:
        yield path
    finally:
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except OSError:  # processes still leaving
                time.sleep(0.1)


#: the groups' weight against everything else on the machine (the most v1
#: allows): each gets its whole quota even while other work runs here
SHARES = 262144


def set_quota(group: str, cpus: float) -> None:
    with open(os.path.join(group, "cpu.cfs_period_us"), "w") as f:
        f.write(str(PERIOD))
    with open(os.path.join(group, "cpu.cfs_quota_us"), "w") as f:
        f.write(str(int(cpus * PERIOD)))
    with open(os.path.join(group, "cpu.shares"), "w") as f:
        f.write(str(SHARES))


def stop_group(group: str, timeout: float = 10.0) -> None:
    """SIGTERM what is left in a client group (only our builds' helpers), wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(os.path.join(group, "cgroup.procs")) as f:
            pids = [int(x) for x in f.read().split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(0.2)


def in_group(group: str, argv: list[str], *also: str) -> list[str]:
    """argv run inside cgroup `group` and the groups `also` of other hierarchies
    (the wrapper moves only itself)."""
    moves = "; ".join(f"echo $$ > {g}/cgroup.procs" for g in (group, *also))
    return ["sh", "-c", f'{moves}; exec "$@"', "sh", *argv]


CPUACCT = "/sys/fs/cgroup/cpuacct"


@contextmanager
def accounting(name: str) -> Iterator[str]:
    """A cgroup v1 cpuacct group (its CPU use counted); emptied and removed afterwards."""
    only_benchmark()
    path = os.path.join(CPUACCT, f"ccfarm-bench-{name}")
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    finally:
        stop_group(path)
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.1)


def usage_seconds(group: str) -> float:
    """CPU seconds a cpuacct group's processes used so far."""
    with open(os.path.join(group, "cpuacct.usage")) as f:
        return int(f.read()) / 1e9
