"""The request half of a job connection (client -> daemon), sans-IO.

Grammar, by version (one token per step; `*n` = repeated by the count):

    1, 2:        DIST ARGC ARGV*n DOTI
    3:           DIST CDIR ARGC ARGV*n NFIL (NAME (FILE|LINK))*n
    ccfarm:      DIST ENVC ENVV*n CDIR ARGC ARGV*n NFIL (NAME (FILE|LINK))*n
    ccfarm-cpp:  DIST ENVC ENVV*n ARGC ARGV*n DOTI

`RequestParser` is the daemon's side: bytes in, events out. `encode_request`
is the client's side: events in, bytes out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ccfarm.errors import LocalProtocolError, RemoteProtocolError
from ccfarm.protocol import compression
from ccfarm.protocol._buffer import TokenBuffer
from ccfarm.protocol.events import (
    NEED_DATA,
    VERSIONS,
    FileEntry,
    Inflate,
    JobHeader,
    LinkEntry,
    Need,
    PreprocessedSource,
    RequestComplete,
    RequestEvent,
    compressed,
    sends_env,
    sends_files,
)
from ccfarm.protocol.limits import Limits
from ccfarm.protocol.tokens import encode_blob, encode_token


class _State:
    """Parser states (plain strings: `enum` is slow to import for the wrapper)."""

    DIST = "DIST"
    ENVC = "ENVC"
    ENVV = "ENVV"
    CDIR = "CDIR"
    ARGC = "ARGC"
    ARGV = "ARGV"
    DOTI = "DOTI"
    NFIL = "NFIL"
    NAME = "NAME"
    BODY = "FILE|LINK"
    COMPLETE = "complete"


#: state -> token names accepted
_GRAMMAR: dict[str, frozenset[bytes]] = {
    _State.DIST: frozenset({b"DIST"}),
    _State.ENVC: frozenset({b"ENVC"}),
    _State.ENVV: frozenset({b"ENVV"}),
    _State.CDIR: frozenset({b"CDIR"}),
    _State.ARGC: frozenset({b"ARGC"}),
    _State.ARGV: frozenset({b"ARGV"}),
    _State.DOTI: frozenset({b"DOTI"}),
    _State.NFIL: frozenset({b"NFIL"}),
    _State.NAME: frozenset({b"NAME"}),
    _State.BODY: frozenset({b"FILE", b"LINK"}),
}


def _payload_limits(limits: Limits) -> dict[bytes, int]:
    """Tokens that carry a payload -> its largest length on the wire.

    Checked on the 12-byte token, before the payload arrives: an ARGV of
    1 GiB must be refused at once, not buffered and then refused.
    """
    return {
        b"ENVV": limits.max_arg_bytes,
        b"CDIR": limits.max_name_bytes,
        b"ARGV": limits.max_arg_bytes,
        b"DOTI": limits.max_body,
        b"NAME": limits.max_name_bytes,
        b"FILE": limits.max_body,
        b"LINK": limits.max_name_bytes,
    }


class RequestParser:
    """Parse one job request; call `next_event` until RequestComplete.

    With `inline_inflate`, compressed bodies are decompressed inside
    `next_event` only while their output fits in that many bytes; a bigger
    one comes out as an `Inflate` event, which the caller decompresses
    where it does not block (a thread) and returns with `inflated`.
    """

    def __init__(self, limits: Limits | None = None, inline_inflate: int | None = None) -> None:
        self.limits = limits or Limits()
        self.inline_inflate = inline_inflate
        self._inflating: Callable[[bytes], PreprocessedSource | FileEntry] | None = None
        self._max_payload = _payload_limits(self.limits)
        self._buf = TokenBuffer()
        self._state = _State.DIST
        self._version = 0
        self._remaining = 0
        self._env: list[bytes] = []
        self._cwd: bytes | None = None
        self._argv: list[bytes] = []
        self._name = b""
        self._file_bytes = 0
        self._reported_complete = False
        #: all compressed bodies so far came stored (None: none came yet)
        self._stored: bool | None = None
        self._handlers: dict[
            str, Callable[[bytes, int, bytes | None], RequestEvent | Inflate | None]
        ] = {
            _State.DIST: self._on_dist,
            _State.ENVC: self._on_envc,
            _State.ENVV: self._on_envv,
            _State.CDIR: self._on_cdir,
            _State.ARGC: self._on_argc,
            _State.ARGV: self._on_argv,
            _State.DOTI: self._on_doti,
            _State.NFIL: self._on_nfil,
            _State.NAME: self._on_name,
            _State.BODY: self._on_body,
        }

    @property
    def version(self) -> int:
        """The protocol version announced by DIST (0 before it arrived)."""
        return self._version

    @property
    def complete(self) -> bool:
        return self._state == _State.COMPLETE

    def receive_data(self, data: bytes) -> None:
        self._buf.feed(data)

    def receive_eof(self) -> None:
        self._buf.eof = True

    def close(self) -> None:
        """Drop whatever is buffered: the connection is over. (A big half-sent
        body is then freed at once, even while a traceback keeps the caller's
        frame, and with it this parser, until the cycle collector runs.)"""
        self._buf = TokenBuffer()
        self._inflating = None

    @property
    def declared(self) -> int:
        """The payload length of the token under way once its header is in
        (0 before): the bytes this parser will hold before its next event."""
        if self._state == _State.COMPLETE:
            return 0
        return self._buf.declared(self._max_payload)

    @property
    def pending(self) -> int:
        """Bytes received and not yet returned as events."""
        return self._buf.pending

    def next_event(self) -> RequestEvent | Inflate | Need:
        if self._inflating is not None:
            raise LocalProtocolError("an Inflate event is waiting for `inflated`")
        while self._state != _State.COMPLETE:
            token = self._buf.take(_GRAMMAR[self._state], self._max_payload)
            if token is None:
                self._buf.check_truncated(f"while waiting for {self._state}")
                return NEED_DATA
            event = self._handlers[self._state](*token)
            if event is not None:
                return event
        if not self._reported_complete:
            self._reported_complete = True
            return RequestComplete(stored=self._stored is True)
        return NEED_DATA

    # -- one handler per state -------------------------------------------------

    def _on_dist(self, _name: bytes, value: int, _payload: bytes | None) -> None:
        if value not in VERSIONS:
            raise RemoteProtocolError(f"unsupported protocol version {value}")
        self._version = value
        self._state = _State.ENVC if sends_env(value) else self._after_env()

    def _after_env(self) -> str:
        return _State.CDIR if sends_files(self._version) else _State.ARGC

    def _on_envc(self, _name: bytes, value: int, _payload: bytes | None) -> None:
        if value > self.limits.max_env:
            raise RemoteProtocolError(f"too many environment entries: {value}")
        self._remaining = value
        self._state = _State.ENVV if value else self._after_env()

    def _on_envv(self, _name: bytes, _value: int, payload: bytes | None) -> None:
        assert payload is not None
        if b"=" not in payload or len(payload) > self.limits.max_arg_bytes:
            raise RemoteProtocolError("malformed environment entry")
        self._env.append(payload)
        self._remaining -= 1
        if not self._remaining:
            self._state = self._after_env()

    def _on_cdir(self, _name: bytes, _value: int, payload: bytes | None) -> None:
        assert payload is not None
        if not payload.startswith(b"/") or len(payload) > self.limits.max_name_bytes:
            raise RemoteProtocolError("CDIR must be an absolute path")
        if b"\0" in payload:
            raise RemoteProtocolError("CDIR contains a NUL byte")
        self._cwd = payload
        self._state = _State.ARGC

    def _on_argc(self, _name: bytes, value: int, _payload: bytes | None) -> None:
        if not 1 <= value <= self.limits.max_args:
            raise RemoteProtocolError(f"argument count {value} out of range")
        self._remaining = value
        self._state = _State.ARGV

    def _on_argv(self, _name: bytes, _value: int, payload: bytes | None) -> JobHeader | None:
        assert payload is not None
        if len(payload) > self.limits.max_arg_bytes:
            raise RemoteProtocolError("argument too long")
        self._argv.append(payload)
        self._remaining -= 1
        if self._remaining:
            return None
        self._state = _State.NFIL if sends_files(self._version) else _State.DOTI
        return JobHeader(self._version, tuple(self._argv), self._cwd, tuple(self._env))

    def _on_doti(
        self, _name: bytes, _value: int, payload: bytes | None
    ) -> PreprocessedSource | FileEntry | Inflate:
        assert payload is not None
        self._state = _State.COMPLETE
        return self._body(payload, self.limits.max_plain_body, PreprocessedSource)

    def _on_nfil(self, _name: bytes, value: int, _payload: bytes | None) -> None:
        if value > self.limits.max_files:
            raise RemoteProtocolError(f"too many files: {value}")
        self._remaining = value
        self._state = _State.NAME if value else _State.COMPLETE

    def _on_name(self, _name: bytes, _value: int, payload: bytes | None) -> None:
        assert payload is not None
        if not payload.startswith(b"/") or len(payload) > self.limits.max_name_bytes:
            raise RemoteProtocolError("NAME must be an absolute path")
        if b"\0" in payload:
            raise RemoteProtocolError("NAME contains a NUL byte")
        self._name = payload
        self._state = _State.BODY

    def _on_body(
        self, name: bytes, _value: int, payload: bytes | None
    ) -> PreprocessedSource | FileEntry | LinkEntry | Inflate:
        assert payload is not None
        self._remaining -= 1
        self._state = _State.NAME if self._remaining else _State.COMPLETE
        if name == b"LINK":
            if not payload or b"\0" in payload or len(payload) > self.limits.max_name_bytes:
                raise RemoteProtocolError("malformed LINK target")
            return LinkEntry(self._name, payload)
        left = self.limits.max_request_bytes - self._file_bytes
        return self._body(payload, min(self.limits.max_plain_body, left), self._file_entry)

    def _file_entry(self, data: bytes) -> FileEntry:
        self._file_bytes += len(data)
        if self._file_bytes > self.limits.max_request_bytes:
            raise RemoteProtocolError("request files exceed the size limit")
        return FileEntry(self._name, data)

    def _body(
        self, payload: bytes, limit: int, make: Callable[[bytes], PreprocessedSource | FileEntry]
    ) -> PreprocessedSource | FileEntry | Inflate:
        """`make(plain body)`, or an `Inflate` of it (see `inline_inflate`)."""
        if not compressed(self._version):
            return make(payload)
        if payload:  # (an empty body is a bare token either way)
            stored = compression.is_stored(payload)
            self._stored = stored if self._stored is None else self._stored and stored
        inline = self.inline_inflate
        if inline is None or inline >= limit:
            return make(compression.decompress(payload, limit))
        if len(payload) <= inline:  # small enough to try here first
            try:
                return make(compression.decompress(payload, inline))
            except compression.TooLarge:
                pass
        self._inflating = make
        return Inflate(payload, limit)

    def inflated(self, plain: bytes) -> PreprocessedSource | FileEntry:
        """The event of the body an `Inflate` asked for, given its plain bytes."""
        make = self._inflating
        if make is None:
            raise LocalProtocolError("no Inflate event is waiting")
        self._inflating = None
        return make(plain)


def encode_request(
    header: JobHeader,
    *,
    source: bytes | None = None,
    files: Sequence[FileEntry | LinkEntry] = (),
    stored: bool = False,
) -> bytes:
    """The whole request for one job: `source` for versions 1/2, `files` for 3+.

    `stored`: compressed versions carry the bodies stored, not packed
    (`compression.store`)."""
    version = header.version
    if version not in VERSIONS:
        raise LocalProtocolError(f"unknown protocol version {version}")
    pack = compression.packer(compressed(version), stored=stored)
    parts = [encode_token(b"DIST", version)]
    if sends_env(version):
        parts.append(encode_token(b"ENVC", len(header.env)))
        parts.extend(encode_blob(b"ENVV", item) for item in header.env)
    if sends_files(version):
        if header.cwd is None:
            raise LocalProtocolError("protocol version 3 needs the client's directory")
        parts.append(encode_blob(b"CDIR", header.cwd))
    parts.append(encode_token(b"ARGC", len(header.argv)))
    parts.extend(encode_blob(b"ARGV", arg) for arg in header.argv)
    if not sends_files(version):
        if source is None:
            raise LocalProtocolError("protocol versions 1 and 2 need a preprocessed source")
        parts.append(encode_blob(b"DOTI", pack(source)))
        return b"".join(parts)
    parts.append(encode_token(b"NFIL", len(files)))
    for entry in files:
        parts.append(encode_blob(b"NAME", entry.name))
        if isinstance(entry, LinkEntry):
            parts.append(encode_blob(b"LINK", entry.target))
        else:
            parts.append(encode_blob(b"FILE", pack(entry.data)))
    return b"".join(parts)
