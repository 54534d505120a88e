"""`ccfarm -j` and `ccfarm --show-hosts`: how many jobs to run at once, and on what.

distcc's two questions (`make -j$(distcc -j)`), answered the same way for
a host list: the sum of its entries' slots, and its entries one per line.
With `CCFARM_SCHEDULER`, the farm's answer: the slots of the scheduler's
hosts that take jobs (not leaving, disabled or quarantined) plus this
machine's local slots, and those hosts as host-list entries. A scheduler
that does not answer in `CCFARM_SCHEDULER_TIMEOUT` is passed over for the
next one, then for the host lists, with a warning.

The counting is pure (`level_of_list`, `level_of_farm`, `farm_entries`);
`answer` asks.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from ccfarm.client.hosts.hostlist import HostList, HostListError, hosts_from_environment

#: a host in these states takes no new jobs (the scheduler's `state` field)
_NOT_TAKING = frozenset({"leaving", "disabled", "quarantined"})
#: one host's record from the scheduler (`ccfarm-ctl hosts --json`'s fields)
Row = Mapping[str, object]


def level_of_list(listing: HostList | None, local_slots: int) -> int:
    """distcc's concurrency level: every entry's slots (`localhost/N` too).
    With no list or an empty one the jobs compile here: this machine's
    `local_slots` (distcc prints nothing there, which makes `make -j`
    start every job at once)."""
    if listing is None or not listing.hosts:
        return local_slots
    return sum(h.slots for h in listing.hosts)


def taking_jobs(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.get("state") not in _NOT_TAKING]


def level_of_farm(rows: Sequence[Row], local_slots: int) -> int:
    """The slots of the scheduler's hosts that take jobs, plus the local ones."""
    total = 0
    for row in taking_jobs(rows):
        slots = row.get("slots")
        if isinstance(slots, int) and slots > 0:
            total += slots
    return total + max(0, local_slots)


def farm_entries(rows: Sequence[Row]) -> list[str]:
    """The hosts that take jobs as host-list entries (`ADDRESS:PORT/SLOTS`,
    what CCFARM_HOSTS takes), by the scheduler's name where it gives no
    address. A record whose words are not an address, a port and a slot
    count is left out: they come from the network and go to a terminal or
    into a host list."""
    entries = []
    for row in taking_jobs(rows):
        address, port, slots = row.get("address"), row.get("port"), row.get("slots")
        if not isinstance(slots, int) or slots <= 0:
            continue
        if isinstance(address, str) and isinstance(port, int) and _plain(address):
            where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        elif isinstance(row.get("host"), str) and _plain(str(row["host"])):
            where = str(row["host"])
        else:
            continue
        entries.append(f"{where}/{slots}")
    return entries


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]%")


def _plain(word: str) -> bool:
    """A host name or address, nothing a terminal or a host list reads otherwise."""
    return 0 < len(word) <= 255 and all(c in _PLAIN for c in word)


def answer(option: str, env: Mapping[str, str]) -> int:
    """Print the answer to `-j` or `--show-hosts`; the exit status."""
    from ccfarm.cgroups import cpu_slots

    rows = _farm(env)
    if rows is not None:
        if option == "-j":
            print(level_of_farm(rows, cpu_slots()))
        else:
            for entry in farm_entries(rows):
                print(entry)
        return 0
    from ccfarm.client.job.run import read_text

    try:
        listing = hosts_from_environment(env, read_file=read_text)
    except HostListError as exc:
        sys.stderr.write(f"ccfarm: {exc}\n")
        return 101
    if option == "-j":
        print(level_of_list(listing, cpu_slots()))
    elif listing is not None:
        for host in listing.hosts:
            print(host.text)
    return 0


def _farm(env: Mapping[str, str]) -> Sequence[Row] | None:
    """The first answering scheduler's hosts; None without CCFARM_SCHEDULER
    or when none answers (each failure said on stderr)."""
    text = env.get("CCFARM_SCHEDULER", "")
    if not text:
        return None
    from ccfarm.client.job.ask import Unanswered, records
    from ccfarm.client.job.lease import parse_schedulers
    from ccfarm.client.job.plan import read_settings
    from ccfarm.control.messages import QUERY_HOSTS
    from ccfarm.errors import ConfigError
    from ccfarm.secretfile import secret_from
    from ccfarm.tls import CA_ENV, CERT_ENV, KEY_ENV, TLSFiles, client_from

    settings = read_settings(env)
    try:
        auth = (
            secret_from(settings.secret_file),
            client_from(TLSFiles(*settings.tls), (CERT_ENV, KEY_ENV, CA_ENV)),
        )
    except ConfigError as exc:
        sys.stderr.write(f"ccfarm: warning: {exc}; the host lists answer\n")
        return None
    for address in parse_schedulers(text):
        try:
            found = records(address, QUERY_HOSTS, auth, settings.scheduler_timeout)
        except Unanswered as exc:
            sys.stderr.write(f"ccfarm: warning: {exc}\n")
            continue
        return [_row(record) for record in found]
    sys.stderr.write("ccfarm: warning: no scheduler answered; the host lists answer\n")
    return None


def _row(record: Sequence[tuple[str, str]]) -> dict[str, object]:
    """A host's record with its numbers as numbers (slots, port)."""
    row: dict[str, object] = {}
    for key, value in record:
        row.setdefault(key, int(value) if key in ("slots", "port") and value.isdigit() else value)
    return row


__all__ = ["answer", "farm_entries", "level_of_farm", "level_of_list", "taking_jobs"]
