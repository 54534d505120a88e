"""Bodies decompressed by the caller (`Inflate`), declared sizes, and the
decompression limit: what lets the daemon bound memory and keep LZO off
its event loop."""

from __future__ import annotations

import pytest
from hypothesis import given

from ccfarm.errors import LocalProtocolError, RemoteProtocolError
from ccfarm.protocol import (
    LZO,
    NEED_DATA,
    PUMP,
    FileEntry,
    Inflate,
    JobHeader,
    Limits,
    PreprocessedSource,
    RequestComplete,
    RequestParser,
    compression,
    encode_request,
)
from ccfarm.protocol.tokens import encode_blob, encode_token
from tests.unit.conftest import PROTOCOL_MARKS, drive
from tests.unit.test_protocol_properties import FAST, requests

pytestmark = PROTOCOL_MARKS


def _drive_inflating(parser: RequestParser, data: bytes) -> tuple[list[object], int]:
    """All events, with every Inflate done as the daemon does it; and how many there were."""
    parser.receive_data(data)
    parser.receive_eof()
    events: list[object] = []
    inflates = 0
    while True:
        event = parser.next_event()
        if isinstance(event, Inflate):
            inflates += 1
            event = parser.inflated(compression.decompress(event.packed, event.limit))
        if event is NEED_DATA:
            return events, inflates
        events.append(event)
        if isinstance(event, RequestComplete):
            return events, inflates


@FAST
@given(requests())
def test_bodies_inflated_by_the_caller_give_the_same_events(
    job: tuple[JobHeader, bytes | None, list[FileEntry]],
) -> None:
    header, source, files = job
    data = encode_request(header, source=source, files=files)
    inline, error = drive(RequestParser(), [data])
    assert error is None
    deferred, _ = _drive_inflating(RequestParser(inline_inflate=8), data)
    assert deferred == inline


def test_small_bodies_stay_inline_and_big_ones_come_out_as_inflate() -> None:
    header = JobHeader(LZO, (b"cc", b"-c", b"x.c"))
    small = encode_request(header, source=b"int x;\n" * 10)
    assert _drive_inflating(RequestParser(inline_inflate=1 << 20), small)[1] == 0
    big = encode_request(header, source=b"int x;\n" * 300_000)  # 2.1 MB plain
    events, inflates = _drive_inflating(RequestParser(inline_inflate=1 << 20), big)
    assert inflates == 1
    assert events[1] == PreprocessedSource(b"int x;\n" * 300_000)


def test_an_inflate_limit_is_what_is_left_of_the_request() -> None:
    limits = Limits(max_plain_body=1000, max_request_bytes=1500)
    header = JobHeader(PUMP, (b"cc", b"-c", b"/x.c"), b"/")
    files = [FileEntry(b"/a", b"a" * 900), FileEntry(b"/b", b"b" * 900)]
    parser = RequestParser(limits, inline_inflate=10)
    parser.receive_data(encode_request(header, files=files))
    assert isinstance(parser.next_event(), JobHeader)
    first = parser.next_event()
    assert isinstance(first, Inflate) and first.limit == 1000
    assert parser.inflated(compression.decompress(first.packed, first.limit)) == files[0]
    second = parser.next_event()
    assert isinstance(second, Inflate) and second.limit == 600  # 1500 - 900
    with pytest.raises(compression.TooLarge):
        compression.decompress(second.packed, second.limit)


def test_an_inflate_must_be_answered_before_the_next_event() -> None:
    parser = RequestParser(inline_inflate=4)
    parser.receive_data(encode_request(JobHeader(LZO, (b"cc",)), source=b"x" * 100))
    with pytest.raises(LocalProtocolError):
        parser.inflated(b"")
    assert isinstance(parser.next_event(), JobHeader)
    assert isinstance(parser.next_event(), Inflate)
    with pytest.raises(LocalProtocolError):
        parser.next_event()


def test_a_bomb_is_refused_at_its_limit() -> None:
    """1 GiB of zeros is a 4.6 MB LZO body; a 1 MiB limit stops it after
    writing at most 1.33 MiB."""
    bomb = compression.compress(b"\0" * (64 << 20))
    assert len(bomb) < 400_000
    with pytest.raises(compression.TooLarge) as caught:
        compression.decompress(bomb, 1 << 20)
    assert isinstance(caught.value, RemoteProtocolError)
    with pytest.raises(compression.TooLarge):
        compression.decompress(b"\x11\0\0", 0)


def test_a_corrupt_body_is_not_too_large_but_corrupt() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        compression.decompress(b"\xff" * 50, 1 << 20)
    assert not isinstance(caught.value, compression.TooLarge)


def test_the_declared_size_is_known_from_the_token_alone() -> None:
    parser = RequestParser()
    head = encode_token(b"DIST", LZO) + encode_token(b"ARGC", 1) + encode_blob(b"ARGV", b"cc")
    parser.receive_data(head + encode_token(b"DOTI", 123_456))
    assert parser.declared == 0  # before next_event has reached the token
    assert isinstance(parser.next_event(), JobHeader)
    assert parser.next_event() is NEED_DATA
    assert parser.declared == 123_456
    assert parser.pending == 12
