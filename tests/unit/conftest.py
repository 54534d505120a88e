"""Unit-test helpers: where the distcc byte captures are, and protocol drivers.

The captures are in the repository, `tests/captures` (see its README.md;
`tests/captures/record.py` re-records them with real distcc and distccd),
or at `$CCFARM_CAPTURES` if set. A missing directory fails the capture
tests: it is never a reason to skip them.

Capture tests are parametrised over the files found by glob at collection
time (`capture_names`), so a new `NAME.client.bin` / `NAME.server.bin` is
picked up without touching the tests. When the directory is missing there is
one placeholder parameter, and the `captures_dir` fixture that every capture
test requests fails it with the message below.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import pytest

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import NEED_DATA, PLAIN, ReplyComplete, RequestComplete
from ccfarm.protocol.tokens import TOKEN_SIZE

CAPTURES_ENV = "CCFARM_CAPTURES"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_CAPTURES = REPO / "tests" / "captures"
#: the only parameter of a capture test when no capture was found
MISSING = "<no-captures>"


def captures_path() -> Path:
    """Where the captures should be (they may be absent)."""
    configured = os.environ.get(CAPTURES_ENV)
    return Path(configured) if configured else DEFAULT_CAPTURES


def captures_present(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.client.bin"))


def require_captures() -> Path:
    """The captures directory, or fail with the reason."""
    path = captures_path()
    if captures_present(path):
        return path
    pytest.fail(
        f"distcc captures not found at {path}: {CAPTURES_ENV}, if set, must name a directory "
        f"holding *.client.bin / *.server.bin files (normally <repo>/tests/captures)",
        pytrace=False,
    )


def capture_names(suffix: str) -> list[str]:
    """Sorted NAMEs of every `NAME<suffix>` capture, or [MISSING] when there are none."""
    path = captures_path()
    if not captures_present(path):
        return [MISSING]
    names = sorted(p.name[: -len(suffix)] for p in path.glob(f"*{suffix}"))
    return names or [MISSING]


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """The distcc captures directory (fails when missing)."""
    return require_captures()


# -- driving the sans-IO protocol parsers (shared by the test_protocol_* modules) --

#: captures whose LZO bodies a Python peer wrote with a literal-only ("store")
#: LZO1X encoder, and the side that peer was on. Those streams are valid LZO1X
#: (real distcc accepted them); ccfarm's compressor finds the matches a store
#: encoder leaves out.
LITERAL_ONLY = {"j2-py-p2-store": "client", "k2-pyserver-p2-store": "server"}
#: tokens followed by a payload of `value` bytes
PAYLOAD_TOKENS = frozenset(
    {b"ENVV", b"CDIR", b"ARGV", b"DOTI", b"NAME", b"FILE", b"LINK"}
    | {b"SERR", b"SOUT", b"DOTO", b"DOTD"}
)
#: payload tokens whose body is LZO in protocol versions 2 and later
LZO_TOKENS = frozenset({b"DOTI", b"FILE", b"SERR", b"SOUT", b"DOTO", b"DOTD"})


class Parser(Protocol):
    def receive_data(self, data: bytes) -> None: ...
    def receive_eof(self) -> None: ...
    def next_event(self) -> object: ...


def drive(
    parser: Parser, chunks: Iterable[bytes], *, eof: bool = True
) -> tuple[list[object], RemoteProtocolError | None]:
    """Feed `chunks` (then EOF), draining events after each; return (events, error).

    Only `RemoteProtocolError` is caught: any other exception propagates and
    fails the test. Every drain is bounded (a parser cannot produce more events
    than the tokens it was given, plus the final *Complete), so a parser that
    loops fails instead of hanging. After EOF the parser must have either
    raised or completed: NEED_DATA there would leave its caller waiting for
    bytes that can never come.
    """
    pieces = list(chunks)
    budget = sum(len(p) for p in pieces) // TOKEN_SIZE + 3
    events: list[object] = []

    def drain() -> None:
        for _ in range(budget):
            event = parser.next_event()
            if event is NEED_DATA:
                return
            events.append(event)
        raise AssertionError(f"parser did not stop after {budget} events: {events[-3:]}")

    try:
        for piece in pieces:
            parser.receive_data(piece)
            drain()
        if eof:
            parser.receive_eof()
            drain()
    except RemoteProtocolError as exc:
        return events, exc
    if eof:
        assert events and isinstance(events[-1], RequestComplete | ReplyComplete), (
            f"NEED_DATA after EOF without completing: {events[-3:]}"
        )
        assert parser.next_event() is NEED_DATA, "the end was reported twice"
    return events, None


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def walk_tokens(data: bytes) -> list[tuple[bytes, int, bytes | None]]:
    """Raw tokens of a stream, independent of the parsers (stops at the first bad one)."""
    tokens: list[tuple[bytes, int, bytes | None]] = []
    pos = 0
    while pos + TOKEN_SIZE <= len(data):
        name, digits = data[pos : pos + 4], data[pos + 4 : pos + TOKEN_SIZE]
        if not all(c in b"0123456789abcdefABCDEF" for c in digits):
            break
        value = int(digits, 16)
        pos += TOKEN_SIZE
        payload = None
        if name in PAYLOAD_TOKENS:
            if pos + value > len(data):
                break
            payload = data[pos : pos + value]
            pos += value
        tokens.append((name, value, payload))
    return tokens


def recompressed(data: bytes, *, stored: bool = False) -> bytes:
    """`data` with each LZO body replaced by what ccfarm writes for it:
    `compress`, or `store` when `stored` (as a request of stored bodies is
    answered).

    The framing stays byte for byte; only the LZO streams change (distcc
    writes LZO1X-1, ccfarm another LZO1X encoder: both decode alike). Call it
    on streams of a compressed protocol version only.
    """
    from ccfarm.protocol.compression import decompress, packer

    out = []
    pos = 0
    for name, value, payload in walk_tokens(data):
        size = TOKEN_SIZE + (value if payload is not None else 0)
        if name in LZO_TOKENS and payload:
            body = packer(True, stored=stored)(decompress(payload, 1 << 30))
            out.append(b"%s%08x%s" % (name, len(body), body))
        else:
            out.append(data[pos : pos + size])
        pos += size
    return b"".join(out) + data[pos:]


def request_version(client_bytes: bytes) -> int:
    """The version announced by a request's DIST token (1 when there is none)."""
    tokens = walk_tokens(client_bytes[:TOKEN_SIZE])
    return tokens[0][1] if tokens and tokens[0][0] == b"DIST" else PLAIN


#: marks for every test_protocol_* module: a hang (a parser or decompressor that
#: loops) ends the run with stack traces instead of stalling it; and hypothesis
#: releases older than ~6.170 probe `mypy_extensions.TypedDict` while reporting a
#: failure, which `filterwarnings = error` would turn into a pytest INTERNALERROR
#: hiding the falsifying example
PROTOCOL_MARKS = [
    pytest.mark.timeout(60, method="thread"),
    pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"),
]
