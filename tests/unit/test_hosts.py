"""Host list syntax (distcc's), table-driven, and checked against the real distcc if installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccfarm.client.hosts.hostlist import (
    CPU_COUNT,
    MAX_SLOTS,
    HostList,
    HostListError,
    HostSpec,
    hosts_from_environment,
    parse_entry,
    parse_hosts,
)
from ccfarm.client.job.farmsize import farm_entries, level_of_farm, level_of_list

# text -> (kind, host, port, slots, protocol, ccfarm, down, auth)
ENTRIES: dict[str, tuple[str, str, int, int, int, bool, bool, bool]] = {
    "h1": ("tcp", "h1", 3632, 4, 1, False, False, False),
    "h1:4000": ("tcp", "h1", 4000, 4, 1, False, False, False),
    "h1/8": ("tcp", "h1", 3632, 8, 1, False, False, False),
    "h1/08": ("tcp", "h1", 3632, 8, 1, False, False, False),
    "h1:4000/8": ("tcp", "h1", 4000, 8, 1, False, False, False),
    "h1/8:4000": ("tcp", "h1", 4000, 8, 1, False, False, False),
    "h1:1/1": ("tcp", "h1", 1, 1, 1, False, False, False),
    "h1:65535": ("tcp", "h1", 65535, 4, 1, False, False, False),
    f"h1/{MAX_SLOTS}": ("tcp", "h1", 3632, MAX_SLOTS, 1, False, False, False),
    "build-7.example.org": ("tcp", "build-7.example.org", 3632, 4, 1, False, False, False),
    "127.0.1.1:3632/2": ("tcp", "127.0.1.1", 3632, 2, 1, False, False, False),
    "h1=8": ("tcp", "h1=8", 3632, 4, 1, False, False, False),  # '=' is part of the name
    "-h1": ("tcp", "-h1", 3632, 4, 1, False, False, False),
    # IPv6 literals
    "[::1]": ("tcp", "::1", 3632, 4, 1, False, False, False),
    "[::1]:5000": ("tcp", "::1", 5000, 4, 1, False, False, False),
    "[::1]/3": ("tcp", "::1", 3632, 3, 1, False, False, False),
    "[::1]:5000/3": ("tcp", "::1", 5000, 3, 1, False, False, False),
    "[fe80::1%eth0]/2:7000,lzo": ("tcp", "fe80::1%eth0", 7000, 2, 2, False, False, False),
    # options
    "h1,lzo": ("tcp", "h1", 3632, 4, 2, False, False, False),
    "h1:9/2,lzo": ("tcp", "h1", 9, 2, 2, False, False, False),
    "h1,cpp,lzo": ("tcp", "h1", 3632, 4, 3, False, False, False),
    "h1,lzo,cpp": ("tcp", "h1", 3632, 4, 3, False, False, False),
    "h1,lzo,lzo": ("tcp", "h1", 3632, 4, 2, False, False, False),
    "h1,down": ("tcp", "h1", 3632, 4, 1, False, True, False),
    "h1/2,lzo,down": ("tcp", "h1", 3632, 2, 2, False, True, False),
    "h1,auth": ("tcp", "h1", 3632, 4, 1, False, False, True),
    "h1,auth=host/h1@REALM": ("tcp", "h1", 3632, 4, 1, False, False, True),
    "h1,auth=": ("tcp", "h1", 3632, 4, 1, False, False, True),
    "h1,ccfarm": ("tcp", "h1", 3632, 4, 2, True, False, False),
    "h1,ccfarm,lzo": ("tcp", "h1", 3632, 4, 2, True, False, False),
    "h1,ccfarm,cpp": ("tcp", "h1", 3632, 4, 3, True, False, False),
    # localhost: exactly `localhost` or `localhost/...`
    "localhost": ("local", "localhost", 0, 2, 1, False, False, False),
    "localhost/7": ("local", "localhost", 0, 7, 1, False, False, False),
    "localhost/3,down": ("local", "localhost", 0, 3, 1, False, True, False),
    "localhost:3632": ("tcp", "localhost", 3632, 4, 1, False, False, False),
    "localhost,lzo": ("tcp", "localhost", 3632, 4, 2, False, False, False),
    "localhost=3": ("tcp", "localhost=3", 3632, 4, 1, False, False, False),
    "localhostx": ("tcp", "localhostx", 3632, 4, 1, False, False, False),
    "127.0.0.1": ("tcp", "127.0.0.1", 3632, 4, 1, False, False, False),
    # ssh
    "user@h2": ("ssh", "h2", 0, 4, 1, False, False, False),
    "@h2": ("ssh", "h2", 0, 4, 1, False, False, False),
    "user@h2/3": ("ssh", "h2", 0, 3, 1, False, False, False),
    "user@h2:/opt/bin/distccd": ("ssh", "h2", 0, 4, 1, False, False, False),
    "user@h2/3:/opt/distcc/bin/distccd,lzo": ("ssh", "h2", 0, 3, 2, False, False, False),
    "u@h2,lzo,cpp,down": ("ssh", "h2", 0, 4, 3, False, True, False),
}


@pytest.mark.parametrize("text", list(ENTRIES))
def test_entry(text: str) -> None:
    (spec,) = parse_hosts(text).hosts
    kind, host, port, slots, protocol, ccfarm, down, auth = ENTRIES[text]
    assert (spec.kind, spec.host, spec.port, spec.slots) == (kind, host, port, slots)
    assert (spec.protocol, spec.ccfarm, spec.down, spec.auth) == (protocol, ccfarm, down, auth)
    assert spec.text == text
    assert parse_entry(text) == spec


# text -> words the message must contain
ERRORS = {
    "h1:abc": "port 'abc'",
    "h1:": "port ''",
    "h1:0": "port '0'",
    "h1:65536": "port '65536'",
    "h1:-1": "port '-1'",
    "h1:+80": "port '+80'",
    "h1:8_0": "port '8_0'",
    "h1:\u0661\u0662": "port",  # Arabic-Indic digits: int() would take them
    "h1:4000x": "port '4000x'",
    "h1:4000:5": "port '4000:5'",
    "h1:40/3:50": "slot count '3:50'",
    "h1/0": "slot count '0'",
    "h1/": "slot count ''",
    "h1/x": "slot count 'x'",
    "h1/-3": "slot count '-3'",
    "h1/8x": "slot count '8x'",
    "h1/3:4000/5": "port '4000/5'",
    f"h1/{MAX_SLOTS + 1}": "slot count",
    "h1/" + "9" * 5000: "slot count",  # int() refuses more than 4300 digits
    "h1,cpp": "requires compression",
    "h1,cpp,down": "requires compression",
    "h1,bogus": "unrecognized option 'bogus'",
    "h1,lzox": "unrecognized option 'lzox'",
    "h1,": "unrecognized option ''",
    "h1,,lzo": "unrecognized option ''",
    "h1,LZO": "unrecognized option 'LZO'",
    "[::1": "closing ']'",
    "[]": "no host name",
    "[]:3632": "no host name",
    "[a/b]": "bad character",
    "[::1]x": "unexpected 'x'",
    "[::1]=3": "unexpected '=3'",
    ":3632": "no host name",
    "/4": "no host name",
    ",lzo": "no host name",
    "h\x00st": "bad character",
    "h\x1bst": "bad character",
    "a\xa0b": "bad character",  # not ASCII whitespace, so part of the entry
    "localhost/0": "slot count '0'",
    "localhost/": "slot count ''",
    "localhost/3:9": "slot count '3:9'",
    "localhost/2,bogus": "unrecognized option",
    "u@": "no host name",
    "u@/3": "no host name",
    "u@h/0": "slot count '0'",
    "u@h/x:cmd": "slot count 'x'",
    "u@h,cpp": "requires compression",
    "--nonsense": "unknown host list option '--nonsense'",
    "--randomizer": "unknown host list option",
    "--localslots": "unknown host list option '--localslots'",
    "--localslots=": "slot count ''",
    "--localslots=0": "slot count '0'",
    "--localslots:3": "unknown host list option",
    "--localslots_cpp=x": "slot count 'x'",
    "--localslots_cppx=3": "unknown host list option",
    "h1 h2,bogus h3": "h2,bogus",  # one bad entry rejects the whole list
}


@pytest.mark.parametrize("text", list(ERRORS))
def test_error(text: str) -> None:
    with pytest.raises(HostListError) as info:
        parse_hosts(text)
    assert ERRORS[text] in str(info.value)


def test_whole_list() -> None:
    listing = parse_hosts(
        "a/2 # comment b\n--randomize --localslots=3 b,down\tc,auth\r\n--localslots_cpp/9 u@d"
    )
    assert [h.text for h in listing.hosts] == ["a/2", "b,down", "c,auth", "u@d"]
    assert listing.randomize and listing.local_slots == 3 and listing.local_slots_cpp == 9
    assert [h.usable for h in listing.hosts] == [True, False, False, False]
    assert parse_hosts("localhost/3").hosts[0].usable


def test_list_defaults() -> None:
    assert parse_hosts("") == HostList((), False, CPU_COUNT, 8)  # local compiles: one per CPU
    assert parse_hosts("h1 localhost/3").local_slots == 3  # distcc's localhost/N
    assert parse_hosts("localhost/3 --localslots=5").local_slots == 5
    assert parse_hosts("localhost/3,down").local_slots == CPU_COUNT
    assert parse_hosts(" \n# only a comment\n\t") == HostList(())
    assert parse_hosts("--localslots/5 --localslots_cpp=1") == HostList((), False, 5, 1)
    assert parse_hosts("--localslots=5 --localslots=6").local_slots == 6


@pytest.mark.parametrize(
    "text,texts",
    [
        ("a b  c", ["a", "b", "c"]),
        ("a\tb\nc\rd\fe\vf", ["a", "b", "c", "d", "e", "f"]),
        ("a#b c\nd", ["a", "d"]),  # '#' inside a word starts a comment too
        ("a # b\rc", ["a", "c"]),  # a comment ends at CR as well
        ("#a\n#b\n", []),
        ("+zeroconf a", ["a"]),  # Avahi discovery is not supported: no hosts from it
    ],
)
def test_separators_and_comments(text: str, texts: list[str]) -> None:
    assert [h.text for h in parse_hosts(text).hosts] == texts


def test_ccfarm_list_marks_tcp_hosts() -> None:
    listing = parse_hosts("a b,lzo c,cpp,lzo localhost/2 u@d [::1]:9", ccfarm=True)
    got = [(h.text, h.kind, h.ccfarm, h.protocol) for h in listing.hosts]
    assert got == [
        ("a", "tcp", True, 2),  # ccfarm implies lzo
        ("b,lzo", "tcp", True, 2),
        ("c,cpp,lzo", "tcp", True, 3),
        ("localhost/2", "local", False, 1),
        ("u@d", "ssh", False, 1),
        ("[::1]:9", "tcp", True, 2),
    ]


def test_host_spec_is_frozen_value() -> None:
    spec = parse_entry("h1/2")
    assert spec == HostSpec("h1/2", "tcp", "h1", 3632, 2, 1)
    assert hash(spec) == hash(HostSpec("h1/2", "tcp", "h1", 3632, 2, 1))
    with pytest.raises(AttributeError):
        spec.slots = 3  # type: ignore[misc]


class Files:
    """A fake `read_file` that records which paths were asked for."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.asked: list[str] = []

    def __call__(self, path: str) -> str | None:
        self.asked.append(path)
        return self.files.get(path)


def _hosts(env: dict[str, str], files: Files) -> list[str] | None:
    listing = hosts_from_environment(env, read_file=files)
    return None if listing is None else [h.text for h in listing.hosts]


def test_environment_precedence() -> None:
    files = Files(
        {"/d/hosts": "fromdir", "/h/.distcc/hosts": "fromhome", "/etc/distcc/hosts": "etc"}
    )
    both = {"CCFARM_HOSTS": "a", "DISTCC_HOSTS": "b", "DISTCC_DIR": "/d", "HOME": "/h"}
    assert _hosts(both, files) == ["a"]
    assert _hosts({"DISTCC_HOSTS": "b", "DISTCC_DIR": "/d"}, files) == ["b"]
    assert files.asked == []
    assert _hosts({"DISTCC_DIR": "/d", "HOME": "/h"}, files) == ["fromdir"]
    assert _hosts({"HOME": "/h"}, files) == ["fromhome"]
    assert _hosts({"DISTCC_DIR": "/nowhere", "HOME": "/h"}, files) == ["etc"]
    assert files.asked[-2:] == ["/nowhere/hosts", "/etc/distcc/hosts"]
    files.asked.clear()
    assert _hosts({}, files) == ["etc"]  # no HOME: only the system file
    assert files.asked == ["/etc/distcc/hosts"]
    assert _hosts({"HOME": "/x"}, Files({})) is None


def test_environment_semantics() -> None:
    none = Files({})
    ccfarm = hosts_from_environment({"CCFARM_HOSTS": "a localhost"}, read_file=none)
    assert ccfarm is not None and [h.ccfarm for h in ccfarm.hosts] == [True, False]
    distcc = hosts_from_environment({"DISTCC_HOSTS": "a"}, read_file=none)
    assert distcc is not None and not distcc.hosts[0].ccfarm
    files = Files({"/etc/distcc/hosts": "a"})
    from_file = hosts_from_environment({}, read_file=files)
    assert from_file is not None and not from_file.hosts[0].ccfarm
    # set but empty still counts (as distcc): an empty list, not the next source
    assert _hosts({"CCFARM_HOSTS": "", "DISTCC_HOSTS": "b"}, files) == []
    assert _hosts({"DISTCC_HOSTS": ""}, files) == []
    with pytest.raises(HostListError):
        hosts_from_environment({"DISTCC_HOSTS": "h1/0"}, read_file=files)


SYNTAX = list("h1[]:/,@#=-+ \t\n\r0123456789") + ["lzo", "cpp", "down", "auth", "ccfarm"]
SYNTAX += ["localhost", "--randomize", "--localslots", "--localslots_cpp", "::1", "\u0661"]


@given(st.one_of(st.text(), st.lists(st.sampled_from(SYNTAX), max_size=20).map("".join)))
def test_arbitrary_text_parses_or_raises_host_list_error(text: str) -> None:
    try:
        listing = parse_hosts(text)
    except HostListError:
        return
    assert isinstance(listing, HostList)
    for spec in listing.hosts:
        assert spec.text and spec.text in text
        assert spec.host and "/" not in spec.host
        assert 1 <= spec.slots <= MAX_SLOTS
        assert spec.protocol in (1, 2, 3)
        assert spec.kind != "tcp" or 1 <= spec.port <= 65535


@given(
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True).filter(lambda h: h != "localhost"),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    slots=st.one_of(st.none(), st.integers(1, MAX_SLOTS)),
    slots_first=st.booleans(),
    options=st.sampled_from(["", ",lzo", ",cpp,lzo", ",down", ",auth", ",ccfarm"]),
)
def test_generated_entries(
    host: str, port: int | None, slots: int | None, slots_first: bool, options: str
) -> None:
    port_part = "" if port is None else f":{port}"
    slots_part = "" if slots is None else f"/{slots}"
    middle = slots_part + port_part if slots_first else port_part + slots_part
    (spec,) = parse_hosts(host + middle + options).hosts
    assert (spec.kind, spec.host, spec.port, spec.slots) == ("tcp", host, port or 3632, slots or 4)


# Lists the real distcc 3.4 accepts; ours must give the same entries and slot total.
AGREE = [
    *(t for t, e in ENTRIES.items() if "ccfarm" not in t and "%" not in t and e[3] <= 64),
    "a b/2 c:77",
    "a\tb/2\n# c/9\nd:77,lzo",
    "--randomize h1 h2/3",
    "--localslots=1 --localslots_cpp/2 h1",
    "h1,auth=a@B",
]
# Entries distcc 3.4 accepts but we refuse (it ignores trailing text, takes any
# strtol/atoi result); every other entry of ERRORS distcc rejects too.
STRICTER_THAN_DISTCC = {
    "h1:",
    "h1:0",
    "h1:65536",
    "h1:-1",
    "h1:+80",
    "h1:40/3:50",
    "h1/-3",
    "h1/8x",
    f"h1/{MAX_SLOTS + 1}",
    "h1/3:4000/5",
    "h1,lzox",
    "[::1]x",
    "[::1]=3",
    "h\x1bst",
    "localhost/3:9",
    "localhost/2,bogus",
}
# Not passable through the environment, or not comparable (distcc reads bytes)
COMPARE_ERRORS = [t for t in ERRORS if t.isascii() and "\x00" not in t and len(t) < 100]
COMPARE_ERRORS = [t for t in COMPARE_ERRORS if not t.startswith("--")]  # distcc: host names

needs_distcc = pytest.mark.skipif(shutil.which("distcc") is None, reason="distcc not installed")


def _distcc(args: str, hosts: str, tmp_path: Path) -> str:
    env = {**os.environ, "DISTCC_HOSTS": hosts, "DISTCC_DIR": str(tmp_path)}
    return subprocess.run(
        ["distcc", args], env=env, capture_output=True, text=True, timeout=30
    ).stdout


@pytest.mark.interop
@needs_distcc
@pytest.mark.parametrize("text", AGREE)
def test_agrees_with_real_distcc(text: str, tmp_path: Path) -> None:
    ours = parse_hosts(text)
    assert int(_distcc("-j", text, tmp_path)) == level_of_list(ours, local_slots=0)
    shown = _distcc("--show-hosts", text, tmp_path).splitlines()
    if ours.randomize:
        shown.sort()
    expected = [h.text for h in ours.hosts]
    assert shown == (sorted(expected) if ours.randomize else expected)


@pytest.mark.interop
@needs_distcc
@pytest.mark.parametrize("text", COMPARE_ERRORS)
def test_rejects_what_real_distcc_rejects(text: str, tmp_path: Path) -> None:
    with pytest.raises(HostListError):
        parse_hosts(text)
    distcc_rejects = _distcc("-j", text, tmp_path) == ""
    assert distcc_rejects == (text not in STRICTER_THAN_DISTCC)


@pytest.mark.interop
@needs_distcc
@pytest.mark.parametrize("text", ["h1/3 h2:4000/2,lzo localhost", "h1 --randomize h2/7"])
def test_ccfarm_j_and_show_hosts_answer_as_distcc(text: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC_", "CCFARM_"))}
    env.update({"DISTCC_HOSTS": text, "DISTCC_DIR": str(tmp_path), "CCFARM_HELPER": "0"})
    for option in ("-j", "--show-hosts"):
        ours = subprocess.run(
            ["ccfarm", option], env=env, capture_output=True, text=True, timeout=30
        )
        assert ours.returncode == 0 and ours.stderr == ""
        theirs = _distcc(option, text, tmp_path)
        if "--randomize" in text:  # distcc shows the list shuffled
            assert sorted(ours.stdout.splitlines()) == sorted(theirs.splitlines())
        else:
            assert ours.stdout == theirs, option


def test_farm_level_counts_hosts_that_take_jobs() -> None:
    rows = [
        {"host": "a:1", "address": "127.0.1.1", "port": 3632, "slots": 4, "state": "up"},
        {"host": "b:1", "address": "::1", "port": 3633, "slots": 2, "state": "busy"},
        {"host": "c:1", "address": "127.0.1.3", "port": 3632, "slots": 8, "state": "disabled"},
        {"host": "d:1", "address": "127.0.1.4", "port": 3632, "slots": 8, "state": "leaving"},
        {"host": "e:1", "address": "127.0.1.5", "port": 3632, "slots": 8, "state": "quarantined"},
        {"host": "f:1", "slots": 1, "state": "probation"},
    ]
    assert level_of_farm(rows, local_slots=3) == 4 + 2 + 1 + 3
    assert level_of_farm([], local_slots=2) == 2
    assert farm_entries(rows) == ["127.0.1.1:3632/4", "[::1]:3633/2", "f:1/1"]
    hostile = [
        {"host": "x", "address": "\x1b]0;owned\x07", "port": 1, "slots": 2, "state": "up"},
        {"host": "y --randomize", "slots": 2, "state": "up"},
        {"host": "z", "address": "127.0.1.9", "port": 1, "slots": "2", "state": "up"},
        {"host": "w", "address": "127.0.1.9", "port": "1;", "slots": 3, "state": "up"},
    ]
    assert farm_entries(hostile) == ["x/2", "w/3"]  # x: by its name
    assert level_of_list(None, local_slots=5) == 5
    assert level_of_list(parse_hosts(""), local_slots=5) == 5  # distcc: nothing at all
