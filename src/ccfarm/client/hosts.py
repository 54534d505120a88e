"""Host lists in distcc's syntax (`DISTCC_HOSTS`, `CCFARM_HOSTS`), pure.

host  host:port  host/slots  host:port/slots  host/slots:port  [v6]:port/slots
localhost[/slots]     run locally
...,lzo  ...,cpp,lzo  ...,down  ...,auth    distcc options
--randomize  --localslots=N  --localslots_cpp=N
# comment to end of line
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from ccfarm._record import record, replace
from ccfarm.errors import ConfigError

DEFAULT_PORT = 3632
DEFAULT_SLOTS = 4
DEFAULT_LOCAL_SLOTS = 2


class HostListError(ConfigError):
    """The host list cannot be parsed; the whole list is rejected (as distcc)."""


@record
class HostSpec:
    text: str
    kind: str  # "tcp", "local" or "ssh"
    host: str
    port: int
    slots: int
    protocol: int  # 1, 2 or 3
    ccfarm: bool = False
    down: bool = False
    auth: bool = False

    @property
    def usable(self) -> bool:
        return self.kind in ("tcp", "local") and not self.down and not self.auth


@record
class HostList:
    hosts: tuple[HostSpec, ...]
    randomize: bool = False
    local_slots: int = 4
    local_slots_cpp: int = 8


def _int(text: str, what: str, entry: str, minimum: int) -> int:
    if not text.isdigit() or int(text) < minimum:
        raise HostListError(f"bad {what} {text!r} in host entry {entry!r}")
    return int(text)


def _port_and_slots(rest: str, entry: str) -> tuple[str | None, str | None]:
    """Split `:PORT/N`, `/N:PORT`, `:PORT`, `/N` or nothing (no regex: start-up time)."""
    if not rest:
        return None, None
    if rest[0] == ":":
        port, sep, slots = rest[1:].partition("/")
        return port, slots if sep else None
    if rest[0] == "/":
        slots, sep, port = rest[1:].partition(":")
        return port if sep else None, slots
    raise HostListError(f"cannot parse host entry {entry!r}")


def _local_slots_option(word: str) -> tuple[bool, str] | None:
    """(`_cpp` variant?, value) for `--localslots[_cpp]{=,/}N`, else None."""
    for prefix, cpp in (("--localslots_cpp", True), ("--localslots", False)):
        if word.startswith(prefix) and word[len(prefix) : len(prefix) + 1] in ("=", "/"):
            return cpp, word[len(prefix) + 1 :]
    return None


def parse_entry(entry: str) -> HostSpec:
    main, *options = entry.split(",")
    protocol, ccfarm, down, auth, lzo, cpp = 1, False, False, False, False, False
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
            ccfarm = lzo = True
        else:
            raise HostListError(f"unrecognized option {option!r} in host entry {entry!r}")
    if cpp and not lzo:
        raise HostListError(f"pump mode (,cpp) requires compression (,lzo) in {entry!r}")
    protocol = 3 if cpp else 2 if lzo else 1
    if "@" in main:
        host = main.split("@", 1)[1].split("/", 1)[0].split(":", 1)[0]
        return HostSpec(entry, "ssh", host, 0, DEFAULT_SLOTS, protocol, ccfarm, down, auth)
    if main == "localhost" or main.startswith("localhost/"):
        slots = DEFAULT_LOCAL_SLOTS
        if main != "localhost":
            slots = _int(main[len("localhost/") :], "slot count", entry, 1)
        return HostSpec(entry, "local", "localhost", 0, slots, protocol, ccfarm, down, auth)
    if main.startswith("["):
        end = main.find("]")
        if end < 0:
            raise HostListError(f"unterminated IPv6 address in {entry!r}")
        host, rest = main[1:end], main[end + 1 :]
    else:
        cut = min((i for i in (main.find(":"), main.find("/")) if i >= 0), default=len(main))
        host, rest = main[:cut], main[cut:]
    if not host:
        raise HostListError(f"empty host name in {entry!r}")
    port_text, slots_text = _port_and_slots(rest, entry)
    port = _int(port_text, "port", entry, 1) if port_text is not None else DEFAULT_PORT
    slots = _int(slots_text, "slot count", entry, 1) if slots_text is not None else DEFAULT_SLOTS
    return HostSpec(entry, "tcp", host, port, slots, protocol, ccfarm, down, auth)


def parse_hosts(text: str, *, ccfarm: bool = False) -> HostList:
    """Parse a whole list; `ccfarm=True` marks every TCP host as a ccfarmd."""
    hosts: list[HostSpec] = []
    randomize = False
    local_slots, local_cpp = 4, 8
    for line in text.splitlines():
        for word in line.split("#", 1)[0].split():
            if word == "--randomize":
                randomize = True
            elif option := _local_slots_option(word):
                value = _int(option[1], "slot count", word, 1)
                if option[0]:
                    local_cpp = value
                else:
                    local_slots = value
            elif word.startswith("--"):
                raise HostListError(f"unknown host list option {word!r}")
            elif word == "+zeroconf":
                continue  # Avahi discovery is not supported; distcc also skips it when absent
            else:
                spec = parse_entry(word)
                if ccfarm and spec.kind == "tcp":
                    spec = replace(spec, ccfarm=True)
                hosts.append(spec)
    return HostList(tuple(hosts), randomize, local_slots, local_cpp)


def hosts_from_environment(
    env: Mapping[str, str], *, read_file: Callable[[str], str | None]
) -> HostList | None:
    """CCFARM_HOSTS, else DISTCC_HOSTS, else distcc's host files; None if nothing."""
    if "CCFARM_HOSTS" in env:
        return parse_hosts(env["CCFARM_HOSTS"], ccfarm=True)
    if "DISTCC_HOSTS" in env:
        return parse_hosts(env["DISTCC_HOSTS"])
    home = env.get("HOME", "")
    distcc_dir = env.get("DISTCC_DIR") or os.path.join(home, ".distcc")
    for path in (os.path.join(distcc_dir, "hosts"), "/etc/distcc/hosts"):
        text = read_file(path)
        if text is not None:
            return parse_hosts(text)
    return None
