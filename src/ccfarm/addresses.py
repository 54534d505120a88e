"""The well-known ports, and `host[:port]` lists (schedulers), with IPv6 brackets."""

from __future__ import annotations

from collections.abc import Iterable

from ccfarm.errors import ConfigError

#: distcc's port: ccfarmd's compile service
DAEMON_PORT = 3632
#: the scheduler's one port (control connections; later the distcc proxy and HTTP)
SCHEDULER_PORT = 3634
#: distccd's --stats-port default: ccfarmd's read-only status page
STATS_PORT = 3633


def parse_port(text: str, where: str = "port") -> int:
    """A TCP port 1-65535 written in ASCII digits, or a ConfigError saying so."""
    if not (text.isascii() and text.isdigit() and len(text) <= 5) or not 1 <= int(text) <= 65535:
        raise ConfigError(f"{where}: the port must be a number from 1 to 65535, not {text!r}")
    return int(text)


def parse_address(item: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare `v6`; a ConfigError
    for an empty host, an unclosed bracket or a port that is no port."""
    port: str | None = None
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ConfigError(f"bad address {item!r}: expected [IPv6] or [IPv6]:port")
        port = rest[1:] if rest else None
    elif item.count(":") == 1:
        host, _, port = item.partition(":")
    else:
        host = item  # a name, an IPv4 address, or a bare IPv6 address (no port)
    if not host:
        raise ConfigError(f"bad address {item!r}: no host")
    return host, default_port if port is None else parse_port(port, f"bad address {item!r}")


def parse_addresses(items: Iterable[str], default_port: int) -> list[tuple[str, int]]:
    """Each item may itself be a comma- or space-separated list; a mistake in
    any entry is a ConfigError naming it."""
    found = []
    for group in items:
        for item in group.replace(" ", ",").split(","):
            if item:
                found.append(parse_address(item, default_port))
    return found
