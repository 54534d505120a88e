"""Properties of the request and reply codecs.

(a) Any bytes, in any chunking, followed by EOF, give events or
    `RemoteProtocolError`: never another exception, never an endless loop,
    never NEED_DATA after EOF, and the same result however they are split.
(b) encode -> decode round trips for every protocol version.
(c) Limits: absurd lengths and counts are refused as soon as the token is
    complete, without waiting for (or buffering) the payload.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ccfarm.errors import LocalProtocolError, RemoteProtocolError
from ccfarm.protocol import (
    CCFARM,
    CCFARM_CPP,
    LZO,
    NEED_DATA,
    PLAIN,
    PUMP,
    VERSIONS,
    CompileStatus,
    DepsFile,
    FileEntry,
    JobHeader,
    Limits,
    LinkEntry,
    ObjectFile,
    PreprocessedSource,
    ReplyComplete,
    ReplyHeader,
    ReplyParser,
    RequestComplete,
    RequestParser,
    Stderr,
    Stdout,
    compressed,
    encode_reply,
    encode_reply_head,
    encode_request,
    sends_env,
    sends_files,
)
from ccfarm.protocol.compression import compress, is_stored, packer
from ccfarm.protocol.tokens import encode_blob, encode_token
from tests.unit.conftest import PROTOCOL_MARKS, Parser, bytewise, drive

pytestmark = PROTOCOL_MARKS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Outcome = tuple[list[object], RemoteProtocolError | None]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (taken modulo its length; empty pieces kept)."""
    points = sorted(c % (len(data) + 1) for c in cuts)
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def outcome_key(outcome: Outcome) -> tuple[list[object], str | None]:
    events, error = outcome
    return events, None if error is None else f"{type(error).__name__}: {error}"


# -- strategies -------------------------------------------------------------------------

versions = st.sampled_from(VERSIONS)
#: a plausible blob: short binary, repetitive text (compresses), or nothing
blobs = st.one_of(
    st.binary(max_size=64),
    st.tuples(st.binary(min_size=1, max_size=8), st.integers(1, 200)).map(lambda t: t[0] * t[1]),
    st.just(b""),
)
args = st.binary(max_size=40)
absolute = st.binary(max_size=30).map(lambda b: b"/" + b.replace(b"\0", b"_"))
env_entries = st.tuples(
    st.binary(min_size=1, max_size=12).map(lambda b: b.replace(b"=", b"_")), st.binary(max_size=20)
).map(lambda kv: kv[0] + b"=" + kv[1])
link_targets = st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\0", b"_"))
entries = st.one_of(
    st.builds(FileEntry, absolute, blobs), st.builds(LinkEntry, absolute, link_targets)
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[JobHeader, bytes | None, list[FileEntry | LinkEntry]]:
    """A valid job for a random version: header, then a source or files."""
    version = draw(versions)
    header = JobHeader(
        version,
        tuple(draw(st.lists(args, min_size=1, max_size=8))),
        draw(absolute) if sends_files(version) else None,
        tuple(draw(st.lists(env_entries, max_size=4))) if sends_env(version) else (),
    )
    if sends_files(version):
        return header, None, draw(st.lists(entries, max_size=6))
    return header, draw(blobs), []


def request_events(
    header: JobHeader,
    source: bytes | None,
    files: list[FileEntry | LinkEntry],
    *,
    stored: bool = False,
) -> list[object]:
    """What the parser gives for a request encoded so (`stored` or packed)."""
    body: list[object] = list(files) if source is None else [PreprocessedSource(source)]
    plain = [source] if source is not None else [f.data for f in files if isinstance(f, FileEntry)]
    # (the packer writes some small bodies as a literal run too: they look stored)
    packed = [packer(True, stored=stored)(b) for b in plain if b and compressed(header.version)]
    return [header, *body, RequestComplete(stored=bool(packed) and all(map(is_stored, packed)))]


@st.composite
def replies(draw: st.DrawFn) -> tuple[int, int, bytes, bytes, bytes, bytes]:
    version = draw(versions)
    status = draw(
        st.one_of(
            st.sampled_from([0, 0x100, 0x7600, 0x6B00, 0x0B, 0x8B]), st.integers(0, 0xFFFFFFFF)
        )
    )
    return version, status, draw(blobs), draw(blobs), draw(blobs), draw(blobs)


def reply_events(
    version: int, status: int, err: bytes, out: bytes, obj: bytes, deps: bytes
) -> list[object]:
    events: list[object] = [
        ReplyHeader(version),
        CompileStatus(status),
        Stderr(err),
        Stdout(out),
        ObjectFile(obj if status == 0 else b""),  # DOTO is empty when the compile failed
    ]
    if sends_files(version) and status == 0:
        events.append(DepsFile(deps))
    return [*events, ReplyComplete()]


NAMES = [
    b"DIST", b"ENVC", b"ENVV", b"CDIR", b"ARGC", b"ARGV", b"DOTI", b"NFIL", b"NAME", b"FILE",
    b"LINK", b"DONE", b"STAT", b"SERR", b"SOUT", b"DOTO", b"DOTD",
]  # fmt: skip
#: values that matter: versions, small counts and lengths, limits, the largest values
values = st.one_of(
    st.sampled_from([*VERSIONS, 0, 4, 0x43460002, 10_000, 10_001, 0x7FFFFFFF, 0xFFFFFFFF]),
    st.integers(0, 40),
    st.integers(0, 0xFFFFFFFF),
)


@st.composite
def token_soup(draw: st.DrawFn) -> bytes:
    """Well-framed tokens in a random order: names right or wrong, lengths right or not."""
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        name = draw(st.one_of(st.sampled_from(NAMES), st.binary(min_size=4, max_size=4)))
        payload = draw(st.one_of(blobs, blobs.map(compress)))
        value = draw(st.one_of(st.just(len(payload)), values))
        digits = b"%08x" % value
        if draw(st.integers(0, 9)) == 0:
            digits = digits.upper()
        parts.append(name + digits + payload)
    return b"".join(parts)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    """A valid request or reply, then damaged: bytes flipped, cut, inserted or removed."""
    if draw(st.booleans()):
        header, source, files = draw(requests())
        version, data = 0, encode_request(header, source=source, files=files)
    else:
        version, status, *bodies = draw(replies())
        err, out, obj, deps = bodies
        data = encode_reply(version, status, stderr=err, stdout=out, obj=obj, deps=deps)
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(buf)))
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if kind == "flip" and at < len(buf):
            buf[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del buf[at:]
        elif kind == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=12))
        else:
            del buf[at : at + draw(st.integers(1, 12))]
    return version, bytes(buf)


anything = st.one_of(st.binary(max_size=300), token_soup())
cuts = st.lists(st.integers(0, 10_000), max_size=6)


# -- (a) arbitrary input -------------------------------------------------------------


def check_any_input(make: Callable[[], Parser], data: bytes, cut_at: list[int]) -> None:
    """Events or RemoteProtocolError, the same however the bytes are split."""
    at_once = drive(make(), [data])  # `drive` lets only RemoteProtocolError through
    in_pieces = drive(make(), split(data, cut_at))
    assert outcome_key(at_once) == outcome_key(in_pieces)
    if len(data) <= 400:
        assert outcome_key(at_once) == outcome_key(drive(make(), bytewise(data)))


@FAST
@given(anything, cuts)
@example(b"", [])
@example(b"DIST00000001ARGC00000001ARGV00000001", [13, 30])
@example(b"DIST00000003CDIR00000001/ARGC00000001ARGV00000000NFIL00000001NAME00000001/", [])
def test_request_parser_takes_any_bytes(data: bytes, cut_at: list[int]) -> None:
    check_any_input(RequestParser, data, cut_at)


@FAST
@given(versions, anything, cuts)
@example(PUMP, b"DONE00000003STAT00000000SERR00000000SOUT00000000DOTO00000000DOTD", [])
def test_reply_parser_takes_any_bytes(version: int, data: bytes, cut_at: list[int]) -> None:
    check_any_input(lambda: ReplyParser(version), data, cut_at)


@FAST
@given(mutated(), cuts)
def test_damaged_streams_give_events_or_protocol_error(
    damaged: tuple[int, bytes], cut_at: list[int]
) -> None:
    version, data = damaged
    make = RequestParser if version == 0 else (lambda: ReplyParser(version))
    check_any_input(make, data, cut_at)


@FAST
@given(versions, anything)
def test_reply_parser_of_any_version_takes_any_bytes(version: int, data: bytes) -> None:
    """Prefixing a valid reply start drives the fuzz past DONE/STAT into the bodies."""
    head = encode_token(b"DONE", version) + encode_token(b"STAT", 0)
    check_any_input(lambda: ReplyParser(version), head + data, [12, 24])


def test_parser_errors_never_escape_as_other_exceptions() -> None:
    """A few known-nasty inputs (a sample kept even if hypothesis never finds them)."""
    nasty = [
        b"DIST00000002ARGC00000001ARGV00000001xDOTI00000005\x00\x00\x00\x00\x00",  # bad LZO
        b"DIST00000003CDIR00000001/ARGC00000001ARGV00000001xNFIL00000001NAME00000001/"
        b"LINK00000000",  # empty link target
        b"DIST43460001ENVC00000001ENVV00000003abc",  # env entry without "="
        b"DIST00000003CDIR00000001xARGC",  # relative CDIR
        b"DIST00000003CDIR00000003/\x00aARGC00000001ARGV00000001xNFIL00000000",  # NUL in CDIR
        b"DIST00000001ARGC00000001ARGV00000001xDOTI0000000",  # cut inside a token
        b"DIST0000000 ",  # a space in the value
        b"DIST00000001\xff\xfe\xfd\xfc00000001",  # non-ASCII name
    ]
    for data in nasty:
        events, error = drive(RequestParser(), [data])
        assert isinstance(error, RemoteProtocolError), (data, events)
    # a non-empty LZO stream holding nothing (just the end marker) is valid
    lzo_of_nothing = b"DIST00000002ARGC00000001ARGV00000001xDOTI00000003\x11\x00\x00"
    assert drive(RequestParser(), [lzo_of_nothing])[0][1] == PreprocessedSource(b"")


# -- (b) round trips ------------------------------------------------------------------


@FAST
@given(requests(), cuts, st.booleans())
def test_request_round_trip(
    job: tuple[JobHeader, bytes | None, list[FileEntry | LinkEntry]],
    cut_at: list[int],
    stored: bool,
) -> None:
    header, source, files = job
    data = encode_request(header, source=source, files=files, stored=stored)
    expected = request_events(header, source, files, stored=stored)
    assert drive(RequestParser(), [data]) == (expected, None)
    assert drive(RequestParser(), split(data, cut_at)) == (expected, None)
    # the request is complete without EOF: a daemon must not need the client to half-close
    assert drive(RequestParser(), [data], eof=False) == (expected, None)


@FAST
@given(replies(), cuts)
def test_reply_round_trip(
    reply: tuple[int, int, bytes, bytes, bytes, bytes], cut_at: list[int]
) -> None:
    version, status, err, out, obj, deps = reply
    data = encode_reply(version, status, stderr=err, stdout=out, obj=obj, deps=deps)
    expected = reply_events(*reply)
    assert drive(ReplyParser(version), [data]) == (expected, None)
    assert drive(ReplyParser(version), split(data, cut_at)) == (expected, None)
    # complete without EOF: DOTD is expected exactly when encode_reply writes it
    assert drive(ReplyParser(version), [data], eof=False) == (expected, None)


@pytest.mark.parametrize("chunk", [13, 1000, 4096, 65537, 1 << 30])
def test_large_streams_in_any_chunk_size(chunk: int) -> None:
    """Bodies larger than the receive buffer's compaction threshold (64 KiB)."""
    rng = random.Random(chunk)
    files: list[FileEntry | LinkEntry] = [
        FileEntry(b"/src/f%d.c" % i, rng.randbytes(10_000 + rng.randrange(5000))) for i in range(30)
    ]
    files.insert(10, FileEntry(b"/src/big.h", b"#define X 1\n" * 30_000))
    for version in (PUMP, CCFARM):
        header = JobHeader(
            version, (b"gcc", b"-c", b"f0.c"), b"/src", (b"LANG=C",) * (version == CCFARM)
        )
        data = encode_request(header, files=files)
        assert len(data) > 4 * 65536
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        assert drive(RequestParser(), pieces) == (request_events(header, None, files), None)
    obj = rng.randbytes(200_000)
    for version in VERSIONS:
        data = encode_reply(version, 0, stderr=b"w" * 70_000, obj=obj, deps=obj[:70_000])
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
        expected = reply_events(version, 0, b"w" * 70_000, b"", obj, obj[:70_000])
        assert drive(ReplyParser(version), pieces) == (expected, None)


@pytest.mark.parametrize("version", [PUMP, CCFARM])
def test_v3_reply_needs_dotd_only_after_a_success(version: int) -> None:
    failed = encode_reply(version, 0x100, stderr=b"error")
    assert b"DOTD" not in failed
    events, error = drive(ReplyParser(version), [failed], eof=False)
    assert error is None and isinstance(events[-1], ReplyComplete)
    ok = encode_reply(version, 0, obj=b"o", deps=b"d")
    head = ok[: ok.index(b"DOTD")]
    events, error = drive(ReplyParser(version), [head], eof=False)
    assert error is None and events[-1] == ObjectFile(b"o")  # still waiting for DOTD


@FAST
@given(replies())
def test_reply_head_alone_is_a_truncated_reply(
    reply: tuple[int, int, bytes, bytes, bytes, bytes],
) -> None:
    version, status, err, *_ = reply
    data = encode_reply_head(version, status, err)
    assert encode_reply(version, status, stderr=err).startswith(data)
    events, error = drive(ReplyParser(version), [data])
    assert events == reply_events(*reply)[:3] and isinstance(error, RemoteProtocolError)


@pytest.mark.parametrize("version", VERSIONS)
def test_empty_bodies_are_bare_tokens(version: int) -> None:
    """Zero-length bodies are sent as the token alone, compressed versions included."""
    reply = encode_reply(version, 0)
    assert reply.endswith(
        b"SERR00000000SOUT00000000DOTO00000000" + (b"DOTD00000000" if sends_files(version) else b"")
    )
    header = JobHeader(version, (b"cc",), b"/" if sends_files(version) else None)
    request = encode_request(header, source=b"", files=[FileEntry(b"/e", b"")])
    assert request.endswith(b"FILE00000000" if sends_files(version) else b"DOTI00000000")


def test_compressed_versions_send_lzo_bodies() -> None:
    text = b"int x;\n" * 100
    for version in VERSIONS:
        header = JobHeader(version, (b"cc",), b"/w" if sends_files(version) else None)
        data = encode_request(header, source=text, files=[FileEntry(b"/w/x.c", text)])
        expected = compress(text) if compressed(version) else text
        assert data.endswith(expected)
        obj = encode_reply(version, 0, obj=text)
        assert expected in obj


def test_v1_v2_ignore_files_and_v3_ignores_source() -> None:
    """encode_request sends what the version carries (documents the current behaviour)."""
    files = [FileEntry(b"/a", b"x")]
    v1 = encode_request(JobHeader(PLAIN, (b"cc",)), source=b"s", files=files)
    assert b"NFIL" not in v1 and b"NAME" not in v1
    v3 = encode_request(JobHeader(PUMP, (b"cc",), b"/"), source=b"s", files=files)
    assert b"DOTI" not in v3


@pytest.mark.parametrize(
    ("header", "kwargs"),
    [
        (JobHeader(5, (b"cc",)), {"source": b""}),
        (JobHeader(PLAIN, (b"cc",)), {}),  # no source
        (JobHeader(LZO, (b"cc",)), {}),
        (JobHeader(PUMP, (b"cc",)), {}),  # no CDIR
        (JobHeader(CCFARM, (b"cc",)), {}),
        (JobHeader(CCFARM_CPP, (b"cc",)), {}),  # no source
    ],
)
def test_encode_request_refuses_what_it_cannot_send(
    header: JobHeader, kwargs: dict[str, bytes]
) -> None:
    with pytest.raises(LocalProtocolError):
        encode_request(header, **kwargs)  # type: ignore[arg-type]


# -- (c) limits -----------------------------------------------------------------------

REQUEST_HEADS = {
    # prefix that leads each payload token, for the version that carries it
    b"ENVV": b"DIST43460001ENVC00000001",
    b"CDIR": b"DIST00000003",
    b"ARGV": b"DIST00000001ARGC00000001",
    b"DOTI": b"DIST00000002ARGC00000001ARGV00000002cc",
    b"NAME": b"DIST00000003CDIR00000001/ARGC00000001ARGV00000002ccNFIL00000001",
    b"FILE": b"DIST00000003CDIR00000001/ARGC00000001ARGV00000002ccNFIL00000001NAME00000002/a",
    b"LINK": b"DIST00000003CDIR00000001/ARGC00000001ARGV00000002ccNFIL00000001NAME00000002/a",
}
#: the limit each payload token is held to
TOKEN_LIMIT = {
    b"ENVV": "max_arg_bytes",
    b"CDIR": "max_name_bytes",
    b"ARGV": "max_arg_bytes",
    b"DOTI": "max_body",
    b"NAME": "max_name_bytes",
    b"FILE": "max_body",
    b"LINK": "max_name_bytes",
}
REPLY_HEADS = {
    b"SERR": b"DONE00000003STAT00000000",
    b"SOUT": b"DONE00000003STAT00000000SERR00000000",
    b"DOTO": b"DONE00000003STAT00000000SERR00000000SOUT00000000",
    b"DOTD": b"DONE00000003STAT00000000SERR00000000SOUT00000000DOTO00000000",
}


def refused_at_once(parser: RequestParser | ReplyParser, data: bytes) -> bool:
    """True if `data` (no EOF, payload not sent) is refused before any more bytes come."""
    events, error = drive(parser, [data], eof=False)
    return error is not None


def test_absurd_argv_length_is_refused_at_once() -> None:
    assert refused_at_once(RequestParser(), b"DIST00000001ARGC00000001ARGVffffffff")


@pytest.mark.parametrize("name", sorted(REQUEST_HEADS))
def test_request_payload_lengths_checked_before_the_payload(name: bytes) -> None:
    limits = Limits()
    limit = getattr(limits, TOKEN_LIMIT[name])
    head = REQUEST_HEADS[name]
    assert not refused_at_once(RequestParser(limits), head + encode_token(name, limit))
    assert refused_at_once(RequestParser(limits), head + encode_token(name, limit + 1))
    assert refused_at_once(RequestParser(limits), head + encode_token(name, 0xFFFFFFFF))


@pytest.mark.parametrize("name", sorted(REPLY_HEADS))
def test_reply_payload_lengths_checked_before_the_payload(name: bytes) -> None:
    small = Limits(max_body=1000)
    head = REPLY_HEADS[name]
    assert not refused_at_once(ReplyParser(PUMP, small), head + encode_token(name, 1000))
    assert refused_at_once(ReplyParser(PUMP, small), head + encode_token(name, 1001))
    assert refused_at_once(ReplyParser(PUMP), head + encode_token(name, 0xFFFFFFFF))


@FAST
@given(st.sampled_from(sorted(REQUEST_HEADS)), st.data())
def test_any_oversized_request_payload_is_refused_at_once(name: bytes, data: st.DataObject) -> None:
    limits = Limits(max_arg_bytes=100, max_name_bytes=50, max_body=5000)
    limit = getattr(limits, TOKEN_LIMIT[name])
    length = data.draw(st.integers(limit + 1, 0xFFFFFFFF))
    assert refused_at_once(RequestParser(limits), REQUEST_HEADS[name] + encode_token(name, length))


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        (b"DIST00000001ARGC00000000", True),  # no compiler at all
        (b"DIST00000001ARGC00000001", False),
        (b"DIST00000001ARGC00002710", False),  # 10 000 = max_args
        (b"DIST00000001ARGC00002711", True),
        (b"DIST00000001ARGCffffffff", True),
        (b"DIST43460001ENVC00000040", False),  # 64 = max_env
        (b"DIST43460001ENVC00000041", True),
        (b"DIST00000003CDIR00000001/ARGC00000001ARGV00000001cNFIL000186a0", False),  # max_files
        (b"DIST00000003CDIR00000001/ARGC00000001ARGV00000001cNFIL000186a1", True),
        (b"DIST00000000", True),  # distcc would take 0 as 1; we do not
        (b"DIST00000004", True),  # there is no version 4
        (b"DIST43460002ENVC00000000ARGC00000001", False),  # ccfarm-cpp: no CDIR
        (b"DIST43460002ENVC00000000CDIR00000001/", True),
        (b"DIST43460003", True),
        (b"DISTffffffff", True),
        (b"DONE00000001", True),  # a reply is not a request
        (b"dist00000001", True),  # names are case-sensitive
    ],
)
def test_request_counts_and_versions(data: bytes, refused: bool) -> None:
    assert refused_at_once(RequestParser(), data) == refused


@pytest.mark.parametrize("version", VERSIONS)
def test_reply_version_must_match_the_request(version: int) -> None:
    for other in {*VERSIONS, 0, 4} - {version}:
        assert refused_at_once(ReplyParser(version), encode_token(b"DONE", other))
    assert not refused_at_once(ReplyParser(version), encode_token(b"DONE", version))


def test_request_totals_are_limited() -> None:
    limits = Limits(max_request_bytes=100)
    header = JobHeader(PUMP, (b"cc",), b"/")
    fits = encode_request(header, files=[FileEntry(b"/a", b"a" * 60), FileEntry(b"/b", b"b" * 40)])
    assert drive(RequestParser(limits), [fits])[1] is None
    too_much = encode_request(
        header, files=[FileEntry(b"/a", b"a" * 60), FileEntry(b"/b", b"b" * 41)]
    )
    events, error = drive(RequestParser(limits), [too_much])
    assert isinstance(error, RemoteProtocolError) and len(events) == 2


def test_decompressed_bodies_are_limited() -> None:
    """A small LZO body that expands beyond max_plain_body is refused."""
    bomb = compress(b"\0" * 100_000)
    assert len(bomb) < 1000
    limits = Limits(max_plain_body=50_000)
    request = encode_token(b"DIST", LZO) + encode_token(b"ARGC", 1) + encode_blob(b"ARGV", b"cc")
    events, error = drive(RequestParser(limits), [request + encode_blob(b"DOTI", bomb)])
    assert isinstance(error, RemoteProtocolError) and len(events) == 1
    reply = encode_reply(LZO, 0, obj=b"\0" * 100_000)
    events, error = drive(ReplyParser(LZO, limits), [reply])
    assert isinstance(error, RemoteProtocolError) and len(events) == 4


def test_paths_and_env_entries_are_checked() -> None:
    pump = b"DIST00000003CDIR00000001/ARGC00000001ARGV00000001cNFIL00000001"
    bad = [
        b"DIST00000003CDIR00000004tmp/",  # relative CDIR
        b"DIST00000003CDIR00000003/\x00x",  # NUL in CDIR
        pump + b"NAME00000003a/b",  # relative NAME
        pump + b"NAME00000003/\x00b",  # NUL in NAME
        pump + b"NAME00000002/aLINK00000000",  # empty link target
        pump + b"NAME00000002/aLINK00000002a\x00",  # NUL in the link target
        pump + b"NAME00000002/aDOTI00000000",  # neither FILE nor LINK after NAME
        b"DIST43460001ENVC00000001ENVV00000004LANG",  # no "="
    ]
    for data in bad:
        assert refused_at_once(RequestParser(), data), data


def test_nothing_is_read_past_a_complete_request() -> None:
    """Bytes after the request (distcc never sends any) are left alone, not parsed."""
    data = encode_request(JobHeader(PLAIN, (b"cc",)), source=b"x")
    parser = RequestParser()
    events, error = drive(parser, [data + b"garbage"], eof=False)
    assert error is None and isinstance(events[-1], RequestComplete) and parser.complete
    assert parser.next_event() is NEED_DATA
