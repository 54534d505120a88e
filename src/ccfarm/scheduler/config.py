"""The scheduler's settings (each field is also a flag and a TOML key)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 3634


@dataclass(frozen=True)
class SchedulerConfig:
    port: int = DEFAULT_PORT
    listen: str = "0.0.0.0"
    hosts_info: str = ""  # DMUCS hosts-info file: speeds and CPUs pinned by the operator
    tier_ratio: float = 1.25
    load_low: float = 0.3
    load_high: float = 1.0
    desktop_slots: int = 0
    host_timeout: float = 15.0
    lease_timeout: float = 600.0
    max_wait: float = 60.0
    prefer_fast: bool = True
    patience: float = 5.0
    io_timeout: float = 60.0
    log_file: str = ""
    log_level: str = "info"
