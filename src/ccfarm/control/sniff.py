"""What a connection to the scheduler's port is, from its first four bytes."""

from __future__ import annotations

from ccfarm.control.codec import MAGIC

CONTROL = "control"
DISTCC = "distcc"
HTTP = "http"
UNKNOWN = "unknown"

#: the first four bytes of an HTTP request, by method
_HTTP = frozenset({b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC"})


def connection_kind(first: bytes) -> str:
    """CONTROL (`CCFC`), DISTCC (a job: `DIST`), HTTP (a method), or UNKNOWN.

    Any bytes are accepted; fewer than four are UNKNOWN.
    """
    head = bytes(first[:4])
    if len(head) < 4:
        return UNKNOWN
    if head == MAGIC:
        return CONTROL
    if head == b"DIST":
        return DISTCC
    if head in _HTTP:
        return HTTP
    return UNKNOWN
