"""Start and stop `ccfarmd` processes on loopback addresses (127.0.1.N)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field


@dataclass
class LocalDaemon:
    address: str
    port: int
    jobs: int
    log_path: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def spec(self) -> str:
        return f"{self.address}:{self.port}/{self.jobs}"


def wait_listening(address: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def ccfarmd_command(
    address: str,
    port: int,
    jobs: int,
    extra: tuple[str, ...] = (),
    allow: tuple[str, ...] = ("127.0.0.0/8",),
) -> list[str]:
    """This ccfarm's `ccfarmd` in the foreground (tests, benchmarks, the demo)."""
    return [
        sys.executable,
        "-m",
        "ccfarm.daemon.main",
        "--no-detach",
        "--listen",
        address,
        "--port",
        str(port),
        "--jobs",
        str(jobs),
        *(f"--allow={a}" for a in allow),
        *extra,
    ]


def scheduler_command(address: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """This ccfarm's `ccfarm-scheduler` (it runs in the foreground) on ADDRESS:PORT."""
    return [
        sys.executable,
        "-m",
        "ccfarm.scheduler.main",
        "--listen",
        address,
        "--port",
        str(port),
        *extra,
    ]


def start_daemon(
    address: str,
    port: int,
    jobs: int,
    log_dir: str,
    extra: tuple[str, ...] = (),
    wrapper: tuple[str, ...] = (),
    allow: tuple[str, ...] = ("127.0.0.0/8",),
) -> LocalDaemon:
    """Run `ccfarmd` in the foreground of a child process; return when it listens."""
    log_path = os.path.join(log_dir, f"ccfarmd-{address}-{port}.log")
    cmd = [*wrapper, *ccfarmd_command(address, port, jobs, ("--log-file", log_path, *extra), allow)]
    daemon = LocalDaemon(address, port, jobs, log_path)
    daemon.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        wait_listening(address, port)
    except OSError:
        stop_daemon(daemon)
        raise
    return daemon


def stop_daemon(daemon: LocalDaemon, timeout: float = 30.0) -> None:
    if daemon.process is not None:
        stop_process(daemon.process, timeout)


def distccd_command(binary: str, address: str, port: int, jobs: int) -> list[str]:
    """Debian's real distccd in the foreground, logging to stderr (tests, benchmarks)."""
    return [
        binary,
        "--daemon",
        "--no-detach",
        "--log-stderr",
        "--log-level=info",
        "--listen",
        address,
        "--port",
        str(port),
        "--allow",
        "127.0.0.0/8",
        "--jobs",
        str(jobs),
    ]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_scheduler(address: str, port: int, log_dir: str) -> LocalDaemon:
    """Run `ccfarm-scheduler` in the foreground of a child process; return when it listens."""
    log_path = os.path.join(log_dir, f"scheduler-{address}-{port}.log")
    # Every emulated host sees this one machine's load average: a farm on one
    # machine must not withdraw its hosts for the load its own build makes.
    cmd = scheduler_command(
        address, port, ("--log-file", log_path, "--load-low", "1000", "--load-high", "1001")
    )
    scheduler = LocalDaemon(address, port, 0, log_path)
    scheduler.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        wait_listening(address, port)
    except OSError:
        stop_daemon(scheduler)
        raise
    return scheduler


def wait_hosts(scheduler: str, count: int, timeout: float = 30.0) -> None:
    """Until the scheduler at `scheduler` ("address:port") lists `count` hosts."""
    import json

    deadline = time.monotonic() + timeout
    argv = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", scheduler, "--json", "hosts"]
    while True:
        out = subprocess.run(argv, capture_output=True, check=False)
        try:
            hosts = json.loads(out.stdout) if out.returncode == 0 else []
        except ValueError:
            hosts = []
        if len(hosts) >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{scheduler} lists {len(hosts)} of {count} hosts")
        time.sleep(0.2)
