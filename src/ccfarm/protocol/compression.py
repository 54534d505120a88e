"""LZO1X bodies as distcc sends them: raw stream, no header, no size.

The codec is `lzallright` (MIT, wheels for every platform, so installing
ccfarm needs no compiler). It reads every LZO1X stream, including those of
distcc's own miniLZO (`lzo1x_1_compress`), and writes LZO1X streams that
distcc's `lzo1x_decompress_safe` reads; they are not byte for byte what
LZO1X-1 writes (a slower compressor, smaller output: docs/benchmarks.md).
The uncompressed size is not on the wire, so `decompress` takes a limit.
"""

from __future__ import annotations

from lzallright import InputNotConsumed, LZOCompressor, LZOError

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol._lzo_size import TooLarge, plain_size

__all__ = ["TooLarge", "compress", "decompress"]

_codec = LZOCompressor()
#: LZO1X writes at most 255 plain bytes per stream byte (a long match)
_MAX_RATIO = 255


def compress(data: bytes) -> bytes:
    """An LZO1X stream without header; empty input stays empty (sent as a bare token)."""
    if not data:
        return b""
    return _codec.compress(data)


def decompress(data: bytes, limit: int) -> bytes:
    """Inverse of `compress`; refuses output larger than `limit` bytes (`TooLarge`)."""
    if not data:
        return b""
    if limit <= 0:  # no room at all: any body is too large
        raise TooLarge(f"LZO body expands beyond {limit} bytes")
    # Past the limit the codec would grow its buffer without bound: walk first.
    could_pass = len(data) * _MAX_RATIO > limit
    hint = plain_size(data, limit) if could_pass else min(len(data) * 4, limit)
    try:
        out = _codec.decompress(data, hint)
    except InputNotConsumed as exc:
        raise RemoteProtocolError("corrupt LZO body (bytes after the end marker)") from exc
    except LZOError as exc:
        raise RemoteProtocolError(f"corrupt LZO body ({exc.args[0]})") from exc
    if len(out) > limit:  # not reached: the ratio or the walk bounds it
        raise TooLarge(f"LZO body expands beyond {limit} bytes")
    return out
