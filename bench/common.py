"""Shared bits of the benchmarks: daemons on loopback, timing, report lines."""

from __future__ import annotations

import os
import shutil
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
