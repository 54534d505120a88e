"""The compiler a job runs, as a process: the one place the daemon starts programs.

`DaemonService` runs each job's compile through a `Spawn` callable,
`spawn_compiler` by default; tests give it a fake and cover the protocol,
limits and error paths without starting a compiler. `ccfarmd` gives it a
`Confined` one: each compiler with the job's resource limits, and in the
job sandbox (`daemon/sandbox.py`) when `find_sandbox` found one that works.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from ccfarm.daemon.job import CompilePlan
from ccfarm.daemon.sandbox import (
    SYSTEM_PATHS,
    TOP_DIRECTORIES,
    HostLayout,
    JobLimits,
    Sandbox,
    compiler_dirs,
)


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


# -- confined compilers -------------------------------------------------------------

#: seconds the start-up check of the sandbox may take
PROBE_TIMEOUT = 10.0


class Confined:
    """Spawn for `ccfarmd`: each compiler with `limits`, in `sandbox` if there is one."""

    def __init__(self, limits: JobLimits, sandbox: Sandbox | None) -> None:
        self.sandbox = sandbox
        self._rlimits = limits.rlimits()

    async def __call__(self, plan: CompilePlan, nice: int) -> CompilerProcess:
        argv = [plan.program, *plan.argv[1:]]
        if self.sandbox is not None:
            argv = self.sandbox.command(
                plan.program,
                plan.argv[1:],
                job_dir=_job_dir(plan),
                cwd=plan.cwd,
                compiler_dirs=_compiler_dirs(plan.program),
            )
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=plan.cwd,
            env=dict(plan.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=functools.partial(_limit_child, nice, self._rlimits),
        )
        return _Sandboxed(proc) if self.sandbox is not None else _Subprocess(proc)


def _limit_child(nice: int, rlimits: Sequence[tuple[int, int, int]]) -> None:
    """In the forked child, before exec: niceness and the job's limits."""
    if nice:
        os.nice(nice)
    for which, soft, hard in rlimits:
        resource.setrlimit(which, (soft, hard))


def _job_dir(plan: CompilePlan) -> str:
    if not plan.job_dir:
        raise ValueError("a sandboxed compile needs its job directory")
    return plan.job_dir


@functools.lru_cache(maxsize=64)
def _compiler_dirs(program: str) -> tuple[str, ...]:
    return compiler_dirs(program, os.path.realpath(program))


class _Sandboxed(_Subprocess):
    """bwrap in front of the compiler: it exits 128 + N when the compiler died of signal N."""

    @property
    def returncode(self) -> int | None:
        code = self._proc.returncode
        if code is not None and 128 < code <= 128 + 64:
            return 128 - code
        return code


def host_layout(extra: Sequence[str] = ()) -> HostLayout:
    """What the sandbox mounts, as found on this host (links, existing paths)."""
    top = []
    for path in TOP_DIRECTORIES:
        if os.path.islink(path):
            top.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            top.append((path, ""))
    readonly = [p for p in (*SYSTEM_PATHS, *extra) if os.path.exists(p)]
    return HostLayout(tuple(top), tuple(dict.fromkeys(readonly)))


def find_sandbox(extra: Sequence[str] = ()) -> Sandbox | str:
    """A sandbox that works here, as this user, or why there is none.

    Runs `true` in a sandbox built as a job's would be, in a directory of
    its own (not among the job directories: it would be seen as a job's).
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    true = shutil.which("true") or "/bin/true"
    sandbox = Sandbox(bwrap, host_layout(extra), privileged=os.geteuid() == 0)
    probe = tempfile.mkdtemp(prefix="ccfarmd-probe-")
    try:
        argv = sandbox.command(true, [], job_dir=probe, cwd=probe)
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not run: {exc}"
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(probe)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap failed: {said[-1] if said else f'exit status {done.returncode}'}"
    return sandbox


def job_directories_usable(tmpdir: str) -> bool:
    """May this user make job directories in `tmpdir` ("": the system's)?"""
    return os.access(tmpdir or tempfile.gettempdir(), os.W_OK | os.X_OK)
