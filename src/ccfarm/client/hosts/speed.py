"""This machine's speed in the hosts' units, for the scheduler's local-or-remote choice.

The number is what ccfarmd's probe (`daemon.probe.measure_speed`) gives on
a host: the reference compile's speed on one core, times the share of the
wall time it got (CPU quotas). It is measured once per machine, by the
first job that holds a free local slot (about half a second, in that slot),
and kept in the state directory (`state/speed_NODENAME`, a shared home
keeps one per machine) for `MAX_AGE`. While one job measures, the others
send no speed (the scheduler then only keeps a job here when no host is
free). `CCFARM_LOCAL_SPEED` pins it (`0`: never measure, send none).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

#: a measured speed is measured again after this many seconds (a week)
MAX_AGE = 7 * 24 * 3600.0


def speed_file(state: str) -> str:
    return os.path.join(state, "state", f"speed_{os.uname().nodename.replace('/', '_')}")


def local_speed(env: Mapping[str, str], state: str, compiler: str, *, now: float) -> float:
    """The pinned, cached or (once) measured speed of this machine; 0 if not known."""
    pinned = env.get("CCFARM_LOCAL_SPEED")
    if pinned is not None:
        try:
            value = float(pinned)
        except ValueError:
            return 0.0
        return value if 0 < value < float("inf") else 0.0
    path = speed_file(state)
    try:
        if now - os.stat(path).st_mtime < MAX_AGE:
            with open(path) as f:
                return _parse(f.read())
    except OSError:
        pass
    return _measure(state, path, compiler)


def _parse(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        return 0.0
    return value if 0 < value < float("inf") else 0.0


def _measure(state: str, path: str, compiler: str) -> float:
    """Measure with `compiler` (one job at a time: a lock file), and keep the result."""
    import fcntl

    from ccfarm.client.hosts.slots import make_state_dirs

    lock = os.path.join(state, "lock", "speed_probe")
    try:
        make_state_dirs(state)
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o666)
    except OSError:
        return 0.0
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0.0  # another job measures right now
        import subprocess

        from ccfarm.daemon.probe import measure_speed

        try:
            speed = measure_speed(compiler).speed
        except (OSError, subprocess.SubprocessError):  # no compiler, it failed: not known
            return 0.0
        temporary = f"{path}.{os.getpid()}"
        with contextlib.suppress(OSError):
            with open(temporary, "w") as f:
                f.write(f"{speed}\n")
            os.replace(temporary, path)
        return speed
    finally:
        os.close(fd)


__all__ = ["MAX_AGE", "local_speed", "speed_file"]
