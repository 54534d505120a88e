"""Host list syntax (distcc's), checked against the real distcc where installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccfarm.client.hosts import HostListError, hosts_from_environment, parse_hosts


@pytest.mark.parametrize(
    "text,host,port,slots,protocol,kind",
    [
        ("h1", "h1", 3632, 4, 1, "tcp"),
        ("h1:4000", "h1", 4000, 4, 1, "tcp"),
        ("h1/8", "h1", 3632, 8, 1, "tcp"),
        ("h1:4000/8", "h1", 4000, 8, 1, "tcp"),
        ("h1/8:4000", "h1", 4000, 8, 1, "tcp"),
        ("h1,lzo", "h1", 3632, 4, 2, "tcp"),
        ("h1:9/2,lzo", "h1", 9, 2, 2, "tcp"),
        ("h1,cpp,lzo", "h1", 3632, 4, 3, "tcp"),
        ("h1,lzo,cpp", "h1", 3632, 4, 3, "tcp"),
        ("[::1]", "::1", 3632, 4, 1, "tcp"),
        ("[::1]:5000/3", "::1", 5000, 3, 1, "tcp"),
        ("127.0.1.1:3632/2", "127.0.1.1", 3632, 2, 1, "tcp"),
        ("localhost", "localhost", 0, 2, 1, "local"),
        ("localhost/7", "localhost", 0, 7, 1, "local"),
        ("localhost:3632", "localhost", 3632, 4, 1, "tcp"),
        ("h1=8", "h1=8", 3632, 4, 1, "tcp"),
        ("user@h2", "h2", 0, 4, 1, "ssh"),
    ],
)
def test_entries(text: str, host: str, port: int, slots: int, protocol: int, kind: str) -> None:
    (spec,) = parse_hosts(text).hosts
    assert (spec.host, spec.port, spec.slots, spec.protocol, spec.kind) == (
        host,
        port,
        slots,
        protocol,
        kind,
    )
    assert spec.text == text


@pytest.mark.parametrize(
    "text",
    [
        "h1:abc",
        "h1/0",
        "h1/x",
        "h1,cpp",
        "h1,bogus",
        "[::1",
        ":3632",
        "--nonsense",
        "h1:",
        "localhost/0",
    ],
)
def test_errors(text: str) -> None:
    with pytest.raises(HostListError):
        parse_hosts(text)


def test_whole_list() -> None:
    listing = parse_hosts(
        "a/2 # comment b\n--randomize --localslots=3 b,down c,auth\n--localslots_cpp/9"
    )
    assert [h.host for h in listing.hosts] == ["a", "b", "c"]
    assert listing.randomize and listing.local_slots == 3 and listing.local_slots_cpp == 9
    assert [h.usable for h in listing.hosts] == [True, False, False]


def test_environment_precedence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = {str(tmp_path / "hosts"): "fromfile", "/etc/distcc/hosts": "etc"}
    read = files.get
    both = {"CCFARM_HOSTS": "a", "DISTCC_HOSTS": "b"}
    listing = hosts_from_environment(both, read_file=read)
    assert listing is not None and listing.hosts[0].host == "a" and listing.hosts[0].ccfarm
    listing = hosts_from_environment({"DISTCC_HOSTS": "b"}, read_file=read)
    assert listing is not None and not listing.hosts[0].ccfarm
    listing = hosts_from_environment({"DISTCC_DIR": str(tmp_path)}, read_file=read)
    assert listing is not None and listing.hosts[0].host == "fromfile"
    listing = hosts_from_environment({"HOME": "/nonexistent"}, read_file=read)
    assert listing is not None and listing.hosts[0].host == "etc"
    assert hosts_from_environment({"HOME": "/x"}, read_file=lambda p: None) is None


@given(st.text(max_size=60))
def test_arbitrary_text(text: str) -> None:
    with contextlib.suppress(HostListError):
        parse_hosts(text)


AGREE = [
    "h1",
    "h1:4000",
    "h1/8",
    "h1:4000/8,lzo",
    "h1/3:4000",
    "h1,cpp,lzo",
    "localhost/3",
    "a b/2 c:77",
    "[::1]:5000/3",
    "--randomize h1 h2",
]


@pytest.mark.skipif(
    shutil.which("distcc") is None and not os.environ.get("CI"), reason="distcc not installed"
)
@pytest.mark.parametrize("text", AGREE)
def test_agrees_with_real_distcc(text: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "DISTCC_HOSTS": text, "DISTCC_DIR": str(tmp_path)}
    proc = subprocess.run(["distcc", "-j"], env=env, capture_output=True, text=True, check=True)
    ours = parse_hosts(text)
    assert int(proc.stdout) == sum(h.slots for h in ours.hosts)
    shown = subprocess.run(
        ["distcc", "--show-hosts"], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(shown) == sorted(h.text for h in ours.hosts)
