"""The scheduler's settings: each field, and each of the policy's, is a flag
and a TOML key of its name (see `ccfarm.config`)."""

from __future__ import annotations

from dataclasses import dataclass

from ccfarm.addresses import SCHEDULER_PORT
from ccfarm.config import group, secret_file_setting, setting
from ccfarm.scheduler.policy import Policy

LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class SchedulerConfig:
    """What `ccfarm-scheduler` is told: its shell's settings and the core's policy."""

    port: int = setting(SCHEDULER_PORT, "TCP port")
    listen: str = setting("0.0.0.0", "address to bind", metavar="ADDR", shown="0.0.0.0, all")
    #: speeds and CPUs pinned by the operator
    hosts_info: str = setting(
        "", "DMUCS hosts-info file (name cpus power) pinning speeds", metavar="FILE"
    )
    policy: Policy = group(Policy, "scheduling policy")
    io_timeout: float = setting(60.0, "longest network wait, in seconds", metavar="S")
    secret_file: str = secret_file_setting()
    detach: bool = setting(
        False, "run in the background, once listening (logs then go to syslog or --log-file)"
    )
    pid_file: str = setting("", "write the scheduler's pid to FILE while it runs", metavar="FILE")
    log_file: str = setting(
        "", "write the log to FILE (reopened on SIGHUP)", metavar="FILE", shown="stderr"
    )
    log_level: str = setting("info", "least severe message logged", choices=LOG_LEVELS)
