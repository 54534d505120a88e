"""The daemon's settings: each field is a flag and a TOML key of its name,
with distccd's spellings where it has one (see `ccfarm.config`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ccfarm.addresses import DAEMON_PORT
from ccfarm.config import setting

LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical")


@dataclass(frozen=True)
class DaemonConfig:
    """What `ccfarmd` is told by flags and file; read by its service and agent."""

    port: int = setting(DAEMON_PORT, "TCP port", flags=("-p", "--port"))
    listen: str = setting("0.0.0.0", "address to bind", metavar="ADDR", shown="0.0.0.0, all")
    allow: tuple[str, ...] = setting(
        (),
        "allowed client network; none given = nobody allowed",
        flags=("-a", "--allow"),
        metavar="CIDR",
    )
    jobs: int = setting(
        os.cpu_count() or 1, "compilers run at once", flags=("-j", "--jobs"), shown="CPUs"
    )
    queue: int = setting(
        0,
        "connections that may wait for a free job slot before new ones are refused",
        shown="0 = 4 x jobs",
    )
    nice: int = setting(0, "niceness increment for compilers", flags=("-N", "--nice"))
    job_lifetime: float = setting(
        0.0, "kill compiles older than S seconds", metavar="S", shown="0 = unlimited"
    )
    io_timeout: float = setting(
        60.0, "longest wait for each read or write of a job, in seconds", metavar="S"
    )
    idle_timeout: float = setting(
        10.0, "seconds a new connection may take to start its request", metavar="S"
    )
    request_timeout: float = setting(
        300.0, "seconds a whole request may take to arrive", metavar="S"
    )
    max_connections: int = setting(
        512,
        "connections served at once; more are closed at once",
        metavar="N",
        shown="512, fewer if file descriptors are short",
    )
    max_client_connections: int = setting(
        64, "connections served at once from one client address", metavar="N"
    )
    body_memory: int = setting(
        256,
        "MiB of request bodies held in memory at once, all connections together"
        " (the others wait for room)",
        metavar="MIB",
    )
    max_body: int = setting(
        128, "MiB: the largest request body, on the wire and decompressed", metavar="MIB"
    )
    drain_timeout: float = setting(
        600.0, "at shutdown, seconds the running jobs get to finish", metavar="S"
    )
    compilers: tuple[str, ...] = setting(
        (),
        "allow exactly these compiler names",
        flags=("--compiler",),
        metavar="NAME",
        shown="the ones found on the compiler path",
    )
    allow_compiler: tuple[str, ...] = setting(
        (), "allow this compiler name in addition to the defaults", metavar="NAME"
    )
    compiler_path: str = setting(
        "",
        "colon-separated directories searched for compilers",
        metavar="DIRS",
        shown="$DISTCCD_PATH or $PATH",
    )
    tmpdir: str = setting("", "where job directories are made", shown="$TMPDIR")
    scheduler: tuple[str, ...] = setting(
        (), "register with this ccfarm-scheduler", metavar="HOST[:PORT]"
    )
    advertise: str = setting(
        "",
        "address the scheduler hands out for this host",
        metavar="ADDR",
        shown="the address this host uses to reach the scheduler",
    )
    speed: float = setting(
        0.0, "pin the speed score (bigger is faster)", shown="0 = measure at start"
    )
    heartbeat: float = setting(2.0, "seconds between reports to the scheduler", metavar="S")
    desktop_activity: str = setting(
        "none",
        "where the time of the last desktop input comes from:"
        " none, file:PATH (its mtime), command:CMD",
        metavar="SPEC",
    )
    desktop_idle: float = setting(
        300.0, "input within S seconds means the desktop is in use", metavar="S"
    )
    detach: bool = setting(True, "run in the background (--no-detach: stay in the foreground)")
    log_file: str = setting("", "write the log to FILE", metavar="FILE", shown="stderr")
    log_stderr: bool = setting(False, "log to stderr as well as to --log-file")
    log_level: str = setting("info", "least severe message logged", choices=LOG_LEVELS)
    pid_file: str = setting(
        "",
        "write the daemon's pid to FILE while it runs",
        flags=("-P", "--pid-file"),
        metavar="FILE",
    )

    @property
    def queue_limit(self) -> int:
        return self.queue or 4 * self.jobs
