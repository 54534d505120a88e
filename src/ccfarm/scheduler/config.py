"""The scheduler's settings: each field, and each of the policy's, is a flag
and a TOML key of its name (see `ccfarm.config`)."""

from __future__ import annotations

from dataclasses import dataclass

from ccfarm.addresses import SCHEDULER_PORT
from ccfarm.config import (
    group,
    secret_file_setting,
    setting,
    tls_ca_setting,
    tls_cert_setting,
    tls_key_setting,
    tls_require_setting,
)
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
    tls_cert: str = tls_cert_setting("with --tls-key, the port accepts TLS too")
    tls_key: str = tls_key_setting()
    tls_ca: str = tls_ca_setting("TLS clients must present a certificate it signed")
    tls_require: bool = tls_require_setting("control connections")
    detach: bool = setting(
        False, "run in the background, once listening (logs then go to syslog or --log-file)"
    )
    pid_file: str = setting("", "write the scheduler's pid to FILE while it runs", metavar="FILE")
    log_file: str = setting(
        "", "write the log to FILE (reopened on SIGHUP)", metavar="FILE", shown="stderr"
    )
    idle_timeout: float = setting(
        10.0,
        "seconds a control connection may stay silent while it holds no host, lease"
        " or waiting request",
        metavar="S",
    )
    max_connections: int = setting(
        4096,
        "connections served at once; more are closed at once",
        metavar="N",
        shown="4096, fewer if file descriptors are short",
    )
    max_client_connections: int = setting(
        2048, "connections served at once from one client address", metavar="N"
    )
    max_waiting: int = setting(
        256, "waiting lease requests per connection; more are refused", metavar="N"
    )
    max_client_waiting: int = setting(
        4096, "waiting lease requests from one client address; more are refused", metavar="N"
    )
    log_level: str = setting("info", "least severe message logged", choices=LOG_LEVELS)
