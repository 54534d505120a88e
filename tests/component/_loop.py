"""An event loop with a virtual clock that jumps to the next timer when idle.

Like trio's `MockClock(autojump_threshold=0)`: `loop.time()` starts at
`START` and only moves when every task waits and nothing is ready; then it
jumps straight to the next scheduled timer. `asyncio.wait_for(..., 60)`
and `asyncio.sleep(600)` therefore take no real time, and they happen in
the same order on every run.

A task that waits for something that never comes is a test failure, not a
hang: with no timer armed the loop raises `Stalled` (after a short real
grace period if an executor thread may still wake it), and so it does when the virtual clock passes
`horizon` seconds (a service's periodic timer keeps the loop ticking for
ever otherwise).

`loop.autojump = False` freezes the clock: the loop then waits for real I/O
only (a blocking client in another thread on a socketpair), timers never
fire, and a loop with nothing to wait for raises `Stalled` after
`FROZEN_WAIT` real seconds.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

START = 10_000.0
#: real seconds an idle loop waits for a thread's wake-up before giving up
GRACE = 2.0
FROZEN_WAIT = 10.0


class Stalled(AssertionError):
    """Every task waits for something that can never happen."""


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, loop: VirtualLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready: list[Any] = super().select(0)
        if ready or timeout == 0:
            return ready
        loop = self._loop
        if loop.idle_waiters:
            waiters, loop.idle_waiters = loop.idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return []
        if not loop.autojump:
            ready = super().select(FROZEN_WAIT)
            if not ready:
                loop.stall(f"no I/O for {FROZEN_WAIT} s with the clock frozen")
            return ready
        if timeout is None:
            # a thread of the default executor may be about to wake us
            threads = loop._default_executor is not None  # type: ignore[attr-defined]
            ready = super().select(GRACE) if threads else []
            if not ready:
                loop.stall("every task waits and no timer is armed")
            return ready
        loop.advance(timeout)
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, horizon: float = 4 * 3600.0) -> None:
        self.virtual_now = START
        self.horizon = horizon
        self.autojump = True
        self.idle_waiters: list[asyncio.Future[None]] = []
        self._stalled = False
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.virtual_now

    def advance(self, seconds: float) -> None:
        self.virtual_now += seconds
        if self.virtual_now - START > self.horizon:
            self.stall(f"the virtual clock passed {self.horizon:.0f} s")

    def stall(self, why: str) -> None:
        if self._stalled:  # once: the runner's clean-up must be able to finish
            return
        self._stalled = True
        raise Stalled(f"{why}: a task waits for ever")


async def idle() -> None:
    """Return once every other task waits (without moving the clock)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualLoop), "needs the component tier's VirtualLoop"
    waiter: asyncio.Future[None] = loop.create_future()
    loop.idle_waiters.append(waiter)
    await waiter


def now() -> float:
    return asyncio.get_running_loop().time()


def run(coro: Any, *, horizon: float = 4 * 3600.0) -> Any:
    """Run `coro` to completion on a fresh VirtualLoop."""
    with asyncio.Runner(loop_factory=lambda: VirtualLoop(horizon)) as runner:
        return runner.run(coro)
