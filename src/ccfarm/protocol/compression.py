"""LZO1X bodies as distcc sends them: raw stream, no header, no size.

`compress` gives the same bytes as distcc's own miniLZO (`lzo1x_1_compress`).
The uncompressed size is not on the wire, so `decompress` grows its buffer
up to a caller-given limit.
"""

from __future__ import annotations

import lzo

from ccfarm.errors import RemoteProtocolError

_OUTPUT_OVERRUN = "-5"  # LZO_E_OUTPUT_OVERRUN


def compress(data: bytes) -> bytes:
    """LZO1X-1 without header; empty input stays empty (sent as a bare token)."""
    if not data:
        return b""
    return bytes(lzo.compress(data, 1, False))


def decompress(data: bytes, limit: int) -> bytes:
    """Inverse of `compress`; refuses output larger than `limit` bytes."""
    if not data:
        return b""
    size = min(max(len(data) * 8, 4096), limit)
    while True:
        try:
            return bytes(lzo.decompress(data, False, size))
        except lzo.error as exc:
            # Only "output overrun" (-5) means the buffer was too small.
            if not str(exc).endswith(_OUTPUT_OVERRUN):
                raise RemoteProtocolError(f"corrupt LZO body ({exc})") from exc
            if size >= limit:
                raise RemoteProtocolError(f"LZO body expands beyond {limit} bytes") from exc
            size = min(size * 4, limit)
