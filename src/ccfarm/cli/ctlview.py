"""What `ccfarm-ctl` shows of a scheduler's answers, and which host an
operator means. Pure: records in, rows and text out.

The control protocol carries every field as text (`messages`); the scheduler
sends numbers in fixed columns and the host's compilers as repeated
`compiler` fields. Here they become JSON numbers and a list again, by the
column's name; a field this version does not know (a newer scheduler's)
stays text, so `--json` never fails on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "HOST_COLUMNS",
    "JOB_COLUMNS",
    "HostNameError",
    "Value",
    "match_host",
    "table",
    "typed_row",
]

HOST_COLUMNS = (
    "host", "tier", "speed", "claimed", "observed", "used", "offered", "slots", "load", "desktop",
    "state",
)  # fmt: skip
JOB_COLUMNS = ("state", "lease", "host", "client", "seconds", "compiler")
_INTS = frozenset({"tier", "slots", "offered", "used", "cpus", "desktop", "lease", "port"})
_FLOATS = frozenset({"speed", "load", "seconds"})
#: fields a record may repeat: a list in JSON, joined by "; " in the table
_LISTS = frozenset({"compiler"})

Value = str | int | float | list[str]


class HostNameError(Exception):
    """No host, or more than one, matches what the operator wrote."""


def typed_row(fields: Iterable[tuple[str, str]], lists: bool = True) -> dict[str, Value]:
    """One record's fields: numbers as numbers, repeated fields as a list
    (with `lists` False, only the hosts' compilers are a list)."""
    row: dict[str, Value] = {}
    for key, text in fields:
        if key in _LISTS and lists:
            listed = row.setdefault(key, [])
            if isinstance(listed, list):
                listed.append(text)
        else:
            row[key] = _number(key, text)
    return row


def _number(key: str, text: str) -> str | int | float:
    try:
        if key in _INTS:
            return int(text)
        if key in _FLOATS:
            return float(text)
    except ValueError:
        pass  # an answer this version cannot read stays as it came
    return text


def _cell(value: Value | None) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(value)
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) or abs(value) >= 100 else f"{value:.2f}"
    return str(value)


def table(rows: Sequence[dict[str, Value]], columns: Sequence[str]) -> str:
    """Rows as aligned columns under upper-case headings."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def match_host(given: str, hosts: Sequence[str]) -> str:
    """The host `given` names: itself; else the only host of that name on
    some port (`build1` for `build1:3632`, though `build10:3632` exists);
    else the only host whose name starts with it (`build2` for `build2.lan:3632`)."""
    if given in hosts:
        return given
    named = [h for h in hosts if h.rpartition(":")[0] == given]
    found = named if named else [h for h in hosts if h.startswith(given)]
    if len(found) == 1:
        return found[0]
    if not found:
        known = ", ".join(hosts) if hosts else "the scheduler has no hosts"
        raise HostNameError(f"no host matches {given!r} ({known})")
    raise HostNameError(f"{given!r} is ambiguous: it matches {', '.join(found)}")
