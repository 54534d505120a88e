"""Control messages in distcc's token framing.

A control connection starts with the token `CCFC<version>` (so the
scheduler's single port tells it from a distcc job, `DIST...`, and from
HTTP, `GET `/`POST`). Then each message is one token: a four-letter kind
and the length of its payload. The payload is UTF-8 text: records of
`key=value` lines, records separated by an empty line. Keys may repeat
(a host lists several compilers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ccfarm._record import record
from ccfarm.errors import LocalProtocolError, RemoteProtocolError
from ccfarm.protocol.tokens import TOKEN_SIZE, encode_blob, encode_token, parse_token

MAGIC = b"CCFC"
VERSION = 1
MAX_MESSAGE = 16 << 20
Fields = Sequence[tuple[str, str]]


@record
class Message:
    kind: str
    records: tuple[tuple[tuple[str, str], ...], ...]

    def first(self) -> dict[str, str]:
        """The first record as a dict (later values of a repeated key win)."""
        return dict(self.records[0]) if self.records else {}

    def values(self, key: str) -> list[str]:
        """Every value of `key` in the first record, in order."""
        return [v for k, v in (self.records[0] if self.records else ()) if k == key]


def hello(version: int = VERSION) -> bytes:
    return encode_token(MAGIC, version)


def _record_text(fields: Mapping[str, object] | Fields) -> str:
    items = fields.items() if isinstance(fields, Mapping) else fields
    lines = []
    for key, value in items:
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            text = str(v)
            if "\n" in text or "=" in key or "\n" in key or not key:
                raise LocalProtocolError(f"cannot encode {key!r}={text!r}")
            lines.append(f"{key}={text}")
    return "\n".join(lines)


def encode(kind: str, *records: Mapping[str, object] | Fields) -> bytes:
    name = kind.encode("ascii")
    payload = "\n\n".join(_record_text(r) for r in records).encode()
    return encode_blob(name, payload)


def _decode_payload(payload: bytes) -> tuple[tuple[tuple[str, str], ...], ...]:
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        raise RemoteProtocolError("control message is not UTF-8") from None
    records = []
    for chunk in text.split("\n\n") if text else []:
        fields = []
        for line in chunk.split("\n"):
            key, sep, value = line.partition("=")
            if not sep or not key:
                raise RemoteProtocolError(f"bad control line {line[:60]!r}")
            fields.append((key, value))
        records.append(tuple(fields))
    return tuple(records)


class MessageParser:
    """Bytes in, `Message`s out. `expect_hello` for the accepting side."""

    def __init__(self, *, expect_hello: bool, max_message: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._need_hello = expect_hello
        self.version = 0 if expect_hello else VERSION
        self.max_message = max_message
        self.eof = False

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def receive_eof(self) -> None:
        self.eof = True

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message (part of one)."""
        return len(self._buf)

    def next_message(self) -> Message | None:
        """The next whole message, or None when more bytes are needed.

        Raises RemoteProtocolError on bad input, and on EOF in mid-message.
        """
        if len(self._buf) < TOKEN_SIZE:
            if self.eof and self._buf:
                raise RemoteProtocolError("control connection closed mid-message")
            return None
        name, value = parse_token(bytes(self._buf[:TOKEN_SIZE]))
        if self._need_hello:
            if name != MAGIC:
                raise RemoteProtocolError("not a control connection")
            if value != VERSION:
                raise RemoteProtocolError(f"unsupported control version {value}")
            del self._buf[:TOKEN_SIZE]
            self._need_hello = False
            self.version = value
            return self.next_message()
        if not name.isalpha() or not name.isupper():
            raise RemoteProtocolError(f"bad control message kind {name!r}")
        if value > self.max_message:
            raise RemoteProtocolError(f"control message of {value} bytes is too large")
        end = TOKEN_SIZE + value
        if len(self._buf) < end:
            if self.eof:
                raise RemoteProtocolError("control connection closed mid-message")
            return None
        payload = bytes(self._buf[TOKEN_SIZE:end])
        del self._buf[:end]
        return Message(name.decode(), _decode_payload(payload))

    def messages(self) -> Iterable[Message]:
        while (message := self.next_message()) is not None:
            yield message
