"""LZO1X bodies as distcc sends them: raw stream, no header, no size.

`compress` gives the same bytes as distcc's own miniLZO (`lzo1x_1_compress`).
The uncompressed size is not on the wire, so `decompress` grows its buffer
up to a caller-given limit. The library is called only by `_lzo1x_decompress`
(LZO1X into a buffer of a known size); the limit lives in `decompress`, which
does not care which library decompresses.
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


class TooLarge(RemoteProtocolError):
    """The body expands beyond the limit it was given."""


class _Overrun(Exception):
    """The output buffer was too small."""


def _lzo1x_decompress(data: bytes, size: int) -> bytes:
    """LZO1X (safe) into a buffer of `size` bytes: `_Overrun` when it does
    not fit, RemoteProtocolError when the stream is corrupt."""
    try:
        return bytes(lzo.decompress(data, False, size))
    except lzo.error as exc:
        # Only "output overrun" (-5) means the buffer was too small.
        if str(exc).endswith(_OUTPUT_OVERRUN):
            raise _Overrun from None
        raise RemoteProtocolError(f"corrupt LZO body ({exc})") from exc


def decompress(data: bytes, limit: int) -> bytes:
    """Inverse of `compress`; refuses output larger than `limit` bytes
    (`TooLarge`), having written at most about 1.33 x `limit` bytes in all."""
    if not data:
        return b""
    if limit <= 0:
        raise TooLarge(f"LZO body expands beyond {limit} bytes")
    size = min(max(len(data) * 8, 4096), limit)
    while True:
        try:
            return _lzo1x_decompress(data, size)
        except _Overrun:
            if size >= limit:
                raise TooLarge(f"LZO body expands beyond {limit} bytes") from None
            size = min(size * 4, limit)
