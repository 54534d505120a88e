"""The compiler a job runs, as a process: the one place the daemon starts programs.

`DaemonService` runs each job's compile through a `Spawn` callable,
`spawn_compiler` by default; tests give it a fake and cover the protocol,
limits and error paths without starting a compiler.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

from ccfarm.daemon.job import CompilePlan


class CompilerProcess(Protocol):
    """A started compiler, as the service drives it."""

    @property
    def returncode(self) -> int | None:
        """asyncio's exit code: negative when a signal killed it; None while it runs."""

    async def communicate(self) -> tuple[bytes, bytes]:
        """(stdout, stderr), once the compiler has exited."""

    def kill(self) -> None:
        """SIGKILL the compiler and everything it started."""

    def renice(self, nice: int) -> None:
        """Make it at least this nice (never less nice than it is)."""


#: (plan, nice value to start at) -> the started compiler
Spawn = Callable[[CompilePlan, int], Awaitable[CompilerProcess]]


async def spawn_compiler(plan: CompilePlan, nice: int) -> CompilerProcess:
    """The plan's compiler in its own session (process group), output piped."""
    proc = await asyncio.create_subprocess_exec(
        plan.program,
        *plan.argv[1:],
        cwd=plan.cwd,
        env=dict(plan.env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=(lambda: os.nice(nice)) if nice else None,
    )
    return _Subprocess(proc)


class _Subprocess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def communicate(self) -> tuple[bytes, bytes]:
        return await self._proc.communicate()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)  # its group (start_new_session)

    def renice(self, nice: int) -> None:
        with contextlib.suppress(OSError):
            if os.getpriority(os.PRIO_PGRP, self._proc.pid) < nice:
                os.setpriority(os.PRIO_PGRP, self._proc.pid, nice)
