"""distcc token framing: 4 ASCII name bytes + 8 lowercase hex digits.

Some tokens carry a payload: then the value is the payload length and the
bytes follow at once. Pure code: bytes in, bytes out.
"""

from __future__ import annotations

from ccfarm.errors import LocalProtocolError, RemoteProtocolError

TOKEN_SIZE = 12
_HEX = frozenset(b"0123456789abcdefABCDEF")


def encode_token(name: bytes, value: int) -> bytes:
    """The 12-byte token `name` + `value` as 8 lowercase hex digits."""
    if len(name) != 4:
        raise LocalProtocolError(f"token name must be 4 bytes: {name!r}")
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"token value out of range: {value}")
    return name + b"%08x" % value


def encode_blob(name: bytes, payload: bytes) -> bytes:
    """A token whose value is the payload length, followed by the payload."""
    return encode_token(name, len(payload)) + payload


def parse_token(raw: bytes | bytearray | memoryview) -> tuple[bytes, int]:
    """Split 12 raw bytes into (name, value).

    Readers are strict: exactly 8 hex digits (either case, as distcc's
    strtoul accepts; writers always send lowercase).
    """
    data = bytes(raw)
    if len(data) != TOKEN_SIZE:
        raise RemoteProtocolError(f"short token: {data!r}")
    digits = data[4:]
    if not all(c in _HEX for c in digits):
        raise RemoteProtocolError(f"bad token value in {_printable(data)}")
    return data[:4], int(digits, 16)


def _printable(data: bytes) -> str:
    return "".join(chr(c) if 32 <= c < 127 else "." for c in data[:64])


def describe(data: bytes) -> str:
    """A short printable rendering of raw bytes for error messages and logs."""
    return repr(_printable(data))
