"""The reply half of a job connection (daemon -> client), sans-IO.

    DONE STAT SERR SOUT DOTO [DOTD]

DOTD follows DOTO in versions 3+ when the compile succeeded. A daemon may
stop early after any token (distccd does when it kills a job); the client
sees that as an error, except a missing DOTD, which distcc 3.4 accepts.
"""

from __future__ import annotations

from collections.abc import Callable

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import compression
from ccfarm.protocol._buffer import TokenBuffer
from ccfarm.protocol.events import (
    NEED_DATA,
    CompileStatus,
    DepsFile,
    Need,
    ObjectFile,
    ReplyComplete,
    ReplyEvent,
    ReplyHeader,
    Stderr,
    Stdout,
    compressed,
    sends_files,
)
from ccfarm.protocol.limits import Limits
from ccfarm.protocol.tokens import encode_blob, encode_token


class _State:
    """Parser states (plain strings: `enum` is slow to import for the wrapper)."""

    DONE = "DONE"
    STAT = "STAT"
    SERR = "SERR"
    SOUT = "SOUT"
    DOTO = "DOTO"
    DOTD = "DOTD"
    COMPLETE = "complete"


_BODIES = frozenset({b"SERR", b"SOUT", b"DOTO", b"DOTD"})
#: state -> (token accepted, next state)
_GRAMMAR: dict[str, tuple[bytes, str]] = {
    _State.DONE: (b"DONE", _State.STAT),
    _State.STAT: (b"STAT", _State.SERR),
    _State.SERR: (b"SERR", _State.SOUT),
    _State.SOUT: (b"SOUT", _State.DOTO),
    _State.DOTO: (b"DOTO", _State.DOTD),
    _State.DOTD: (b"DOTD", _State.COMPLETE),
}


class ReplyParser:
    """Parse the daemon's reply to a request of protocol `version`."""

    def __init__(self, version: int, limits: Limits | None = None) -> None:
        self.version = version
        self.limits = limits or Limits()
        self._max_payload = dict.fromkeys(_BODIES, self.limits.max_body)
        self._buf = TokenBuffer()
        self._state = _State.DONE
        self._status = -1
        self._reported_complete = False
        self._events: dict[bytes, Callable[[int, bytes | None], ReplyEvent]] = {
            b"DONE": self._on_done,
            b"STAT": self._on_stat,
            b"SERR": lambda _v, p: Stderr(self._plain(p)),
            b"SOUT": lambda _v, p: Stdout(self._plain(p)),
            b"DOTO": lambda _v, p: ObjectFile(self._plain(p)),
            b"DOTD": lambda _v, p: DepsFile(self._plain(p)),
        }

    def receive_data(self, data: bytes) -> None:
        self._buf.feed(data)

    def receive_eof(self) -> None:
        self._buf.eof = True

    def next_event(self) -> ReplyEvent | Need:
        if self._state == _State.COMPLETE:
            return self._complete_once()
        name, next_state = _GRAMMAR[self._state]
        token = self._buf.take((name,), self._max_payload)
        if token is None:
            if self._state == _State.DOTD and self._buf.eof and not self._buf.pending:
                self._state = _State.COMPLETE  # distcc accepts a missing DOTD
                return self._complete_once()
            self._buf.check_truncated(f"before {name.decode()} in the reply")
            return NEED_DATA
        event = self._events[name](token[1], token[2])
        self._state = next_state
        if self._state == _State.DOTD and not (sends_files(self.version) and self._status == 0):
            self._state = _State.COMPLETE
        return event

    def _complete_once(self) -> ReplyEvent | Need:
        if self._reported_complete:
            return NEED_DATA
        self._reported_complete = True
        return ReplyComplete()

    def _on_done(self, value: int, _payload: bytes | None) -> ReplyHeader:
        if value != self.version:
            raise RemoteProtocolError(
                f"reply version {value} does not match request {self.version}"
            )
        return ReplyHeader(value)

    def _on_stat(self, value: int, _payload: bytes | None) -> CompileStatus:
        self._status = value
        return CompileStatus(value)

    def _plain(self, payload: bytes | None) -> bytes:
        assert payload is not None
        if compressed(self.version):
            return compression.decompress(payload, self.limits.max_plain_body)
        return payload


def encode_reply_head(
    version: int, wait_status: int, stderr: bytes, *, stored: bool = False
) -> bytes:
    """DONE, STAT and SERR: what a daemon sends even when it aborts a job.
    `stored`: the bodies stored, not packed (see `encode_reply`)."""
    pack = compression.packer(compressed(version), stored=stored)
    return (
        encode_token(b"DONE", version)
        + encode_token(b"STAT", wait_status)
        + encode_blob(b"SERR", pack(stderr))
    )


def encode_reply(
    version: int,
    wait_status: int,
    *,
    stderr: bytes = b"",
    stdout: bytes = b"",
    obj: bytes = b"",
    deps: bytes = b"",
    stored: bool = False,
) -> bytes:
    """A complete reply; DOTD is added for versions 3+ when the compile succeeded.

    `stored`: compressed versions carry the bodies stored, not packed
    (`compression.store`): the answer to a request that came so."""
    pack = compression.packer(compressed(version), stored=stored)
    parts = [
        encode_reply_head(version, wait_status, stderr, stored=stored),
        encode_blob(b"SOUT", pack(stdout)),
        encode_blob(b"DOTO", pack(obj if wait_status == 0 else b"")),
    ]
    if sends_files(version) and wait_status == 0:
        parts.append(encode_blob(b"DOTD", pack(deps)))
    return b"".join(parts)
