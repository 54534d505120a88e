"""DMUCS's hosts-info file, so a DMUCS site can move over unchanged.

One line per host: `name cpus power` (power index >= 1, bigger is faster);
`#` starts a comment. The scheduler uses the power as the host's speed and
the CPU count as its slots, overriding what the host measured.
"""

from __future__ import annotations

from ccfarm._record import record
from ccfarm.errors import ConfigError


@record
class HostInfo:
    name: str
    cpus: int
    power: float


def parse_hosts_info(text: str) -> dict[str, HostInfo]:
    hosts: dict[str, HostInfo] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ConfigError(f"hosts-info line {number}: expected 'name cpus power'")
        name, cpus_text, power_text = parts
        try:
            cpus, power = int(cpus_text), float(power_text)
        except ValueError:
            raise ConfigError(f"hosts-info line {number}: cpus and power must be numbers") from None
        if cpus < 1 or power < 1:
            raise ConfigError(f"hosts-info line {number}: cpus and power must be >= 1")
        hosts[name] = HostInfo(name, cpus, power)
    return hosts
