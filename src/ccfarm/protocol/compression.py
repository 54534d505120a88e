"""LZO1X bodies as distcc sends them: raw stream, no header, no size.

The codec is `lzallright` (MIT, wheels for every platform, so installing
ccfarm needs no compiler). It reads every LZO1X stream, including those of
distcc's own miniLZO (`lzo1x_1_compress`), and writes LZO1X streams that
distcc's `lzo1x_decompress_safe` reads; they are not byte for byte what
LZO1X-1 writes (a slower compressor, smaller output: docs/benchmarks.md).
The uncompressed size is not on the wire, so `decompress` takes a limit.

That compressor runs at about 17 MB/s (a 120 KB preprocessed C file: 7 ms
of CPU), slower than any wired network moves the bytes. So a body may also
go out *stored* (`store`): one LZO1X literal run and the end marker, which
every LZO1X decoder (distcc's included) reads like any other stream, written
at memory speed for 0.4 % more bytes than the plain ones. `is_stored` tells
the two apart, so that a daemon answers a client the way it asked.
"""

from __future__ import annotations

from collections.abc import Callable

from lzallright import InputNotConsumed, LZOCompressor, LZOError

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol._lzo_size import TooLarge, plain_size

__all__ = ["TooLarge", "compress", "decompress", "is_stored", "packer", "store"]

_codec = LZOCompressor()
#: LZO1X writes at most 255 plain bytes per stream byte (a long match)
_MAX_RATIO = 255


#: the LZO1X end of stream: a long-distance match of distance 0
_END = b"\x11\x00\x00"
#: a first byte above 17 is a literal run of (byte - 17) bytes, up to 238
_SHORT_RUN = 255 - 17


def compress(data: bytes) -> bytes:
    """An LZO1X stream without header; empty input stays empty (sent as a bare token)."""
    if not data:
        return b""
    return _codec.compress(data)


def packer(compressed: bool, *, stored: bool = False) -> Callable[[bytes], bytes]:
    """How bodies go on the wire: as they are (a version without
    compression), stored or packed."""
    if not compressed:
        return bytes
    return store if stored else compress


def store(data: bytes) -> bytes:
    """`data` as a valid LZO1X stream that is one literal run, not packed.

    Up to 238 bytes: the first byte is 17 + the length. Longer: a literal
    run instruction, byte 0 then the length less 18 in base 255, as zero
    bytes worth 255 each and a last byte 1-255.
    """
    n = len(data)
    if not n:
        return b""
    if n <= _SHORT_RUN:
        return bytes((17 + n,)) + data + _END
    zeros, last = divmod(n - 18, 255)
    if last == 0:  # (a zero byte would mean "255 more")
        zeros, last = zeros - 1, 255
    return b"\x00" + b"\x00" * zeros + bytes((last,)) + data + _END


def is_stored(data: bytes) -> bool:
    """Is `data` exactly what `store` writes for some input?"""
    if len(data) < 5 or not data.endswith(_END):
        return False
    first = data[0]
    if first > 17:
        return first - 17 == len(data) - 1 - len(_END)
    if first != 0:
        return False
    i = 1
    while i < len(data) and data[i] == 0:
        i += 1
    if i >= len(data):
        return False
    n = 18 + 255 * (i - 1) + data[i]
    return n > _SHORT_RUN and len(data) == i + 1 + n + len(_END)


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
