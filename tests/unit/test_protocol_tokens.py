"""Token framing: 4 name bytes + 8 hex digits; lowercase out, either case in."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccfarm.errors import LocalProtocolError, RemoteProtocolError
from ccfarm.protocol.tokens import TOKEN_SIZE, describe, encode_blob, encode_token, parse_token
from tests.unit.conftest import PROTOCOL_MARKS

pytestmark = PROTOCOL_MARKS

names = st.binary(min_size=4, max_size=4)
values = st.integers(0, 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("name", "value", "wire"),
    [
        (b"DIST", 1, b"DIST00000001"),
        (b"DOTO", 0x458, b"DOTO00000458"),
        (b"ARGV", 0xABCDEF, b"ARGV00abcdef"),
        (b"STAT", 0x7600, b"STAT00007600"),
        (b"DIST", 0x43460001, b"DIST43460001"),
        (b"SERR", 0, b"SERR00000000"),
        (b"DOTI", 0xFFFFFFFF, b"DOTIffffffff"),
    ],
)
def test_encode_token_writes_eight_lowercase_digits(name: bytes, value: int, wire: bytes) -> None:
    assert encode_token(name, value) == wire
    assert parse_token(wire) == (name, value)


@given(names, values)
def test_encode_parse_round_trip(name: bytes, value: int) -> None:
    token = encode_token(name, value)
    assert len(token) == TOKEN_SIZE and token[:4] == name
    assert all(c in b"0123456789abcdef" for c in token[4:])  # never uppercase
    assert parse_token(token) == (name, value)
    assert parse_token(bytearray(token)) == parse_token(memoryview(token)) == (name, value)


@given(names, values)
def test_uppercase_and_mixed_case_hex_are_accepted(name: bytes, value: int) -> None:
    """distcc reads values with strtoul(..., 16), so uppercase is valid input."""
    digits = b"%08X" % value
    assert parse_token(name + digits) == (name, value)
    mixed = bytes(c ^ 0x20 if i % 2 and c >= 0x61 else c for i, c in enumerate(b"%08x" % value))
    assert parse_token(name + mixed) == (name, value)


@pytest.mark.parametrize(
    "digits",
    [
        b"0000000g",
        b"0000000G",
        b" 0000001",  # strtoul would skip the space; we are strict
        b"+0000001",
        b"-0000001",
        b"0x000001",
        b"0X000001",
        b"0000_001",  # Python's int() would take the underscore
        b"0000001\n",
        b"0000001\x00",
        b"\xef\xbc\x9100000",  # a full-width digit in UTF-8
        b"        ",
    ],
)
def test_bad_hex_is_refused(digits: bytes) -> None:
    assert len(digits) == 8
    with pytest.raises(RemoteProtocolError, match="bad token value"):
        parse_token(b"ARGV" + digits)


@given(st.binary(min_size=8, max_size=8))
def test_any_eight_bytes_parse_or_are_refused(digits: bytes) -> None:
    hex_digits = all(c in b"0123456789abcdefABCDEF" for c in digits)
    if hex_digits:
        assert parse_token(b"NAME" + digits) == (b"NAME", int(digits, 16))
    else:
        with pytest.raises(RemoteProtocolError):
            parse_token(b"NAME" + digits)


@pytest.mark.parametrize("raw", [b"", b"DIST", b"DIST0000000", b"DIST000000001"])
def test_a_token_is_exactly_twelve_bytes(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="short token"):
        parse_token(raw)


def test_names_are_not_checked_by_parse_token() -> None:
    """Any 4 bytes make a name; the parsers decide which names they accept."""
    assert parse_token(b"\x00\xff ?00000010") == (b"\x00\xff ?", 16)
    assert parse_token(b"dist00000001") == (b"dist", 1)


@pytest.mark.parametrize("value", [-1, 1 << 32, 1 << 40])
def test_encode_token_refuses_values_outside_32_bits(value: int) -> None:
    with pytest.raises(LocalProtocolError, match="out of range"):
        encode_token(b"DOTO", value)


@pytest.mark.parametrize("name", [b"", b"DIS", b"DISTX", b"ARGVARGV"])
def test_encode_token_refuses_names_not_four_bytes(name: bytes) -> None:
    with pytest.raises(LocalProtocolError, match="4 bytes"):
        encode_token(name, 1)


@given(names, st.binary(max_size=300))
def test_encode_blob_is_token_with_length_then_payload(name: bytes, payload: bytes) -> None:
    blob = encode_blob(name, payload)
    assert blob == encode_token(name, len(payload)) + payload
    assert parse_token(blob[:TOKEN_SIZE]) == (name, len(payload))


def test_describe_is_printable_and_short() -> None:
    assert describe(b"GET / HTTP/1.1\r\n") == repr("GET / HTTP/1.1..")
    shown = ast.literal_eval(describe(bytes(range(256)) * 4))
    assert len(shown) == 64 and shown.isprintable()
    assert describe(b"\x00\xff") == repr("..")
