"""The plain size of an LZO1X stream, found without decompressing it.

`compression.decompress` asks for it only when a body could expand beyond
its limit (LZO1X expands at most 255-fold): the decompressor we use grows
its buffer without bound, so the size is checked here first. The walk reads
the instructions and skips literals and zero-byte length extensions with
C-level calls; it stops as soon as the plain size passes the limit.
"""

from __future__ import annotations

import re

from ccfarm.errors import RemoteProtocolError

_NONZERO = re.compile(rb"[^\0]")


class TooLarge(RemoteProtocolError):
    """The body expands beyond the limit it was given."""


def _corrupt(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"corrupt LZO body ({why})")


def _long_length(data: bytes, at: int, base: int) -> tuple[int, int]:
    """A length continued in bytes: zero bytes add 255 each, the first other byte ends it."""
    found = _NONZERO.search(data, at)
    if found is None:
        raise _corrupt("length runs past the end")
    end = found.start()
    return base + 255 * (end - at) + data[end], end + 1


def plain_size(data: bytes, limit: int) -> int:
    """The number of bytes `data` decompresses to; RemoteProtocolError past `limit`.

    Structure errors (a truncated instruction, a copy from before the start,
    no end marker, bytes after it) are refused as corrupt.
    """
    size = len(data)
    at = 0
    out = 0
    state = 0  # literals the previous instruction copied: 0, 1-3, or 4 (a literal run)
    if size and data[0] >= 18:
        run = data[0] - 17
        at = 1 + run
        out = run
        state = 4 if run >= 4 else run
        if out > limit:
            raise TooLarge(f"LZO body expands beyond {limit} bytes")
    while True:
        if at >= size:
            raise _corrupt("no end marker")
        op = data[at]
        at += 1
        if op >= 64:  # M2: 3..8 bytes from at most 2 KiB back
            if at >= size:
                raise _corrupt("truncated instruction")
            distance = (data[at] << 3) + ((op >> 2) & 7) + 1
            at += 1
            length = (op >> 5) + 1
            extra = op & 3
        elif op >= 32:  # M3: from at most 16 KiB back
            length = (op & 31) + 2
            if length == 2:
                length, at = _long_length(data, at, 33)
            if at + 2 > size:
                raise _corrupt("truncated instruction")
            word = data[at] | (data[at + 1] << 8)
            at += 2
            distance = (word >> 2) + 1
            extra = word & 3
        elif op >= 16:  # M4: from 16..48 KiB back; distance 16384 is the end marker
            length = (op & 7) + 2
            if length == 2:
                length, at = _long_length(data, at, 9)
            if at + 2 > size:
                raise _corrupt("truncated instruction")
            word = data[at] | (data[at + 1] << 8)
            at += 2
            distance = ((op & 8) << 11) + (word >> 2)
            if distance == 0:
                if at != size:
                    raise _corrupt("bytes after the end marker")
                if length != 3:
                    raise _corrupt("malformed end marker")
                return out
            distance += 16384
            extra = word & 3
        elif state == 0:  # a literal run of 4 or more
            run = op + 3
            if run == 3:
                run, at = _long_length(data, at, 18)
            at += run
            out += run
            if at > size:
                raise _corrupt("literals run past the end")
            if out > limit:
                raise TooLarge(f"LZO body expands beyond {limit} bytes")
            state = 4
            continue
        else:  # M1: 2 bytes (after 1-3 literals) or 3 bytes (after a run) from close by
            if at >= size:
                raise _corrupt("truncated instruction")
            distance = (op >> 2) + (data[at] << 2) + (1 if state != 4 else 2049)
            at += 1
            length = 2 if state != 4 else 3
            extra = op & 3
        if distance > out:
            raise _corrupt("copy from before the start")
        out += length + extra
        at += extra
        if at > size:
            raise _corrupt("literals run past the end")
        if out > limit:
            raise TooLarge(f"LZO body expands beyond {limit} bytes")
        state = extra
