"""`host[:port]` lists: every entry is a host and a real port, or a one-line error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccfarm.addresses import SCHEDULER_PORT, parse_address, parse_addresses, parse_port
from ccfarm.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sched", ("sched", SCHEDULER_PORT)),
        ("sched:4000", ("sched", 4000)),
        ("10.0.0.1:1", ("10.0.0.1", 1)),
        ("h:65535", ("h", 65535)),
        ("[::1]", ("::1", SCHEDULER_PORT)),
        ("[::1]:4000", ("::1", 4000)),
        ("fe80::1", ("fe80::1", SCHEDULER_PORT)),  # bare IPv6: no port to take
    ],
)
def test_good_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text, SCHEDULER_PORT) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("host:notaport", "'notaport'"),
        ("host:", "from 1 to 65535, not ''"),
        ("host:99999", "not '99999'"),
        ("host:0", "not '0'"),
        ("host:-1", "not '-1'"),
        ("host:+80", "not '+80'"),
        ("host:٣٦٣٤", "not"),  # digits, but not ASCII ones
        (":3634", "no host"),
        ("[::1", "expected [IPv6]"),
        ("[::1]x", "expected [IPv6]"),
        ("[::1]:", "not ''"),
        ("[]:80", "no host"),
    ],
)
def test_bad_addresses_are_one_line_errors(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_address(text, SCHEDULER_PORT)
    message = str(caught.value)
    assert says in message and repr(text) in message and "\n" not in message


def test_lists_split_on_commas_and_spaces_and_fail_on_any_bad_entry() -> None:
    assert parse_addresses(["a,b:1", "c d:2", ""], 9) == [("a", 9), ("b", 1), ("c", 9), ("d", 2)]
    with pytest.raises(ConfigError, match="'b:x'"):
        parse_addresses(["a,b:x"], 9)


@given(st.text(max_size=12))
def test_any_port_text_is_a_port_or_an_error(text: str) -> None:
    try:
        port = parse_port(text)
    except ConfigError:
        return
    assert 1 <= port <= 65535 and str(port) == text.lstrip("0") or text.startswith("0")
