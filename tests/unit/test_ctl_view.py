"""What ccfarm-ctl makes of the scheduler's text records, and which host a
name given by an operator means."""

from __future__ import annotations

import json

import pytest

from ccfarm.cli.ctlview import HOST_COLUMNS, HostNameError, match_host, table, typed_row

HOST_RECORD = (
    ("host", "b1:3632"), ("tier", "0"), ("speed", "1.5"), ("slots", "4"), ("offered", "3"),
    ("used", "1"), ("cpus", "4"), ("load", "0.25"), ("desktop", "0"), ("state", "up"),
    ("compiler", "gcc 12.2.0 x86_64-linux-gnu"), ("compiler", "clang 14.0.6 x86_64-pc-linux-gnu"),
)  # fmt: skip


def test_numbers_are_numbers_and_compilers_a_list() -> None:
    row = typed_row(HOST_RECORD)
    assert row["tier"] == 0 and row["slots"] == 4 and row["desktop"] == 0
    assert row["speed"] == 1.5 and row["load"] == 0.25
    assert row["compiler"] == ["gcc 12.2.0 x86_64-linux-gnu", "clang 14.0.6 x86_64-pc-linux-gnu"]
    text = json.dumps(row)
    assert '"slots": 4' in text and '"speed": 1.5' in text and '"compiler": [' in text


def test_jobs_keep_one_compiler_and_their_numbers() -> None:
    waiting = typed_row((("state", "waiting"), ("client", "m/u"), ("compiler", "any")), lists=False)
    running = typed_row((("lease", "7"), ("seconds", "2.5")), lists=False)
    assert waiting == {"state": "waiting", "client": "m/u", "compiler": "any"}
    assert running == {"lease": 7, "seconds": 2.5}


def test_unknown_fields_and_unreadable_numbers_stay_text() -> None:
    row = typed_row((("tier", "fast"), ("colour", "3"), ("load", "nan?")))
    assert row == {"tier": "fast", "colour": "3", "load": "nan?"}


def test_the_table_aligns_columns_and_joins_lists() -> None:
    rows = [typed_row(HOST_RECORD), typed_row((("host", "a-much-longer-name:1"), ("tier", "2")))]
    lines = table(rows, HOST_COLUMNS).splitlines()
    assert lines[0].split() == [c.upper() for c in HOST_COLUMNS]
    assert lines[1].split() == ["b1:3632", "0", "1.50", "1", "3", "4", "0.25", "0", "up"]
    assert lines[2].split() == ["a-much-longer-name:1", "2"]
    assert lines[1].index("0 ") == lines[0].index("TIER")
    assert "gcc 12.2.0 x86_64-linux-gnu; clang" in table(rows, ("compiler",))


HOSTS = ["build1:3632", "build10:3632", "build2:3632", "cache:3632"]


@pytest.mark.parametrize(
    ("given", "meant"),
    [("build1:3632", "build1:3632"), ("build1", "build1:3632"), ("build2", "build2:3632"),
     ("build1:", "build1:3632"), ("cache:36", "cache:3632"),
     ("c", "cache:3632"), ("build10", "build10:3632")],
)  # fmt: skip
def test_a_unique_prefix_names_its_host(given: str, meant: str) -> None:
    assert match_host(given, HOSTS) == meant


def test_an_ambiguous_or_unknown_name_is_an_error_naming_the_candidates() -> None:
    with pytest.raises(HostNameError, match="'build' is ambiguous: it matches build1:3632, "):
        match_host("build", HOSTS)
    with pytest.raises(HostNameError, match=r"no host matches 'x' \(build1:3632, build10"):
        match_host("x", HOSTS)
    with pytest.raises(HostNameError, match="the scheduler has no hosts"):
        match_host("x", [])
