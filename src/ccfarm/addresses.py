"""The well-known ports, and `host[:port]` lists (schedulers), with IPv6 brackets."""

from __future__ import annotations

from collections.abc import Iterable

#: distcc's port: ccfarmd's compile service
DAEMON_PORT = 3632
#: the scheduler's one port (control connections; later the distcc proxy and HTTP)
SCHEDULER_PORT = 3634


def parse_addresses(items: Iterable[str], default_port: int) -> list[tuple[str, int]]:
    """Each item may itself be a comma- or space-separated list."""
    found = []
    for group in items:
        for item in group.replace(" ", ",").split(","):
            if not item:
                continue
            if item.startswith("["):
                host, _, rest = item[1:].partition("]")
                port = rest[1:] if rest.startswith(":") else ""
            elif item.count(":") == 1:
                host, _, port = item.partition(":")
            else:
                host, port = item, ""
            found.append((host, int(port) if port.isdigit() else default_port))
    return found
