"""The warm pool: job directories made ahead, each with its room waiting.

A room (`process.Room`) is a shell started for one job directory, in that
job's sandbox, waiting for its script: when the job comes, its compiler
starts by one `exec`, the sandbox's namespaces made already. The service
takes a job directory here when a request header arrives (`take`), runs
its compiler through `spawn` and gives it back when the job is over
(`release`); the rules (how many, which rooms fit a job, when to retire
one, how long to wait after failures) are `warm.PoolRules` and its
functions. Every workspace is tracked in the `WorkRoot` from the moment it
is made (ready ones under a `ready.` link), so every way out removes it.

A room that cannot serve its job (dead, or an environment a shell cannot
make) is never a compile error: the job's compiler starts afresh, as it
would without a pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable, Mapping

from ccfarm.daemon.job import CompilePlan
from ccfarm.daemon.process import CompilerProcess, Confined, Room
from ccfarm.daemon.warm import Binds, PoolRules, backoff, pick, retire
from ccfarm.daemon.workroot import WorkRoot
from ccfarm.daemon.workspace import Workspace

log = logging.getLogger("ccfarmd")


class WarmPool:
    def __init__(
        self,
        confined: Confined,
        workroot: WorkRoot,
        parent: str | None,
        env: Mapping[str, str],
        nice: int,
        rules: PoolRules,
        draining: Callable[[], bool],
    ) -> None:
        """`parent`: where job directories go (None: $TMPDIR); `env`: the
        compilers' environment before a job's own (each room's, with its
        TMPDIR); `nice`: the compilers' niceness."""
        self._confined = confined
        self._workroot = workroot
        self._parent = parent
        self._binds_parent = parent or tempfile.gettempdir()
        self._env = dict(env)
        self._nice = nice
        self.rules = rules
        self._draining = draining
        self._ready: list[tuple[Workspace, Room]] = []
        #: rooms of job directories handed out, by path
        self._attached: dict[str, Room] = {}
        self._wanted: Binds = ()  # the binds of the latest job's compiler
        self._failures = 0  # rooms that failed in a row
        self._filling: asyncio.Task[None] | None = None
        self._closed = False
        self._stopped: list[Room] = []  # rooms killed by `close`, to wait for
        self.warm_jobs = 0  # jobs whose compiler started in a room
        self.fresh_jobs = 0  # and those started afresh

    @property
    def ready(self) -> int:
        return len(self._ready)

    def fill(self) -> None:
        """Start rooms in the background until the rules are met."""
        if self._closed or (self._filling is not None and not self._filling.done()):
            return
        self._filling = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        while not self._closed:
            wanted = self.rules.to_start(
                len(self._ready), 0, len(self._attached), draining=self._draining()
            )
            if wanted <= 0:
                return
            if self._failures:
                await asyncio.sleep(backoff(self._failures))
                if self._closed:
                    return
            ws = self._workspace(ready=True)
            room = await self._room(ws, self._wanted)
            if room is None:
                self._remove(ws)
                continue
            if self._closed:
                room.kill()
                self._remove(ws)
                return
            self._ready.append((ws, room))

    async def take(self, program: str) -> Workspace:
        """A job directory for a job of `program` (a ready one with its room if
        one fits; else a fresh one, with its room started now if it may)."""
        wanted = self._confined.binds(program, self._binds_parent)
        self._wanted = wanted
        self._drop_dead()
        for index in reversed(retire([r.binds for _, r in self._ready], wanted, self.rules.size)):
            ws, room = self._ready.pop(index)
            room.kill()
            self._remove(ws)
        try:
            if not self.rules.may_attach(len(self._attached)):
                return self._workspace()  # it waits for a slot: no processes meanwhile
            found_at = pick([r.binds for _, r in self._ready], wanted)
            if found_at is not None:
                ws, room = self._ready.pop(found_at)
                self._workroot.handed(ws.path)
            else:  # none fits: this job's room starts now, while its request arrives
                ws = self._workspace()
                found = await self._room(ws, wanted)
                if found is None:
                    return ws
                room = found
            self._attached[ws.path] = room
            return ws
        finally:
            self.fill()

    async def spawn(self, plan: CompilePlan, nice: int) -> CompilerProcess:
        """The job's compiler: in its room if it has one that can, else afresh."""
        room = self._attached.get(plan.job_dir)
        if room is not None:
            proc = await room.run(plan, nice)
            if proc is not None:
                self.warm_jobs += 1
                self._failures = 0
                return proc
            log.info("the ready sandbox of %s cannot run its job: starting it afresh", plan.job_dir)
        self.fresh_jobs += 1
        return await self._confined(plan, nice)

    def release(self, ws: Workspace) -> None:
        """The job of `ws` is over: its room goes (the caller removes `ws`)."""
        room = self._attached.pop(ws.path, None)
        if room is not None:
            room.kill()
        self.fill()

    def close(self) -> None:
        """Stop every room and remove the ready job directories (at exit)."""
        self._closed = True
        if self._filling is not None:
            self._filling.cancel()
        for ws, room in self._ready:
            room.kill()
            self._stopped.append(room)
            self._remove(ws)
        self._ready.clear()
        for room in self._attached.values():
            room.kill()
            self._stopped.append(room)

    async def aclose(self, timeout: float = 5.0) -> None:
        """`close`, and wait until the rooms' processes have ended (so that the
        event loop closes with no process of theirs to reap)."""
        self.close()
        waits = [asyncio.ensure_future(room.wait()) for room in self._stopped]
        self._stopped.clear()
        if waits:
            await asyncio.wait(waits, timeout=timeout)

    # -- helpers ---------------------------------------------------------------------

    def _workspace(self, *, ready: bool = False) -> Workspace:
        ws = Workspace(self._parent)
        self._workroot.track(ws.path, ready=ready)
        return ws

    async def _room(self, ws: Workspace, binds: Binds) -> Room | None:
        env = {**self._env, "TMPDIR": ws.path}
        try:
            room = await self._confined.room(ws.path, binds, env, self._nice)
        except OSError as exc:
            self._failures += 1
            log.warning("cannot start a ready sandbox: %s", exc)
            return None
        return room

    def _drop_dead(self) -> None:
        """Ready rooms that died while waiting go (and count as failures)."""
        alive = []
        for ws, room in self._ready:
            if room.alive:
                alive.append((ws, room))
                continue
            self._failures += 1
            log.warning("a ready sandbox ended before its job; %d in a row", self._failures)
            room.kill()
            self._remove(ws)
        self._ready = alive

    def _remove(self, ws: Workspace) -> None:
        if not self._workroot.remove(ws.path):
            with contextlib.suppress(RuntimeError):
                self._workroot.sweep_later(asyncio.get_running_loop())
