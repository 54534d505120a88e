"""Job slots as lock files, shared by every wrapper process on this machine.

The files are named as distcc names them (`lock/cpu_tcp_HOST_PORT_N`,
`lock/cpu_localhost_N`) and held with the same `fcntl` write locks, so a
ccfarm and a distcc using one state directory respect each other's limits.
(Each file gets both an flock and an fcntl lock: see `_try_lock`.) A
backed-off host has `lock/backoff_tcp_HOST_PORT_0`, fresh for
`backoff_period` seconds (its mtime is the mark).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from ccfarm.client.hosts import HostSpec

MYPY = False
if MYPY:  # `random` is imported only when a list asks for --randomize (start-up time)
    import random


def state_dir(env: Mapping[str, str]) -> str:
    path = env.get("CCFARM_DIR") or env.get("DISTCC_DIR")
    if not path:
        path = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".distcc")
    return path


class Slot:
    """A held slot; `release()` (or leaving the `with` block) frees it."""

    def __init__(self, spec: HostSpec | None, fd: int, number: int) -> None:
        self.spec = spec
        self.fd = fd
        self.number = number

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _lock_dir(state: str) -> str:
    path = os.path.join(state, "lock")
    with contextlib.suppress(OSError):
        os.makedirs(path, exist_ok=True)
    return path


def _slot_name(spec: HostSpec | None, n: int) -> str:
    if spec is None or spec.kind == "local":
        return f"cpu_localhost_{n}"
    return f"cpu_tcp_{spec.host}_{spec.port}_{n}"


def _backoff_path(state: str, spec: HostSpec) -> str:
    return os.path.join(state, "lock", f"backoff_tcp_{spec.host}_{spec.port}_0")


def _try_lock(path: str) -> int | None:
    """Lock `path` with flock (exclusive per open file, so also between the
    threads or slots of one process) and with an fcntl lock (what distcc
    takes, so distcc and ccfarm exclude each other)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return None
        raise
    return fd


def is_backed_off(state: str, spec: HostSpec, *, now: float, period: float) -> bool:
    try:
        return now - os.stat(_backoff_path(state, spec)).st_mtime < period
    except FileNotFoundError:
        return False


def mark_backoff(state: str, spec: HostSpec) -> None:
    _lock_dir(state)
    with open(_backoff_path(state, spec), "wb") as f:
        f.write(b"x")


def clear_backoff(state: str, spec: HostSpec) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_backoff_path(state, spec))


def _try_round(lock_dir: str, hosts: Sequence[HostSpec]) -> Slot | None:
    """One breadth-first pass: slot 0 of every host, then slot 1, ..."""
    most = max((h.slots for h in hosts), default=0)
    for n in range(most):
        for spec in hosts:
            if n < spec.slots:
                fd = _try_lock(os.path.join(lock_dir, _slot_name(spec, n)))
                if fd is not None:
                    return Slot(spec, fd, n)
    return None


def acquire_slot(
    state: str,
    hosts: Sequence[HostSpec],
    *,
    now: float,
    backoff_period: float,
    sleep: Callable[[float], None],
    pause: float = 1.0,
    deadline: float | None = None,
    rng: random.Random | None = None,
    randomize: bool = False,
    clock: Callable[[], float] | None = None,
) -> Slot | None:
    """A free slot on a usable host, waiting while all are busy.

    Returns None when no host is usable (all down or backed off) or when
    `deadline` (a `clock()` time) passes.
    """
    usable = [
        h
        for h in hosts
        if h.usable
        and not (h.kind == "tcp" and is_backed_off(state, h, now=now, period=backoff_period))
    ]
    if randomize:
        if rng is None:
            import random

            rng = random.Random()
        rng.shuffle(usable)
    if not usable:
        return None
    lock_dir = _lock_dir(state)
    while True:
        slot = _try_round(lock_dir, usable)
        if slot is not None:
            return slot
        if deadline is not None and (clock or (lambda: now))() >= deadline:
            return None
        sleep(pause)


def acquire_local_slot(
    state: str,
    count: int,
    *,
    sleep: Callable[[float], None],
    pause: float = 1.0,
    deadline: float | None = None,
    clock: Callable[[], float] | None = None,
) -> Slot | None:
    """One of this machine's `count` local compile slots."""
    local = HostSpec("localhost", "local", "localhost", 0, count, 1)
    return acquire_slot(
        state,
        [local],
        now=0.0,
        backoff_period=0.0,
        sleep=sleep,
        pause=pause,
        deadline=deadline,
        clock=clock,
    )
