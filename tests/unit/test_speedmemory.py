"""The speed probe kept across a daemon's restarts: keys, the file's text, its I/O."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccfarm.daemon.speedmemory import (
    KEEP,
    SpeedMemory,
    default_state_dir,
    fingerprint,
    recalled,
    remembered,
)

X86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) 2.20GHz\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n"


def test_fingerprint_names_what_the_result_depends_on() -> None:
    key = fingerprint(X86, 0.3, "/usr/bin/x86_64-linux-gnu-gcc-12 17")
    assert "Intel(R) Xeon(R) 2.20GHz" in key and "cpus 0.3;" in key and "gcc-12 17" in key
    assert "0xd0c" in fingerprint(ARM, 2, "gcc")
    assert "cpu ?;" in fingerprint("", 1, "gcc")
    # a quota, a CPU or a compiler of its own: another result
    keys = {
        fingerprint(X86, 0.3, "gcc 1"),
        fingerprint(X86, 0.075, "gcc 1"),
        fingerprint(ARM, 0.3, "gcc 1"),
        fingerprint(X86, 0.3, "gcc 2"),
    }
    assert len(keys) == 4


def test_stored_then_recalled_by_its_key_only() -> None:
    text = remembered("", "a", 0.25, 0.5)
    text = remembered(text, "b", 0.3, 4.0)
    assert recalled(text, "a") == (0.25, 0.5)
    assert recalled(text, "b") == (0.3, 4.0)
    assert recalled(text, "c") is None
    again = remembered(text, "a", 0.2, 0.2)  # a new probe replaces the old
    assert recalled(again, "a") == (0.2, 0.2) and list(json.loads(again)) == ["b", "a"]


def test_the_file_keeps_the_newest_results() -> None:
    text = ""
    for i in range(KEEP + 5):
        text = remembered(text, f"k{i}", 0.25, 0.5)
    kept = list(json.loads(text))
    assert kept == [f"k{i}" for i in range(5, KEEP + 5)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        '{"a": 3}',
        '{"a": {"cpu": "0.25", "wall": 0.5}}',
        '{"a": {"cpu": true, "wall": 0.5}}',
        '{"a": {"cpu": 0, "wall": 0.5}}',
        '{"a": {"cpu": 0.25, "wall": 1e9}}',
        '{"a": {"cpu": NaN, "wall": 0.5}}',
        '{"a": {"cpu": 0.25}}',
    ],
)
def test_anything_but_a_sane_result_is_no_result(text: str) -> None:
    assert recalled(text, "a") is None
    assert recalled(remembered(text, "b", 1.0, 2.0), "b") == (1.0, 2.0)  # and is rewritten


@given(st.text(max_size=200))
def test_any_text_reads_and_rewrites(text: str) -> None:
    recalled(text, "a")
    assert recalled(remembered(text, "a", 0.5, 0.5), "a") == (0.5, 0.5)


def test_default_directory() -> None:
    assert default_state_dir({"STATE_DIRECTORY": "/var/lib/ccfarmd:/x"}, 0) == "/var/lib/ccfarmd"
    assert default_state_dir({}, 0) == "/var/lib/ccfarmd"
    assert default_state_dir({"XDG_STATE_HOME": "/h/s"}, 1000) == "/h/s/ccfarmd"
    assert default_state_dir({}, 1000).endswith("/.local/state/ccfarmd")


def test_memory_file_round_trip_and_sharing(tmp_path: Path) -> None:
    where = tmp_path / "deep" / "state"
    first, second = SpeedMemory.open(str(where)), SpeedMemory.open(str(where))
    assert first is not None and second is not None
    assert first.recall("k") is None
    first.store("k", 0.25, 0.75)
    second.store("other", 1.0, 1.0)  # two daemons of one machine, one file
    assert first.recall("k") == (0.25, 0.75) and first.recall("other") == (1.0, 1.0)
    (where / "speed").write_text("garbage")
    assert second.recall("k") is None
    second.store("k", 0.5, 0.5)
    assert recalled((where / "speed").read_text(), "k") == (0.5, 0.5)


def test_memory_refuses_a_link_and_an_unusable_directory(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("{}")
    os.symlink(tmp_path / "target", tmp_path / "speed")
    assert SpeedMemory.open(str(tmp_path)) is None  # O_NOFOLLOW: never written through a link
    (tmp_path / "file").write_text("")
    assert SpeedMemory.open(str(tmp_path / "file")) is None
