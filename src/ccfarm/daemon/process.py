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
import logging
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from ccfarm.daemon import warm
from ccfarm.daemon.job import CompilePlan
from ccfarm.daemon.sandbox import (
    SHELL,
    SYSTEM_PATHS,
    TOP_DIRECTORIES,
    HostLayout,
    JobLimits,
    Sandbox,
    compiler_dirs,
)
from ccfarm.daemon.warm import Binds, compiler_env, job_script, started_output

log = logging.getLogger("ccfarmd")


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
    """Spawn for `ccfarmd`: each compiler with `limits`, in `sandbox` if there is one.

    Called, it starts a job's compiler afresh. `room` starts a shell for a
    job directory ahead of its job (in that job's sandbox), which `Room.run`
    later turns into the compiler: `daemon/pool.py` keeps a few ready.

    No code runs between `fork` and `exec` (a `preexec_fn` makes Python fork
    the ~50 MB daemon instead of `vfork`, measured at 4-7 ms a spawn): the
    process starts blocked, bwrap reading its `--args` from a pipe, a room's
    shell reading its script, and its limits and niceness are set from here
    (`prlimit`, `setpriority`) before it goes on. So they hold for bwrap and
    everything under it, as before: RLIMIT_NPROC is in force when bwrap makes
    its user namespace, whose processes the kernel counts against it.
    """

    def __init__(self, limits: JobLimits, sandbox: Sandbox | None) -> None:
        self.sandbox = sandbox
        self._rlimits = limits.rlimits()
        self._forked = False  # limits could not be set from outside: set in the child

    async def __call__(self, plan: CompilePlan, nice: int) -> CompilerProcess:
        """A shell that runs the compiler at once: a room made for this job (in
        its sandbox, if there is one), so that the compiler's environment is
        made exactly as a warm room makes it (the sandbox's first process is
        a shell too, `sandbox.REAPER`, which sets some variables itself)."""
        if self.sandbox is None:
            room = await self.room(plan.cwd, (), plan.env, nice, cwd=plan.cwd)
        else:
            job_dir = _job_dir(plan)
            binds = self.sandbox.binds(_compiler_dirs(plan.program), job_dir)
            room = await self.room(job_dir, binds, plan.env, nice)
        shell = await room.run(plan, nice, afresh=False)
        if shell is None:
            raise OSError("the compiler's shell did not start")
        return shell

    def binds(self, program: str, parent: str) -> Binds:
        """The extra read-only directories `program` needs in a sandbox whose
        job directory is in `parent` (a room is for the jobs with the same)."""
        if self.sandbox is None:
            return ()
        return self.sandbox.binds(_compiler_dirs(program), os.path.join(parent, "ccfarmd-"))

    async def room(
        self,
        job_dir: str,
        binds: Binds,
        env: Mapping[str, str],
        nice: int,
        *,
        cwd: str = "",
    ) -> Room:
        """A shell waiting for a job of `job_dir` (in its sandbox, with `binds`
        read-only); `env`: the environment it starts with."""
        argv = [SHELL, "-s"]
        if self.sandbox is not None:
            argv = self.sandbox.command(
                SHELL, ["-s"], job_dir=job_dir, cwd=job_dir, compiler_dirs=binds
            )
        proc = await self._start(argv, cwd or job_dir, env, nice, stdin=asyncio.subprocess.PIPE)
        return Room(proc, job_dir, binds, env, nice, self)

    async def _start(
        self, argv: list[str], cwd: str, env: Mapping[str, str], nice: int, *, stdin: int
    ) -> asyncio.subprocess.Process:
        """`argv` started, limited and niced before it runs anything of the job's."""
        hold = -1
        go = -1
        command = argv
        if argv[0] != SHELL and not self._forked:  # bwrap: it reads (empty) --args first
            hold, go = os.pipe()
            command = [argv[0], "--args", str(hold), *argv[1:]]
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=cwd,
                env=dict(env),
                stdin=stdin,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                pass_fds=(hold,) if hold >= 0 else (),
                preexec_fn=functools.partial(_limit_child, nice, self._rlimits)
                if self._forked
                else None,
            )
        except BaseException:
            if go >= 0:
                os.close(go)
            raise
        finally:
            if hold >= 0:
                os.close(hold)
        try:
            if not self._forked:
                _limit(proc.pid, nice, self._rlimits)
        except OSError as exc:
            # (a setuid bwrap is not ours to limit) from now on, in the forked child
            log.warning("cannot set a compiler's limits from the daemon (%s): forking", exc)
            self._forked = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.communicate()
            return await self._start(argv, cwd, env, nice, stdin=stdin)
        finally:
            if go >= 0:
                os.close(go)  # bwrap reads no arguments there, and goes on
        return proc


def _limit(pid: int, nice: int, rlimits: Sequence[tuple[int, int, int]]) -> None:
    """From the daemon, before the process runs anything of the job's."""
    if nice:
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    for which, soft, hard in rlimits:
        resource.prlimit(pid, which, (soft, hard))


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


class Room:
    """A job directory's shell, started ahead (in its sandbox), waiting for its script."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        job_dir: str,
        binds: Binds,
        env: Mapping[str, str],
        nice: int,
        confined: Confined,
    ) -> None:
        self._proc = proc
        self.job_dir = job_dir
        self.binds = binds
        self._env = dict(env)
        self._nice = nice
        self._confined = confined
        self._used = False

    @property
    def alive(self) -> bool:
        """Not used, and its process has not exited (as far as the loop knows)."""
        return not self._used and self._proc.returncode is None

    async def run(
        self,
        plan: CompilePlan,
        nice: int,
        *,
        afresh: bool = True,
    ) -> CompilerProcess | None:
        """The job's compiler, started by sending the script; None when this
        room cannot run it (dead, used, niced beyond `nice`, an environment a
        shell cannot make): start it afresh instead. `afresh`: if the room
        dies before the compiler starts, start it afresh (else the output is
        the shell's)."""
        sandboxed = self._confined.sandbox is not None
        env = compiler_env(plan.env, plan.cwd, sandboxed=sandboxed)
        script = job_script(plan.program, plan.argv[1:], cwd=plan.cwd, env=env, room_env=self._env)
        if not self.alive or script is None or nice < self._nice:
            self.kill()
            return None
        self._used = True
        if nice > self._nice:
            with contextlib.suppress(OSError):
                target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice)
                os.setpriority(os.PRIO_PGRP, self._proc.pid, target)
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(script)
            await self._proc.stdin.drain()
            self._proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            self.kill()
            return None
        confined = self._confined

        async def again() -> CompilerProcess:
            return await confined(plan, nice)

        return _Warm(self._proc, sandboxed, again if afresh else None)

    def kill(self) -> None:
        """Stop it and what it started (its job is over, or the pool closes)."""
        self._used = True
        if self._proc.returncode is None:  # (once reaped, its pid may be another's)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        if self._proc.stdin is not None:
            self._proc.stdin.close()

    async def wait(self) -> None:
        """Until it has exited (after `kill`), its pipes read."""
        with contextlib.suppress(OSError):
            await self._proc.communicate()


class _Warm(_Subprocess):
    """A room's shell that was sent its job: the compiler once it printed the marker."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        sandboxed: bool,
        again: Callable[[], Awaitable[CompilerProcess]] | None,
    ) -> None:
        super().__init__(proc)
        self._sandboxed = sandboxed
        self._again = again
        self._afresh: CompilerProcess | None = None
        self._killed = False

    @property
    def returncode(self) -> int | None:
        if self._afresh is not None:
            return self._afresh.returncode
        return warm.returncode(self._proc.returncode, sandboxed=self._sandboxed)

    async def communicate(self) -> tuple[bytes, bytes]:
        stdout, stderr = await self._proc.communicate()
        own = started_output(stdout)
        if own is not None:
            return own, stderr
        if self._again is None or self._killed:
            return stdout, stderr
        said = stderr.decode(errors="replace").strip().splitlines()
        log.warning(
            "a ready sandbox failed before its compiler started (%s): starting it afresh",
            said[-1] if said else f"exit status {self._proc.returncode}",
        )
        self._afresh = await self._again()
        if self._killed:
            self._afresh.kill()
        return await self._afresh.communicate()

    def kill(self) -> None:
        self._killed = True
        super().kill()
        if self._afresh is not None:
            self._afresh.kill()

    def renice(self, nice: int) -> None:
        if self._afresh is not None:
            self._afresh.renice(nice)
        else:
            super().renice(nice)


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
