"""Which client addresses may use the daemon (`--allow CIDR`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ccfarm.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AccessList:
    """Allowed networks. Empty allows nobody (distccd 3.4 allowed everybody)."""

    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, specs: Iterable[str]) -> AccessList:
        networks = []
        for spec in specs:
            try:
                networks.append(ipaddress.ip_network(spec.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"bad --allow value {spec!r}: {exc}") from None
        return cls(tuple(networks))

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)
