"""Job slots as lock files, shared by every wrapper process on this machine.

A slot is an empty file in `STATE/lock/`, named as distcc names it
(`cpu_tcp_HOST_PORT_N`, `cpu_localhost_N`) and held with the same kind of
lock: an exclusive, non-blocking `fcntl` write lock on the whole file
(`fcntl.lockf`). So the limits hold across all concurrent ccfarm wrappers,
and a ccfarm and a distcc sharing one state directory respect each other's.

`fcntl` locks belong to a process, not to a file descriptor: a second lock
taken by the same process on the same file succeeds, and closing *any*
descriptor of that file drops the process's lock. So this module keeps a
table of the lock files this process holds (or is trying) and never opens
one of those a second time.

A backed-off host has `lock/backoff_tcp_HOST_PORT_0` whose mtime is less
than `backoff_period` seconds old (distcc's mark, one byte `x`).

Clock and sleep are parameters: tests wait on a fake clock, never for real.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable, Sequence

from ccfarm.client.hosts.hostlist import HostSpec
from ccfarm.client.hosts.statedir import state_dir

MYPY = False
if MYPY:  # imported only when used (start-up time): `random` for --randomize
    import random
    from types import TracebackType

# lock file path -> claim token, for every lock file this process holds or is
# locking right now (see the module docstring). `dict.setdefault` is atomic.
_claims: dict[str, object] = {}


def make_state_dirs(state: str) -> None:
    """Create `state` with its `lock/` and `state/` subdirectories (OSError if it cannot)."""
    for sub in ("lock", "state"):
        os.makedirs(os.path.join(state, sub), exist_ok=True)


def _host_part(spec: HostSpec) -> str:
    if spec.kind == "local":
        return "localhost"
    if spec.kind == "ssh":
        return f"ssh_{spec.host}"
    return f"tcp_{spec.host}_{spec.port}"


def slot_file(state: str, spec: HostSpec, number: int) -> str:
    """The lock file of slot `number` of `spec`, as distcc names it."""
    return os.path.join(state, "lock", f"cpu_{_host_part(spec)}_{number}")


def backoff_file(state: str, spec: HostSpec) -> str:
    return os.path.join(state, "lock", f"backoff_{_host_part(spec)}_0")


class Slot:
    """A held slot: `release()` (or leaving a `with` block) frees it.

    `fd` stays locked across `os.execve` if made inheritable, which is how a
    local compile keeps its slot while the real compiler runs.
    """

    __slots__ = ("spec", "number", "path", "fd")

    def __init__(self, spec: HostSpec, number: int, path: str, fd: int) -> None:
        self.spec = spec
        self.number = number
        self.path = path
        self.fd = fd

    @property
    def held(self) -> bool:
        return self.fd >= 0

    def release(self) -> None:
        """Unlock (by closing the file); doing it twice is harmless."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            finally:
                _claims.pop(self.path, None)  # only now may the file be opened again

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"<Slot {self.spec.text!r} #{self.number} {state}>"


def _open_lock_file(path: str, state: str) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    except FileNotFoundError:
        make_state_dirs(state)  # first use of this state directory
        return os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)


def _try_lock(state: str, spec: HostSpec, number: int) -> Slot | None:
    """The slot if its lock file is free, else None (never waits)."""
    path = os.path.abspath(slot_file(state, spec, number))  # one spelling per file
    token = object()
    if _claims.setdefault(path, token) is not token:
        return None  # held (or being tried) by this very process
    try:
        fd = _open_lock_file(path, state)
    except BaseException:
        del _claims[path]
        raise
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException as exc:
        os.close(fd)
        del _claims[path]
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EAGAIN):
            return None  # another process holds it
        raise
    return Slot(spec, number, path, fd)


def _try_round(state: str, hosts: Sequence[HostSpec]) -> Slot | None:
    """One breadth-first pass: slot 0 of every host in order, then slot 1, ..."""
    for number in range(max((h.slots for h in hosts), default=0)):
        for spec in hosts:
            if number < spec.slots:
                slot = _try_lock(state, spec, number)
                if slot is not None:
                    return slot
    return None


def is_backed_off(state: str, spec: HostSpec, *, now: float, period: float) -> bool:
    """Was `spec` marked as failing less than `period` seconds before `now`?

    A mark more than `period` in the future (a clock jump, a bogus touch) is
    ignored rather than backing the host off until then.
    """
    return _is_marked(backoff_file(state, spec), now=now, period=period)


def mark_backoff(state: str, spec: HostSpec) -> None:
    """Mark `spec` as failing now (best effort: an unwritable directory is ignored)."""
    _mark(state, backoff_file(state, spec))


def clear_backoff(state: str, spec: HostSpec) -> None:
    """Forget a failure mark (after a job succeeded on `spec`); best effort."""
    with contextlib.suppress(OSError):
        os.unlink(backoff_file(state, spec))


def scheduler_backoff_file(state: str, address: str, port: int) -> str:
    return os.path.join(state, "lock", f"backoff_scheduler_{address}_{port}")


def is_scheduler_backed_off(
    state: str, address: str, port: int, *, now: float, period: float
) -> bool:
    """Did the scheduler at `address:port` fail (unreachable, silent, garbage) lately?"""
    return _is_marked(scheduler_backoff_file(state, address, port), now=now, period=period)


def mark_scheduler_backoff(state: str, address: str, port: int) -> None:
    """Mark a scheduler as failing now: the next jobs skip it for the backoff period."""
    _mark(state, scheduler_backoff_file(state, address, port))


def clear_scheduler_backoff(state: str, address: str, port: int) -> None:
    """Forget a scheduler's failure mark (it answered); best effort."""
    with contextlib.suppress(OSError):
        os.unlink(scheduler_backoff_file(state, address, port))


def _is_marked(path: str, *, now: float, period: float) -> bool:
    if period <= 0:
        return False
    try:
        age = now - os.stat(path).st_mtime
    except OSError:
        return False
    return -period < age < period


def _mark(state: str, path: str) -> None:
    with contextlib.suppress(OSError):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except FileNotFoundError:
            make_state_dirs(state)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)


def usable_hosts(
    state: str, hosts: Sequence[HostSpec], *, now: float, backoff_period: float
) -> list[HostSpec]:
    """The hosts jobs may go to now: not down, auth, ssh, nor backed off."""
    return [
        h for h in hosts if h.usable and not is_backed_off(state, h, now=now, period=backoff_period)
    ]


def _wait_for(
    attempt: Callable[[], Slot | None],
    *,
    now: float,
    sleep: Callable[[float], None],
    pause: float,
    deadline: float | None,
    clock: Callable[[], float] | None,
) -> Slot | None:
    """`attempt()` until it gives a slot, sleeping `pause` between tries.

    The time is `clock()`, or without a clock `now` plus the seconds slept
    so far; once it reaches `deadline` (None: wait forever) give up: None.
    """
    slept = 0.0
    while True:
        slot = attempt()
        if slot is not None:
            return slot
        current = clock() if clock is not None else now + slept
        if deadline is not None and current >= deadline:
            return None
        wait = max(0.0, pause if deadline is None else min(pause, deadline - current))
        sleep(wait)
        slept += wait


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
    """Lock a free slot of a usable host, in distcc's order, waiting while all are busy.

    Order: slot 0 of every usable host in list order (shuffled with `rng`
    when `randomize`, as `--randomize` asks), then slot 1, and so on. A
    `localhost` entry gives a slot with `spec.kind == "local"`. `now` is the
    wall-clock time (compared with backoff marks); `deadline` is on the
    timeline of `clock`, or of `now` plus time slept when there is no clock.

    Returns None at once when no host is usable, or when `deadline` passes.
    Raises OSError if the state directory cannot be created or written.
    """
    usable = usable_hosts(state, hosts, now=now, backoff_period=backoff_period)
    if not usable:
        return None
    if randomize:
        if rng is None:
            import random

            rng = random.Random()
        rng.shuffle(usable)
    return _wait_for(
        lambda: _try_round(state, usable),
        now=now,
        sleep=sleep,
        pause=pause,
        deadline=deadline,
        clock=clock,
    )


def acquire_local_slot(
    state: str,
    count: int,
    *,
    sleep: Callable[[float], None],
    pause: float = 1.0,
    deadline: float | None = None,
    now: float = 0.0,
    clock: Callable[[], float] | None = None,
) -> Slot | None:
    """One of this machine's `count` local compile slots (`cpu_localhost_N`, N < count).

    These files are also the slots of a `localhost` host entry, as in
    distcc, so both limits share them. Waiting is as in `acquire_slot`;
    None at once if `count` < 1.
    """
    if count < 1:
        return None
    local = HostSpec(f"localhost/{count}", "local", "localhost", 0, count, 1)
    return _wait_for(
        lambda: _try_round(state, [local]),
        now=now,
        sleep=sleep,
        pause=pause,
        deadline=deadline,
        clock=clock,
    )


__all__ = [
    "Slot",
    "acquire_local_slot",
    "acquire_slot",
    "backoff_file",
    "is_scheduler_backed_off",
    "mark_scheduler_backoff",
    "scheduler_backoff_file",
    "clear_backoff",
    "clear_scheduler_backoff",
    "is_backed_off",
    "make_state_dirs",
    "mark_backoff",
    "slot_file",
    "state_dir",
    "usable_hosts",
]
