"""A receive buffer that yields whole tokens (and their payloads)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol.tokens import TOKEN_SIZE, describe, parse_token

#: payloads above this many bytes leave the buffer as soon as they are taken
_COMPACT_AFTER = 1 << 16


class TokenBuffer:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.eof = False

    def feed(self, data: bytes) -> None:
        if self.eof and data:
            raise RemoteProtocolError("data after end of stream")
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def pending(self) -> int:
        return len(self._buf) - self._pos

    def take(
        self, expected: Collection[bytes], max_payload: Mapping[bytes, int]
    ) -> tuple[bytes, int, bytes | None] | None:
        """The next token if it is whole and its name is one of `expected`.

        Tokens named in `max_payload` carry a payload of at most that many
        bytes. Returns None when more bytes are needed. The name and the
        length are checked as soon as 12 bytes are there, before waiting for
        a payload, so garbage and absurd lengths are refused at once.
        """
        if self.pending < TOKEN_SIZE:
            return None
        raw = self._buf[self._pos : self._pos + TOKEN_SIZE]
        name, value = parse_token(raw)
        if name not in expected:
            wanted = "/".join(n.decode() for n in expected)
            raise RemoteProtocolError(f"expected {wanted}, got {describe(bytes(raw))}")
        limit = max_payload.get(name)
        if limit is None:
            self._pos += TOKEN_SIZE
            return name, value, None
        if value > limit:
            raise RemoteProtocolError(f"{name.decode()} body of {value} bytes exceeds the limit")
        end = self._pos + TOKEN_SIZE + value
        if len(self._buf) < end:
            return None
        with memoryview(self._buf) as view:  # one copy of the payload, not two
            payload = bytes(view[self._pos + TOKEN_SIZE : end])
        self._pos = end
        if value > _COMPACT_AFTER:  # a big body: give its buffer back now
            del self._buf[:end]
            self._pos = 0
        return name, value, payload

    def declared(self, max_payload: Mapping[bytes, int]) -> int:
        """The payload length the next token declares, once its 12 bytes are
        here and it is one of `max_payload`'s (0 otherwise): what the
        buffer will hold before `take` can return it."""
        if self.pending < TOKEN_SIZE:
            return 0
        name, value = parse_token(self._buf[self._pos : self._pos + TOKEN_SIZE])
        return value if name in max_payload else 0

    def check_truncated(self, where: str) -> None:
        """Raise if the stream ended while more was expected."""
        if self.eof:
            raise RemoteProtocolError(f"connection closed {where}")
