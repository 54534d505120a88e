"""Blocking TCP connect for the wrapper, on the C `_socket` module.

`import socket` costs the wrapper about 4 ms per job (it builds enums of
every constant); the few calls a job needs exist on `_socket` directly.
"""

from __future__ import annotations

import _socket


def connect(host: str, port: int, timeout: float) -> _socket.socket:
    """A connected TCP socket (TCP_NODELAY, `timeout` on every operation)."""
    error: OSError = OSError(f"no address for {host}")
    # Hosts go to the C functions as bytes: a str would be IDNA-encoded, and
    # the idna codec imports `re` (milliseconds per job).
    name: str | bytes = host.encode() if host.isascii() else host
    found = _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)
    for family, kind, proto, _, address in found:
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect((str(address[0]).encode(), *address[1:]))
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error
