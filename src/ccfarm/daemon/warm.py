"""Warm job rooms, decided: the script a waiting shell runs, and the pool's rules.

Pure. A *room* is a job directory with a shell already started for it
(`/bin/sh -s`, in the job sandbox when there is one), waiting on its
standard input; `daemon/process.py` starts rooms and `daemon/pool.py`
keeps a few ready, so that a job's compiler starts by one `exec` instead of
a whole sandbox's start-up (user, mount, PID and network namespaces). This
module says what the shell is sent (`job_script`), what its output means
(`started_output`), and when the pool starts, hands out and retires rooms.

The script is one brace group, parsed whole before any of it runs: a cut
script is a syntax error that runs nothing. It moves to the job's working
directory, makes the environment exactly the job's (the room's was the
daemon's, plus `TMPDIR`), prints `MARKER` and `exec`s the compiler with
`/dev/null` for input. Every step is joined by `&&`: if anything fails, no
marker is printed and the compiler never ran, so the job is started afresh
(`started_output` returns None), never answered as a compile error.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: what the shell prints on the compiler's standard output just before `exec`
MARKER = b"ccfarmd-exec\n"
#: variables the shell sets itself (dash: at start, and on `cd`): always made the job's
ALWAYS_RESET = ("PWD", "OLDPWD")
#: variables the shell rewrites when it inherits them: made the job's when either has them
SHELL_OWNED = ("IFS", "LINENO", "OPTIND", "PPID", "PS1", "PS2", "PS4")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def shell_name(name: str) -> bool:
    """Can a POSIX shell set or unset a variable of this name?"""
    return _NAME.match(name) is not None


def job_script(
    program: str,
    args: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    room_env: Mapping[str, str],
) -> bytes | None:
    """The script that turns a room started with `room_env` into `program args`
    run in `cwd` with exactly `env`; None when a shell cannot do that (a
    variable whose name it cannot set, or that it dropped at start)."""
    if any(not shell_name(k) for k in env) or "\0" in cwd:
        return None  # (the shell drops such names from what it inherited)
    names = sorted(set(env) | set(room_env) | set(ALWAYS_RESET))
    exports: list[str] = []
    unsets: list[str] = []
    for name in names:
        reset = name in ALWAYS_RESET or name in SHELL_OWNED
        if name in env:
            if reset or room_env.get(name) != env[name]:
                exports.append(f"{name}={shlex.quote(env[name])}")
        elif reset or name in room_env:
            if not shell_name(name):
                continue  # dropped by the shell already: not in the compiler's either
            unsets.append(name)
    if any("\0" in a for a in (program, *args, *env.values())):
        return None
    steps = [f"cd -- {shlex.quote(cwd)}"]
    if unsets:
        steps.append("unset " + " ".join(unsets))
    if exports:
        steps.append("export " + " ".join(exports))
    marker = MARKER.decode().replace("\n", "\\n")
    steps.append(f"printf '{marker}'")
    command = " ".join(shlex.quote(a) for a in (program, *args))
    steps.append(f"exec {command} </dev/null")
    return ("{ " + " &&\n  ".join(steps) + "\n}\n").encode()


def compiler_env(env: Mapping[str, str], cwd: str, *, sandboxed: bool) -> dict[str, str]:
    """The environment a compiler started afresh gets: the job's, and in the
    sandbox `PWD` of its working directory (bwrap sets it)."""
    return {**env, "PWD": cwd} if sandboxed else dict(env)


def started_output(stdout: bytes) -> bytes | None:
    """The compiler's own standard output, or None when the room's shell
    never reached the compiler (no marker: it died, or a step failed)."""
    if not stdout.startswith(MARKER):
        return None
    return stdout[len(MARKER) :]


def returncode(code: int | None, *, sandboxed: bool) -> int | None:
    """asyncio's returncode of the compiler's process: bwrap exits 128 + N when
    the compiler died of signal N, which reads as "killed by signal N"."""
    if sandboxed and code is not None and 128 < code <= 128 + 64:
        return 128 - code
    return code


# -- the pool ---------------------------------------------------------------------

#: a room's extra read-only directories (the compiler's installation outside
#: the host's system paths); a job uses a room only when these are its own
Binds = tuple[str, ...]
#: seconds the pool waits before starting rooms again after one failed
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class PoolRules:
    """How many rooms a daemon keeps, from its settings."""

    #: ready rooms wanted (0: none; a job's room then starts when its request arrives)
    size: int
    #: job slots: at most this many rooms are handed out and not yet finished, so
    #: that connections waiting for a slot hold no processes
    jobs: int

    def to_start(self, ready: int, starting: int, attached: int, *, draining: bool) -> int:
        """Rooms to start now for the pool, given those ready, being started
        and handed out: the pool's size, fewer while the handed-out ones
        exceed the job slots (they are waiting jobs'); none once draining."""
        if draining:
            return 0
        room = self.size - ready - starting
        room = min(room, self.size + self.jobs - ready - starting - attached)
        return max(0, room)

    def may_attach(self, attached: int) -> bool:
        """May one more connection hold a room (else it gets a bare job directory,
        and its compiler starts afresh once it has a slot)?"""
        return attached < self.jobs


def pick(ready: Sequence[Binds], wanted: Binds) -> int | None:
    """The ready room (its index, oldest first) whose binds are the job's."""
    for index, binds in enumerate(ready):
        if binds == wanted:
            return index
    return None


def retire(ready: Sequence[Binds], wanted: Binds, size: int) -> list[int]:
    """Ready rooms to stop (indexes, oldest first): beyond `size`, those made
    for another compiler than the latest job's (the pool follows the jobs)."""
    extra = len(ready) - size
    found: list[int] = []
    for index, binds in enumerate(ready):
        if extra <= len(found):
            break
        if binds != wanted:
            found.append(index)
    return found


def backoff(failures: int) -> float:
    """Seconds before the pool starts rooms again after `failures` in a row
    (rooms that could not start or died before their job: a broken sandbox
    must not make the daemon spin)."""
    if failures <= 0:
        return 0.0
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2.0 ** (failures - 1))


__all__ = [
    "MARKER",
    "PoolRules",
    "backoff",
    "compiler_env",
    "job_script",
    "pick",
    "retire",
    "returncode",
    "shell_name",
    "started_output",
]
