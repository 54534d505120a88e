"""Is someone using this machine's desktop? Pluggable sources of "last input".

none            never (servers; the default)
file:PATH       PATH's modification time is the time of the last input
                (any tool that touches a file on input can feed it)
command:CMD     CMD prints the seconds since the last input (for X11,
                `xprintidle` prints milliseconds: use `command:xprintidle-s`
                or a small wrapper)
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable

from ccfarm.errors import ConfigError

IdleSeconds = Callable[[], float | None]  # None: no desktop / unknown


def parse_source(spec: str) -> IdleSeconds:
    kind, _, arg = spec.partition(":")
    if kind == "none":
        return lambda: None
    if kind == "file" and arg:
        return lambda: _file_idle(arg)
    if kind == "command" and arg:
        argv = shlex.split(arg)
        return lambda: _command_idle(argv)
    raise ConfigError(f"bad --desktop-activity {spec!r} (none, file:PATH, command:CMD)")


def _file_idle(path: str) -> float | None:
    try:
        return max(0.0, time.time() - os.stat(path).st_mtime)
    except OSError:
        return None


def _command_idle(argv: list[str]) -> float | None:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=5, check=True).stdout
        return float(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def desktop_in_use(source: IdleSeconds, idle_threshold: float) -> bool:
    idle = source()
    return idle is not None and idle < idle_threshold
