"""The scheduler's settings (each field is also a flag and a TOML key)."""

from __future__ import annotations

from dataclasses import dataclass

from ccfarm.addresses import SCHEDULER_PORT as DEFAULT_PORT
from ccfarm.scheduler.policy import Policy

_P = Policy  # the policy's defaults live in one place: its class attributes


@dataclass(frozen=True)
class SchedulerConfig:
    port: int = DEFAULT_PORT
    listen: str = "0.0.0.0"
    hosts_info: str = ""  # DMUCS hosts-info file: speeds and CPUs pinned by the operator
    # the Policy's knobs (same names; see scheduler/policy.py)
    tier_ratio: float = _P.tier_ratio
    load_low: float = _P.load_low
    load_high: float = _P.load_high
    desktop_slots: int = _P.desktop_slots
    host_timeout: float = _P.host_timeout
    lease_timeout: float = _P.lease_timeout
    max_wait: float = _P.max_wait
    prefer_fast: bool = _P.prefer_fast
    patience: float = _P.patience
    express: bool = _P.express
    express_min_cost: float = _P.express_min_cost
    usage_half_life: float = _P.usage_half_life
    io_timeout: float = 60.0
    log_file: str = ""
    log_level: str = "info"
