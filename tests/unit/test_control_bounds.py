"""Control messages: every number in range, every name bounded, any field
values give a record or a RemoteProtocolError; and the first-bytes sniffing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.control import messages as m
from ccfarm.control.codec import Message, MessageParser, encode, hello
from ccfarm.control.sniff import CONTROL, DISTCC, HTTP, UNKNOWN, connection_kind
from ccfarm.errors import RemoteProtocolError

HOST = {"host": "h1", "address": "10.0.0.1", "port": "3632", "slots": "4", "cpus": "4"}
LREQ = {"id": "1", "client": "m/u", "timeout": "60"}


def _message(kind: str, fields: dict[str, str], **changes: str) -> Message:
    return Message(kind, (tuple({**fields, **changes}.items()),))


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"slots": "4097"}, "slots=4097 is out of range"),
        ({"slots": "1000000"}, "slots=1000000 is out of range"),
        ({"slots": "-5"}, "needs an integer 'slots'"),
        ({"cpus": "70000"}, "cpus=70000 is out of range"),
        ({"speed": "inf"}, "needs a number 'speed'"),
        ({"speed": "nan"}, "needs a number 'speed'"),
        ({"speed": "-1"}, "needs a number 'speed'"),
        ({"speed": "1e7"}, "speed=1e7 is out of range"),
        ({"speed": "1" * 400}, "needs a number 'speed'"),
        ({"load": "1e300"}, "load=1e300 is out of range"),
        ({"external": "infinity"}, "needs a number 'external'"),
        ({"running": "9" * 17}, "running=9999"),
        ({"host": "h" * 256}, "host of 256 characters is too long"),
        ({"address": "a" * 300}, "address of 300 characters"),
        ({"protocols": ",".join(["2"] * 17)}, "17 protocols"),
        ({"protocols": "99999999999"}, "protocols=99999999999 is out of range"),
    ],
)
def test_host_reports_out_of_range_are_refused_with_the_reason(
    changes: dict[str, str], says: str
) -> None:
    with pytest.raises(RemoteProtocolError, match=says.replace("(", r"\(")):
        m.decode_host_report(_message(m.HOST_REPORT, HOST, **changes))


def test_a_host_may_list_32_compilers_not_more() -> None:
    fields = tuple(HOST.items())
    compilers = tuple(("compiler", f"gcc {i}.0 x86_64-linux-gnu") for i in range(33))
    ok = m.decode_host_report(Message(m.HOST_REPORT, (fields + compilers[:32],)))
    assert len(ok.compilers) == 32
    with pytest.raises(RemoteProtocolError, match="33 compilers"):
        m.decode_host_report(Message(m.HOST_REPORT, (fields + compilers,)))
    with pytest.raises(RemoteProtocolError, match="compiler of 300 characters"):
        m.decode_host_report(Message(m.HOST_REPORT, (fields + (("compiler", "g" * 300),),)))


def test_the_edges_of_the_ranges_are_accepted() -> None:
    report = m.decode_host_report(
        _message(m.HOST_REPORT, HOST, slots="4096", speed="1e6", cpus="65536", host="h" * 255)
    )
    assert (report.slots, report.speed, report.cpus) == (4096, 1e6, 65536)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"size": "1" + "0" * 400}, "needs an integer 'size'"),
        ({"size": str((1 << 40) + 1)}, "size=1099511627777 is out of range"),
        ({"timeout": "inf"}, "needs a number 'timeout'"),
        ({"timeout": "1e9"}, "timeout=1e9 is out of range"),
        ({"client": "c" * 256}, "client of 256 characters"),
        ({"id": "-1"}, "needs an integer 'id'"),
    ],
)
def test_lease_requests_out_of_range_are_refused(changes: dict[str, str], says: str) -> None:
    with pytest.raises(RemoteProtocolError, match=says):
        m.decode_lease_request(_message(m.LEASE_REQUEST, LREQ, **changes), 1)


def test_a_failure_reason_is_bounded() -> None:
    with pytest.raises(RemoteProtocolError, match="reason of 1001 characters"):
        m.decode_host_failed(_message(m.HOST_FAILED, {"lease": "1", "reason": "r" * 1001}))


# -- any field values: a record or a RemoteProtocolError, nothing else ---------------------

DECODERS: dict[str, Callable[[Message], object]] = {
    m.HOST_REPORT: m.decode_host_report,
    m.LEASE_REQUEST: lambda msg: m.decode_lease_request(msg, 1),
    m.LEASE_RELEASE: m.decode_release,
    m.HOST_FAILED: m.decode_host_failed,
    m.HOST_LEAVING: m.decode_host_name,
    m.LEASE_GRANTED: m.decode_granted,
    m.LEASE_REFUSED: m.decode_refused,
    m.LEASE_REVOKED: m.decode_revoked,
    m.LEASE_QUEUED: m.decode_queued,
}
KEYS = sorted(
    {*HOST, *LREQ, "speed", "load", "running", "desktop", "compiler", "protocols", "external"}
    | {"size", "lease", "reason", "express"}
)
values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-0", "0x10", "1_0", "٣", "1e-400", ""]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(DECODERS)),
    st.lists(st.tuples(st.sampled_from(KEYS), values), max_size=14),
)
def test_any_field_values_give_a_record_or_a_protocol_error(
    kind: str, fields: list[tuple[str, str]]
) -> None:
    message = Message(kind, (tuple(fields),))
    with contextlib.suppress(RemoteProtocolError):
        DECODERS[kind](message)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 50))
def test_the_scheduler_parser_takes_any_bytes_within_its_bound(data: bytes, chunk: int) -> None:
    """After a hello, any bytes give messages or a RemoteProtocolError, and the
    parser never holds more than one message's worth (MAX_MESSAGE_IN)."""
    parser = MessageParser(expect_hello=True, max_message=m.MAX_MESSAGE_IN)
    stream = hello() + data
    try:
        for i in range(0, len(stream), chunk):
            parser.receive_data(stream[i : i + chunk])
            for message in parser.messages():
                assert message.kind.isupper()
            assert parser.buffered <= m.MAX_MESSAGE_IN + 12 + chunk
        parser.receive_eof()
        list(parser.messages())
    except RemoteProtocolError:
        pass


def test_a_message_longer_than_the_scheduler_takes_is_refused_from_its_token() -> None:
    parser = MessageParser(expect_hello=True, max_message=m.MAX_MESSAGE_IN)
    parser.receive_data(hello() + b"HOST%08x" % (m.MAX_MESSAGE_IN + 1))
    with pytest.raises(RemoteProtocolError, match="too large"):
        list(parser.messages())
    assert len(encode(m.HOST_REPORT, HOST)) < m.MAX_MESSAGE_IN


# -- first bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (hello(), CONTROL),
        (b"CCFC", CONTROL),
        (b"DIST00000002", DISTCC),
        (b"GET / HTTP/1.1\r\n", HTTP),
        (b"POST", HTTP),
        (b"HEAD", HTTP),
        (b"\x16\x03\x01\x02", UNKNOWN),  # a TLS hello
        (b"CCF", UNKNOWN),
        (b"", UNKNOWN),
        (b"ccfc", UNKNOWN),
    ],
)
def test_connection_kinds(first: bytes, kind: str) -> None:
    assert connection_kind(first) == kind


@given(st.binary(max_size=16))
def test_any_first_bytes_have_a_kind(first: bytes) -> None:
    kind = connection_kind(first)
    assert kind in (CONTROL, DISTCC, HTTP, UNKNOWN)
    assert (kind == CONTROL) == first.startswith(b"CCFC")
    assert connection_kind(bytearray(first)) == kind
