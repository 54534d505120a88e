"""Parsers under arbitrary input; encode/decode round trips; limits."""

from __future__ import annotations

import contextlib

import lzo
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.errors import LocalProtocolError, RemoteProtocolError
from ccfarm.protocol import (
    CCFARM,
    NEED_DATA,
    FileEntry,
    JobHeader,
    Limits,
    LinkEntry,
    ReplyParser,
    RequestParser,
    encode_reply,
    encode_request,
)
from ccfarm.protocol.compression import compress, decompress
from ccfarm.protocol.tokens import encode_token, parse_token

VERSIONS = [1, 2, 3, CCFARM]


def _feed(parser: RequestParser | ReplyParser, chunks: list[bytes]) -> list[object]:
    events: list[object] = []
    for chunk in [*chunks, None]:
        if chunk is None:
            parser.receive_eof()
        else:
            parser.receive_data(chunk)
        for _ in range(10_000):  # a parser must never loop forever
            event = parser.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
        else:
            raise AssertionError("parser kept producing events")
    return events


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    return [*pieces, data[last:]]


tokenish = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"DIST00000001",
                b"DIST00000002",
                b"DIST00000003",
                b"ARGC00000002",
                b"ARGV00000003gcc",
                b"DOTI00000000",
                b"NFIL00000001",
                b"NAME00000002/a",
                b"FILE00000000",
                b"LINK00000001x",
                b"CDIR00000001/",
                b"DONE00000001",
                b"STAT00000000",
                b"SERR00000000",
                b"SOUT00000000",
                b"DOTO00000000",
                b"DOTD00000000",
                b"DIST43460001",
                b"ENVC00000001",
                b"ENVV00000003A=b",
            ]
        ),
    ),
    max_size=12,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(tokenish, st.lists(st.integers(min_value=0, max_value=500), max_size=4))
def test_request_parser_gives_events_or_protocol_error(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(RemoteProtocolError):
        _feed(RequestParser(), _split(data, cuts))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VERSIONS), tokenish, st.lists(st.integers(0, 500), max_size=4))
def test_reply_parser_gives_events_or_protocol_error(
    version: int, data: bytes, cuts: list[int]
) -> None:
    with contextlib.suppress(RemoteProtocolError):
        _feed(ReplyParser(version), _split(data, cuts))


args = st.lists(st.binary(min_size=0, max_size=30), min_size=1, max_size=6).map(tuple)
paths = st.binary(min_size=1, max_size=20).map(lambda b: b"/" + b.replace(b"\0", b"x"))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(VERSIONS),
    args,
    st.binary(max_size=3000),
    st.lists(st.tuples(paths, st.binary(max_size=500), st.booleans()), max_size=5),
    st.lists(st.binary(min_size=1, max_size=20).map(lambda b: b"K=" + b), max_size=3),
)
def test_request_round_trip(
    version: int,
    argv: tuple[bytes, ...],
    source: bytes,
    entries: list[tuple[bytes, bytes, bool]],
    env: list[bytes],
) -> None:
    files = [
        LinkEntry(n, d.replace(b"\0", b"x") or b"t") if link else FileEntry(n, d)
        for n, d, link in entries
    ]
    header = JobHeader(
        version, argv, b"/work" if version >= 3 else None, tuple(env) if version == CCFARM else ()
    )
    data = encode_request(header, source=source, files=files)
    events = _feed(RequestParser(), [data])
    assert events[0] == header
    if version in (1, 2):
        assert events[1].data == source  # type: ignore[attr-defined]
    else:
        assert events[1:-1] == files


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(VERSIONS),
    st.sampled_from([0, 0x100, 0x7600, 0x0B]),
    st.binary(max_size=500),
    st.binary(max_size=500),
    st.binary(max_size=2000),
    st.binary(max_size=300),
)
def test_reply_round_trip(
    version: int, status: int, err: bytes, out: bytes, obj: bytes, deps: bytes
) -> None:
    data = encode_reply(version, status, stderr=err, stdout=out, obj=obj, deps=deps)
    events = _feed(ReplyParser(version), [data])
    bodies = [getattr(e, "data", None) for e in events[2:-1]]
    expected = [err, out, obj if status == 0 else b""]
    if version >= 3 and status == 0:
        expected.append(deps)
    assert bodies == expected


@pytest.mark.parametrize(
    "data",
    [
        b"DIST00000001ARGC00000001ARGVfffffff0",
        b"DIST00000001ARGCffffffff",
        b"DIST00000001ARGC00000000",
        b"DIST00000003CDIR7fffffff",
        b"DIST00000002ARGC00000001ARGV00000001xDOTIfffffff0",
    ],
)
def test_absurd_values_refused_without_waiting(data: bytes) -> None:
    parser = RequestParser()
    parser.receive_data(data)  # no EOF: the refusal must not wait for the payload
    with pytest.raises(RemoteProtocolError):
        for _ in range(10):
            parser.next_event()


def test_reply_absurd_length_refused_at_once() -> None:
    parser = ReplyParser(1, Limits(max_body=1000))
    parser.receive_data(b"DONE00000001STAT00000000SERR00010000")
    with pytest.raises(RemoteProtocolError):
        for _ in range(5):
            parser.next_event()


def test_reply_version_mismatch() -> None:
    parser = ReplyParser(2)
    parser.receive_data(b"DONE00000001")
    with pytest.raises(RemoteProtocolError):
        parser.next_event()


def test_missing_dotd_is_accepted_as_distcc_does() -> None:
    data = encode_reply(3, 0, obj=b"OBJ")
    cut = data[: data.index(b"DOTD")]
    events = _feed(ReplyParser(3), [cut])
    assert type(events[-1]).__name__ == "ReplyComplete"


def test_tokens() -> None:
    assert encode_token(b"DIST", 1) == b"DIST00000001"
    assert encode_token(b"ARGV", 0xABCDEF) == b"ARGV00abcdef"
    assert parse_token(b"ARGV00ABCDEF") == (b"ARGV", 0xABCDEF)
    for bad in (b"ARGV0000000g", b"ARGV 0000001", b"ARGV+0000001", b"ARGV0x000001"):
        with pytest.raises(RemoteProtocolError):
            parse_token(bad)
    with pytest.raises(LocalProtocolError):
        encode_token(b"DIS", 1)
    with pytest.raises(LocalProtocolError):
        encode_token(b"DIST", 1 << 32)


def test_compression_matches_distcc_settings() -> None:
    data = b"int main(void) { return 0; }\n" * 50
    assert compress(b"") == b""
    assert compress(data) == lzo.compress(data, 1, False)
    assert decompress(compress(data), 1 << 20) == data
    big = b"\0" * 200_000  # compresses to a few hundred bytes: needs buffer growth
    assert decompress(compress(big), 1 << 20) == big


def test_decompress_refuses_corrupt_and_oversized() -> None:
    with pytest.raises(RemoteProtocolError):
        decompress(b"\x00garbage-garbage", 1 << 20)
    with pytest.raises(RemoteProtocolError):
        decompress(compress(b"\0" * 200_000), 10_000)
