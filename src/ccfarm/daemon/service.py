"""The daemon's asyncio shell: accept, read a request, compile, reply.

All decisions about bytes live in `ccfarm.protocol`, about arguments in
`ccfarm.compiler`, about files in `workspace`; this module moves data
between sockets, processes and those cores, arms timeouts and logs. The
compiler itself is started through `process.Spawn` (a fake in tests).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ccfarm import tls
from ccfarm._record import replace
from ccfarm.cgroups import cpu_slots
from ccfarm.daemon import admission
from ccfarm.daemon.access import AccessList
from ccfarm.daemon.compilers import CompilerAllowList
from ccfarm.daemon.config import DaemonConfig
from ccfarm.daemon.intake import Bounds, quiet_accept_errors, request_events
from ccfarm.daemon.intake import ClientGone as _ClientGone
from ccfarm.daemon.job import (
    CompilePlan,
    JobBuilder,
    check_reads,
    deps_reply,
    program_of,
    unroot,
    wait_status,
)
from ccfarm.daemon.pool import WarmPool
from ccfarm.daemon.probe import Entitlement
from ccfarm.daemon.process import CompilerProcess, Confined, Spawn, spawn_compiler
from ccfarm.daemon.sandbox import refusal
from ccfarm.daemon.warm import PoolRules
from ccfarm.daemon.workroot import WorkRoot
from ccfarm.daemon.workspace import Workspace
from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import (
    FileEntry,
    JobHeader,
    LinkEntry,
    PreprocessedSource,
    RequestComplete,
    compressed,
    encode_reply,
    encode_reply_head,
)

if TYPE_CHECKING:
    import ssl

    from ccfarm.listener import Listener

log = logging.getLogger("ccfarmd")

EXIT_IO_ERROR = 107  # distcc's code when the client went away
EXIT_TIMEOUT = 118  # distcc's code when --job-lifetime expired
#: how much nicer the running jobs go when an express job starts (see
#: `scheduler.decisions.Decisions.express_host`): the CPU goes to it while
#: both run (CFS weights 1024 vs 110)
EXPRESS_NICE = 10
#: replies to pack on the event loop up to this many plain bytes (~1-3 ms of
#: the packer); bigger ones in a codec thread
INLINE_PACK = 32 * 1024


class _Gate:
    """The daemon's bounds for the TLS listener: the caps, the access list
    (a client outside `--allow` gets no TLS handshake), and room made by
    closing connections that have not sent a byte."""

    def __init__(self, bounds: Bounds, access: AccessList) -> None:
        self.bounds = bounds
        self.access = access
        self.waiting = bounds.unstarted
        self.started = bounds.started
        self.was_evicted = bounds.was_evicted

    def admit(self, address: str) -> str | None:
        if not self.access.allows(address):
            return "denied by access list"
        return self.bounds.admit(address)

    def leave(self, address: str) -> None:
        self.bounds.leave(address)


class DaemonService:
    def __init__(
        self,
        config: DaemonConfig,
        compilers: CompilerAllowList,
        env: Mapping[str, str] | None = None,
        spawn: Spawn = spawn_compiler,
        secret: bytes | None = None,
        tls_context: ssl.SSLContext | None = None,
        cpus: int | None = None,
    ) -> None:
        """`secret`: the farm secret (`--secret-file`, see `admission`);
        `tls_context`: the port's TLS (`tls.server_from`), None for plain only;
        `cpus`: compilers that can each have a CPU (default: this process's
        CPUs, a cgroup's quota rounded up)."""
        self.config = config
        self.secret = secret
        self.tls_context = tls_context
        self._spawn = spawn
        #: False for a daemon whose compilers run unconfined without being told so:
        #: it refuses jobs that ship files (see `sandbox.refusal`)
        self.serves_files = True
        self.compilers = compilers
        self.access = AccessList.parse(config.allow)
        self.env = dict(os.environ if env is None else env)
        self._slots = asyncio.Semaphore(config.jobs)
        self._waiting = 0
        self._express = 0  # express jobs running
        self._plain: set[CompilerProcess] = set()  # the running plain jobs
        self._active: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | Listener | None = None
        self._draining = asyncio.Event()
        #: connections, body memory, timeouts (see `intake`)
        self.bounds = Bounds(config)
        #: where job directories go once `start` made it (before: $TMPDIR)
        self.workroot: WorkRoot | None = None
        #: job directories made ahead with their sandboxes (once `run_compilers`
        #: gave a `Confined` spawn and the workroot is claimed)
        self.pool: WarmPool | None = None
        self._confined = False  # compilers have their spawn (`run_compilers`)
        self.jobs_done = 0
        self.running = 0  # compilers running now (reported to schedulers)
        #: the CPU seconds the finished compiles could have had (their wall
        #: time, shared when more ran than the host has CPUs): the speed
        #: refinement's divisor (see `probe.Entitlement`)
        self.compile_seconds = 0.0
        self._entitled = Entitlement(cpu_slots() if cpus is None else cpus)

    # -- lifecycle ---------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listen on `sock` (bound already, by the command) or on the config's port."""
        if self.tls_context is not None:
            from ccfarm.listener import Listener

            if sock is None:
                sock = socket.create_server((self.config.listen, self.config.port), backlog=1024)
            listener = Listener(
                sock,
                self.handle_connection,
                self.tls_context,
                _Gate(self.bounds, self.access),
                first_timeout=self.config.idle_timeout,
                handshake_timeout=self.config.io_timeout,
                log=log,
            )
            listener.start()
            self._server = listener
        elif sock is not None:
            self._server = await asyncio.start_server(self.handle_connection, sock=sock)
        else:
            self._server = await asyncio.start_server(
                self.handle_connection, self.config.listen, self.config.port, backlog=1024
            )
        addrs = ", ".join(str(s.getsockname()) for s in self._server.sockets)
        quiet_accept_errors(asyncio.get_running_loop())
        self._claim_workroot()
        log.info(
            "listening on %s, %d job slots, at most %d connections (%d per client)",
            addrs,
            self.config.jobs,
            self.bounds.caps.total,
            self.bounds.caps.per_address,
        )

    def run_compilers(self, spawn: Spawn, *, serves_files: bool) -> None:
        """Start compilers through `spawn` from now on (the sandbox, once found).
        Called once the daemon runs as its own user: its directory of job
        directories (`WorkRoot`) is claimed now, as that user."""
        self._spawn = spawn
        self.serves_files = serves_files
        self._confined = True
        self._claim_workroot()

    def _claim_workroot(self) -> None:
        """Once listening and running as the daemon's user (`run_compilers`)."""
        if self.workroot is None and self._confined and self._server is not None:
            self.workroot = WorkRoot.claim(
                self.config.tmpdir or None, f"ccfarmd-{self.config.listen}-{self.port}"
            )
            if isinstance(self._spawn, Confined):
                self.pool = WarmPool(
                    self._spawn,
                    self.workroot,
                    self.config.tmpdir or None,
                    self.env,
                    self.config.nice,
                    PoolRules(self.config.warm_pool_size, self.config.jobs),
                    self._draining.is_set,
                )
                self.pool.fill()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def draining(self) -> asyncio.Event:
        """Set when the daemon stops taking jobs (the host agents then say BYEE)."""
        return self._draining

    def drain(self) -> None:
        """Stop accepting; running and queued jobs finish (SIGTERM)."""
        if self._draining.is_set():
            return
        log.info("draining: %d connection(s) still running", len(self._active))
        self._draining.set()
        if self._server is not None:
            self._server.close()

    async def serve_until_drained(self, on_drain: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.drain)
        try:
            await self._draining.wait()
            if on_drain is not None:
                on_drain()
            if self._active:
                await asyncio.wait(set(self._active), timeout=self.config.drain_timeout)
            log.info("stopped after %d jobs", self.jobs_done)
            if self.pool is not None:
                await self.pool.aclose()
        finally:
            self.close()

    def close(self) -> None:
        """Remove every job directory and stop the decompression threads."""
        for task in self._active:  # past the drain timeout: their finally blocks clean up
            task.cancel()
        self.bounds.close()
        if self.pool is not None:
            self.pool.close()
        if self.workroot is not None:
            self.workroot.close()

    # -- one connection ------------------------------------------------------------

    async def handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one accepted connection: one job at most (the server's callback)."""
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if peer else "?"
        refused = self.bounds.admit(peer[0]) if peer else None  # (no peer: denied below)
        try:
            if refused is not None:
                log.warning("refused %s: %s", client, refused)
            elif self._draining.is_set():
                log.info("refused %s: draining", client)
            elif not peer or not self.access.allows(peer[0]):
                log.warning("connection from %s denied by access list", client)
            else:
                await self._serve(client, reader, writer)
        except _ClientGone as exc:
            log.debug("%s: %s", client, exc)
        except (RemoteProtocolError, TimeoutError, ConnectionError) as exc:
            log.warning("job from %s failed: %s", client, str(exc) or type(exc).__name__)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                log.exception("internal error serving %s", client)
            else:  # one line, not a traceback per connection
                log.warning("job from %s failed: out of file descriptors", client)
        except Exception:
            log.exception("internal error serving %s", client)
        finally:
            writer.close()
            self._active.discard(task)
            if peer and refused is None:
                self.bounds.leave(peer[0])

    async def _serve(
        self, client: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # the job's directory is made when a request header arrives, not for
        # every connection (probes, garbage and refusals never touch the disk)
        made: list[Workspace] = []
        clock = asyncio.get_running_loop().time  # time.monotonic on a real loop
        try:
            started = clock()
            secure = tls.is_tls(writer)
            if self.config.tls_require and not secure:  # a plain distcc request at most
                admitted = admission.Admitted(b"", False)
            else:
                admitted = await admission.admit(
                    reader, writer, self.secret, self.config.io_timeout
                )
                admitted = replace(admitted, tls=secure)
            builder = await self._read_request(reader, made, admitted)
            ws = builder.ws
            plan = builder.plan(self.env)
            received = clock()
            # an express job (the scheduler leased it beyond our slots) starts
            # at once, at most `jobs` of them; the running others go nicer
            express = builder.express and self._express < self.config.jobs
            express = express and (self.secret is None or admitted.authenticated)
            if express:
                self._express += 1
            else:
                if self._waiting >= self.config.queue_limit:
                    raise RemoteProtocolError("too many jobs waiting; refusing")
                self._waiting += 1
                try:
                    await self._slots.acquire()
                finally:
                    self._waiting -= 1
            self.running += 1
            run_started = clock()
            due_before = self._entitled.change(run_started, self.running)
            try:
                reply = await self._compile(plan, reader, ws, express)
            finally:
                self.running -= 1
                compiled = clock()
                entitled = self._entitled.change(compiled, self.running) - due_before
                if express:
                    self._express -= 1
                else:
                    self._slots.release()
            self.compile_seconds += entitled
            writer.write(reply)
            await asyncio.wait_for(writer.drain(), self.config.io_timeout)
            self.jobs_done += 1
            ms = [(t - started) * 1000 for t in (received, run_started, compiled, clock())]
            log.info(
                "%s %s v%x %.0f ms (received %.1f, started %.1f, compiled %.1f)",
                client,
                builder.job.argv[builder.job.source_index],
                plan.version,
                ms[3],
                ms[0],
                ms[1],
                ms[2],
            )
        finally:
            for ws in made:
                if self.pool is not None:
                    self.pool.release(ws)
                if self.workroot is None:
                    ws.remove()
                elif not self.workroot.remove(ws.path):
                    log.warning("cannot remove %s yet; will try again", ws.path)
                    self.workroot.sweep_later(asyncio.get_running_loop())

    def _demote_others(self, nice: int) -> None:
        """An express job started: the running plain jobs go EXPRESS_NICE nicer
        (and those that start while it runs start so, see `_compile`).

        Only ever up (an unprivileged daemon may not lower a nice value
        again); they keep it until they end, which is soon.
        """
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice + EXPRESS_NICE)
        for proc in self._plain:
            proc.renice(target)

    async def _read_request(
        self, reader: asyncio.StreamReader, made: list[Workspace], admitted: admission.Admitted
    ) -> JobBuilder:
        builder: JobBuilder | None = None
        started = bool(admitted.prefix) or admitted.authenticated
        async for event in request_events(reader, self.bounds, admitted.prefix, started):
            if isinstance(event, JobHeader):
                if (why := refusal(event.version, serves_files=self.serves_files)) is not None:
                    raise RemoteProtocolError(why)
                refused = admission.refusal(
                    event.version,
                    secret=self.secret is not None,
                    authenticated=admitted.authenticated,
                    distcc_clients=self.config.distcc_clients,
                    tls_required=self.config.tls_require,
                    tls=admitted.tls,
                )
                if refused:
                    raise RemoteProtocolError(f"refused: {refused}")
                if self.pool is not None:
                    made.append(await self.pool.take(program_of(event, self.compilers)))
                else:
                    made.append(Workspace(self.config.tmpdir or None))
                    if self.workroot is not None:
                        self.workroot.track(made[-1].path)
                builder = JobBuilder(event, self.compilers, made[-1])
            elif isinstance(event, PreprocessedSource):
                assert builder is not None
                builder.add_source(event.data)
            elif isinstance(event, FileEntry | LinkEntry):
                assert builder is not None
                builder.add_entry(event)
            elif isinstance(event, RequestComplete):
                assert builder is not None
                builder.stored = event.stored
                return builder
        raise RemoteProtocolError("request ended without completing")

    async def _compile(
        self, plan: CompilePlan, reader: asyncio.StreamReader, ws: Workspace, express: bool
    ) -> bytes:
        nice = self.config.nice
        # a plain job that starts while an express job runs starts nicer too
        # (else the express job shares the CPU with each job that follows)
        start_nice = nice + (EXPRESS_NICE if self._express and not express else 0)
        spawn = self._spawn if self.pool is None else self.pool.spawn
        if express:  # before it starts: a warm room's compiler starts within a millisecond
            self._demote_others(nice)
        proc = await spawn(plan, start_nice)
        if not express:
            self._plain.add(proc)
        run = asyncio.ensure_future(proc.communicate())
        watch = asyncio.ensure_future(_wait_for_eof(reader))
        lifetime = self.config.job_lifetime or None
        try:
            done, _ = await asyncio.wait(
                {run, watch}, timeout=lifetime, return_when="FIRST_COMPLETED"
            )
            if run not in done:
                proc.kill()
                await run
                if watch in done:
                    raise ConnectionError("client disconnected, compile killed")
                message = b"ccfarmd: compilation took too long, killed\n"
                return encode_reply(
                    plan.version, EXIT_TIMEOUT << 8, stderr=message, stored=plan.stored
                )
        finally:
            watch.cancel()
            self._plain.discard(proc)
            if not run.done():
                proc.kill()
        stdout, stderr = run.result()
        check_reads(plan, ws, stderr + stdout)  # nothing read from outside the job
        assert proc.returncode is not None
        status = wait_status(proc.returncode)
        obj = deps = b""
        if status == 0:
            obj = _read(ws.output)
            if plan.root is not None:
                deps = deps_reply(plan, _read(ws.deps))
        reply = functools.partial(
            encode_reply,
            plan.version,
            status,
            stderr=unroot(plan, stderr),
            stdout=stdout,
            obj=obj,
            deps=deps,
            stored=plan.stored,
        )
        packed = compressed(plan.version) and not plan.stored
        if packed and len(obj) + len(deps) + len(stderr) + len(stdout) > INLINE_PACK:
            return await self.bounds.off_loop(reply)  # (the packer: 10-40 MB/s)
        return reply()


async def _wait_for_eof(reader: asyncio.StreamReader) -> None:
    """Return when the client closes its side (bytes sent meanwhile are ignored)."""
    while await reader.read(4096):
        pass


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


__all__ = ["DaemonService", "encode_reply_head"]
