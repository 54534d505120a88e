"""The speed probe's result, kept across restarts (`--state-dir`).

The probe compiles a reference file twice before the host joins its
scheduler: about 2 s on a 0.3-CPU host, 14 s on a 0.075-CPU one, during
which a restarted host is missing from the farm. Its result depends on the
CPU, the CPU quota and the compiler, so it is kept under a key made of
those (`fingerprint`) and used again, without probing, while they are
unchanged; the jobs then refine it as they do a fresh probe's.

One file (`speed`) holds the results of every daemon of the machine (the
emulated hosts of a benchmark differ by quota), at most `KEEP`, newest
last. It is opened before the daemon gives up root and read and written
through that descriptor under a lock (shared to read, exclusive to
write); a file that cannot be
parsed counts as empty (the daemon probes, then writes it anew).

`fingerprint`, `recalled` and `remembered` are pure; `SpeedMemory` does the
file's I/O.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections.abc import Mapping
from typing import TypeGuard

from ccfarm.cgroups import effective_cpus
from ccfarm.daemon.probe import REFERENCE_COMPILER, SpeedEstimate, measure_speed

#: results kept in the file (a machine's daemons, each by its fingerprint)
KEEP = 16
#: the probe's version: a change to the reference compile forgets every result
PROBE_VERSION = 1
FILE_NAME = "speed"

log = logging.getLogger("ccfarmd")


def fingerprint(cpuinfo: str, cpus: float, compiler: str) -> str:
    """What a probe's result depends on: the CPU model (the first `model
    name`, else `CPU part`, line of /proc/cpuinfo), the CPUs this daemon may
    use (a quota counted) and the reference compiler (its path and mtime)."""
    model = ""
    for wanted in ("model name", "CPU part", "cpu model"):
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == wanted:
                model = value.strip()
                break
        if model:
            break
    return f"probe {PROBE_VERSION}; cpu {model or '?'}; cpus {cpus:.4g}; compiler {compiler}"


def recalled(text: str, key: str) -> tuple[float, float] | None:
    """(reference CPU seconds, reference wall seconds) stored under `key`."""
    return _entries(text).get(key)


def remembered(text: str, key: str, cpu: float, wall: float) -> str:
    """The file's text with (cpu, wall) stored under `key`, the oldest dropped."""
    entries = _entries(text)
    entries.pop(key, None)
    entries[key] = (cpu, wall)
    kept = list(entries.items())[-KEEP:]
    return json.dumps({k: {"cpu": c, "wall": w} for k, (c, w) in kept}, indent=1) + "\n"


def _entries(text: str) -> dict[str, tuple[float, float]]:
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    entries = {}
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        cpu, wall = value.get("cpu"), value.get("wall")
        if _sane(cpu) and _sane(wall):
            entries[str(key)] = (float(cpu), float(wall))
    return entries


def _sane(value: object) -> TypeGuard[float]:
    """A probe time: a number of seconds a reference compile can take."""
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and 1e-3 <= value <= 3600.0
    )


def default_state_dir(env: Mapping[str, str], euid: int) -> str:
    """systemd's `$STATE_DIRECTORY` (its first entry), else /var/lib/ccfarmd
    as root, else `$XDG_STATE_HOME/ccfarmd` (~/.local/state/ccfarmd)."""
    given = env.get("STATE_DIRECTORY", "")
    if given:
        return given.split(":")[0]
    if euid == 0:
        return "/var/lib/ccfarmd"
    base = env.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "ccfarmd")


def probed_speed(memory: SpeedMemory | None) -> tuple[SpeedEstimate, bool]:
    """This host's speed estimate, and whether it was remembered (else probed,
    and the result kept in `memory`)."""
    key = fingerprint(
        _text("/proc/cpuinfo"), effective_cpus(), _compiler_key(shutil.which(REFERENCE_COMPILER))
    )
    if memory is not None:
        got = memory.recall(key)
        if got is not None:
            return SpeedEstimate(*got), True
    estimate = measure_speed()
    if memory is not None:
        memory.store(key, estimate.reference_cpu, estimate.reference_wall)
    return estimate, False


def _compiler_key(path: str | None) -> str:
    if path is None:
        return "none"
    real = os.path.realpath(path)
    try:
        return f"{real} {os.stat(real).st_mtime_ns}"
    except OSError:
        return real


def _text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


class SpeedMemory:
    """The `speed` file, opened once (before root is given up)."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, directory: str) -> SpeedMemory | None:
        """The file in `directory` (made if missing), or None with a warning."""
        path = os.path.join(directory, FILE_NAME)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            log.warning("cannot keep the speed probe in %s (%s): probing at each start", path, exc)
            return None
        return cls(fd, path)

    def _read(self) -> str:
        chunks = []
        offset = 0
        while chunk := os.pread(self.fd, 65536, offset):
            chunks.append(chunk)
            offset += len(chunk)
            if offset > 1 << 20:  # not ours: start afresh
                return ""
        return b"".join(chunks).decode("utf-8", "replace")

    def recall(self, key: str) -> tuple[float, float] | None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            try:
                return recalled(self._read(), key)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc)
            return None

    def store(self, key: str, cpu: float, wall: float) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                data = remembered(self._read(), key, cpu, wall).encode()
                os.ftruncate(self.fd, 0)
                os.pwrite(self.fd, data, 0)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)


__all__ = [
    "KEEP",
    "SpeedMemory",
    "default_state_dir",
    "fingerprint",
    "probed_speed",
    "recalled",
    "remembered",
]
