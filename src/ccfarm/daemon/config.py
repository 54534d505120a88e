"""The daemon's settings (each field is also a flag and a TOML key)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ccfarm.addresses import DAEMON_PORT as DEFAULT_PORT


@dataclass(frozen=True)
class DaemonConfig:
    port: int = DEFAULT_PORT
    listen: str = "0.0.0.0"
    allow: tuple[str, ...] = ()
    jobs: int = os.cpu_count() or 1
    #: connections that may wait for a free job slot before new ones are refused
    queue: int = 0  # 0 = 4 x jobs
    nice: int = 0
    job_lifetime: float = 0.0  # seconds; 0 = unlimited
    io_timeout: float = 300.0
    drain_timeout: float = 600.0
    compilers: tuple[str, ...] = ()  # empty = discover the defaults
    allow_compiler: tuple[str, ...] = ()  # added to the discovered defaults
    compiler_path: str = ""  # empty = $DISTCCD_PATH or $PATH
    tmpdir: str = ""
    log_file: str = ""
    log_stderr: bool = False
    log_level: str = "info"
    pid_file: str = ""
    detach: bool = True
    #: scheduler(s) to register with, "host[:port]" (repeatable)
    scheduler: tuple[str, ...] = ()
    #: address the scheduler hands out for this host (default: the address
    #: this host uses to reach the scheduler)
    advertise: str = ""
    #: pin the speed score (bigger is faster); 0 = measure at start
    speed: float = 0.0
    heartbeat: float = 2.0
    #: where "last desktop input" comes from: none, file:PATH, command:CMD
    desktop_activity: str = "none"
    #: input within this many seconds means the desktop is in use
    desktop_idle: float = 300.0

    @property
    def queue_limit(self) -> int:
        return self.queue or 4 * self.jobs
