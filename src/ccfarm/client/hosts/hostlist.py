"""Host lists in distcc's syntax (`DISTCC_HOSTS`, `CCFARM_HOSTS`), pure.

    host  host:port  host/slots  host:port/slots  host/slots:port  [v6]  [v6]:port/slots
    localhost  localhost/slots        compile here (2 slots unless given)
    user@host[/slots][:command]       ssh (parsed, not supported by the client)
    ...,lzo  ...,cpp,lzo  ...,down  ...,auth[=principal]  ...,ccfarm
    --randomize  --localslots=N  --localslots_cpp=N   (`/` works in place of `=`)
    # comment to end of line

Entries are separated by ASCII whitespace. Any error rejects the whole list,
as in distcc. Where distcc 3.4 is lax this parser refuses instead: trailing
text after an entry (`h1/8x`, `[::1]x`, `h1,lzox`), ports outside 1..65535
or empty (`h1:`), negative slot counts, unknown `--words` (distcc takes them
for host names), `:PORT` and `/N` given twice. Everything distcc accepts
sanely parses to the same hosts, slots and verbatim text (the unit tests
compare with the real `distcc --show-hosts` and `distcc -j`).

No regex and no dataclasses: the wrapper parses a list on every compile job.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ccfarm._record import record, replace
from ccfarm.addresses import DAEMON_PORT as DEFAULT_PORT
from ccfarm.errors import ConfigError

MYPY = False
if MYPY:  # `typing` is not imported at run time (start-up time)
    from typing import Literal

    HostKind = Literal["tcp", "local", "ssh"]
    ProtocolVersion = Literal[1, 2, 3]


DEFAULT_SLOTS = 4  # a remote host
DEFAULT_LOCALHOST_SLOTS = 2  # a `localhost` entry
CPU_COUNT = -1  # a slot count meaning "this machine's CPUs" (the shell counts them)
DEFAULT_LOCAL_SLOTS = CPU_COUNT  # --localslots: local fallback compiles
DEFAULT_LOCAL_SLOTS_CPP = 8  # --localslots_cpp: local preprocessing
MAX_SLOTS = 4096  # more is a typo, and each slot may become a lock file

_SPACE = "\t\v\f"  # besides " ", "\r" and "\n": ASCII whitespace only, as distcc


class HostListError(ConfigError):
    """The host list cannot be parsed; the whole list is rejected (as distcc)."""


@record
class HostSpec:
    """One entry of a host list; `text` is the entry exactly as written."""

    text: str
    kind: HostKind  # "tcp" (a server), "local" (compile here), "ssh" (unsupported)
    host: str  # "localhost" for local entries
    port: int  # 0 for local and ssh entries
    slots: int
    protocol: ProtocolVersion  # distcc protocol version: 1 plain, 2 lzo, 3 pump
    ccfarm: bool = False  # a ccfarmd: speak the ccfarm extension
    down: bool = False
    auth: bool = False  # GSS-API wanted: not supported, so never used

    @property
    def usable(self) -> bool:
        """May jobs be sent here (or run here, for `localhost`) at all?"""
        return self.kind != "ssh" and not self.down and not self.auth


@record
class HostList:
    hosts: tuple[HostSpec, ...]
    randomize: bool = False
    local_slots: int = DEFAULT_LOCAL_SLOTS
    local_slots_cpp: int = DEFAULT_LOCAL_SLOTS_CPP
    zeroconf: bool = False  # `+zeroconf` was listed (Avahi discovery: not supported)


def _number(text: str, what: str, entry: str, high: int) -> int:
    """A decimal 1..high (ASCII digits only: `int` also takes `١٢` and `1_0`)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not 1 <= int(text) <= high:
        raise HostListError(f"bad {what} {text!r} in host entry {entry!r} (want 1..{high})")
    return int(text)


def _slots(text: str, entry: str) -> int:
    return _number(text, "slot count", entry, MAX_SLOTS)


def _check_host(host: str, entry: str) -> str:
    if not host:
        raise HostListError(f"no host name in host entry {entry!r}")
    if "/" in host or not host.isprintable():
        raise HostListError(f"bad character in host name {host!r} (entry {entry!r})")
    return host


def _cut(text: str, stops: str) -> tuple[str, str]:
    """`text` split before the first character that is in `stops`."""
    at = min((i for i in map(text.find, stops) if i >= 0), default=len(text))
    return text[:at], text[at:]


def _options(options: list[str], entry: str) -> tuple[ProtocolVersion, bool, bool, bool]:
    """(protocol, ccfarm, down, auth) from the `,option` words of an entry."""
    lzo = cpp = ccfarm = down = auth = False
    for option in options:
        if option == "lzo":
            lzo = True
        elif option == "cpp":
            cpp = True
        elif option == "down":
            down = True
        elif option == "auth" or option.startswith("auth="):
            auth = True
        elif option == "ccfarm":
            ccfarm = True
        else:
            raise HostListError(f"unrecognized option {option!r} in host entry {entry!r}")
    lzo = lzo or ccfarm
    if cpp and not lzo:
        raise HostListError(f"pump mode (,cpp) requires compression (,lzo) in {entry!r}")
    protocol: ProtocolVersion = 3 if cpp else 2 if lzo else 1
    return protocol, ccfarm, down, auth


def _local(entry: str, main: str, options: list[str]) -> HostSpec:
    slots = DEFAULT_LOCALHOST_SLOTS
    if main != "localhost":
        slots = _slots(main[len("localhost/") :], entry)
    return HostSpec(entry, "local", "localhost", 0, slots, *_options(options, entry))


def _ssh(entry: str, main: str, options: list[str]) -> HostSpec:
    """`[USER]@HOST[/N][:COMMAND]`: `@HOST` is the current user."""
    host, rest = _cut(main.partition("@")[2], "/:")
    slots = DEFAULT_SLOTS
    if rest.startswith("/"):
        slots = _slots(rest[1:].partition(":")[0], entry)  # then `:COMMAND`, any text
    host = _check_host(host, entry)
    return HostSpec(entry, "ssh", host, 0, slots, *_options(options, entry))


def _tcp(entry: str, main: str, options: list[str]) -> HostSpec:
    """`HOST` or `[V6]`, then nothing, `:PORT`, `/N`, `:PORT/N` or `/N:PORT`."""
    if main.startswith("["):
        end = main.find("]")
        if end < 0:
            raise HostListError(f"IPv6 address without closing ']' in {entry!r}")
        host, rest = main[1:end], main[end + 1 :]
    else:
        host, rest = _cut(main, "/:")
    host = _check_host(host, entry)
    port_text = slots_text = None
    if rest.startswith(":"):
        port_text, slash, slots_text = rest[1:].partition("/")
        slots_text = slots_text if slash else None
    elif rest.startswith("/"):
        slots_text, colon, port_text = rest[1:].partition(":")
        port_text = port_text if colon else None
    elif rest:
        raise HostListError(f"unexpected {rest!r} after the host name in {entry!r}")
    port = DEFAULT_PORT if port_text is None else _number(port_text, "port", entry, 65535)
    slots = DEFAULT_SLOTS if slots_text is None else _slots(slots_text, entry)
    return HostSpec(entry, "tcp", host, port, slots, *_options(options, entry))


def parse_entry(entry: str) -> HostSpec:
    """One host entry (no whitespace in it)."""
    main, *options = entry.split(",")
    # distcc looks at the whole entry: `localhost,lzo` is a TCP host named localhost
    if entry == "localhost" or entry.startswith("localhost/"):
        return _local(entry, main, options)
    if "@" in main:
        return _ssh(entry, main, options)
    return _tcp(entry, main, options)


def _words(text: str) -> list[str]:
    """The whitespace-separated words of `text`, `#` comments removed."""
    words: list[str] = []
    for line in text.replace("\r", "\n").split("\n"):
        line = line.partition("#")[0]
        for space in _SPACE:
            line = line.replace(space, " ")
        words.extend(w for w in line.split(" ") if w)
    return words


def _local_slots_option(word: str) -> tuple[str, int] | None:
    """("local_slots" or "local_slots_cpp", N) for `--localslots[_cpp]{=,/}N`."""
    for prefix, field in (
        ("--localslots_cpp", "local_slots_cpp"),
        ("--localslots", "local_slots"),
    ):
        if word.startswith(prefix) and word[len(prefix) : len(prefix) + 1] in ("=", "/"):
            return field, _slots(word[len(prefix) + 1 :], word)
    return None


def parse_hosts(text: str, *, ccfarm: bool = False) -> HostList:
    """Parse a whole host list; `ccfarm=True` makes every TCP host a ccfarmd."""
    hosts: list[HostSpec] = []
    settings: dict[str, int] = {}
    randomize = zeroconf = False
    for word in _words(text):
        if word == "--randomize":
            randomize = True
        elif word.startswith("--"):
            option = _local_slots_option(word)
            if option is None:
                raise HostListError(f"unknown host list option {word!r}")
            settings[option[0]] = option[1]
        elif word == "+zeroconf":
            zeroconf = True  # Avahi discovery is not supported: contributes no hosts
        else:
            spec = parse_entry(word)
            if ccfarm and spec.kind == "tcp":
                spec = replace(spec, ccfarm=True, protocol=max(spec.protocol, 2))
            hosts.append(spec)
    # local fallback compiles: --localslots, else a `localhost/N` entry's N, else the CPUs
    here = next((h.slots for h in hosts if h.kind == "local" and h.usable), DEFAULT_LOCAL_SLOTS)
    return HostList(
        tuple(hosts),
        randomize,
        settings.get("local_slots", here),
        settings.get("local_slots_cpp", DEFAULT_LOCAL_SLOTS_CPP),
        zeroconf,
    )


def hosts_from_environment(
    env: Mapping[str, str], *, read_file: Callable[[str], str | None]
) -> HostList | None:
    """The host list in use, or None when there is none.

    `CCFARM_HOSTS` (every TCP entry a ccfarmd), else `DISTCC_HOSTS`, both
    honoured even when empty; else the first readable file of
    `$DISTCC_DIR/hosts` (default `$HOME/.distcc/hosts`) and
    `/etc/distcc/hosts`. `read_file(path)` gives a file's text or None.
    Raises HostListError if the list found cannot be parsed.
    """
    if "CCFARM_HOSTS" in env:
        return parse_hosts(env["CCFARM_HOSTS"], ccfarm=True)
    if "DISTCC_HOSTS" in env:
        return parse_hosts(env["DISTCC_HOSTS"])
    paths = ["/etc/distcc/hosts"]
    top = env.get("DISTCC_DIR") or (os.path.join(env["HOME"], ".distcc") if env.get("HOME") else "")
    if top:
        paths.insert(0, os.path.join(top, "hosts"))
    for path in paths:
        text = read_file(path)
        if text is not None:
            return parse_hosts(text)
    return None


__all__ = [
    "DEFAULT_LOCALHOST_SLOTS",
    "DEFAULT_LOCAL_SLOTS",
    "DEFAULT_LOCAL_SLOTS_CPP",
    "DEFAULT_PORT",
    "DEFAULT_SLOTS",
    "MAX_SLOTS",
    "HostList",
    "HostListError",
    "HostSpec",
    "hosts_from_environment",
    "parse_entry",
    "parse_hosts",
]
