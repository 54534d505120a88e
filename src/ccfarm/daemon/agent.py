"""The host agent inside ccfarmd: registers with the scheduler(s) and keeps
them informed (heartbeats with load, free slots and desktop use).

Availability is measured where the host's CPU really is (`external_load`):
in a CPU-limited cgroup or a container, from the cgroup's own CPU use
(`CgroupLoad`); otherwise from the load average. Both are net of ccfarm's
own jobs, per CPU the host may use.

The daemon stays the authority on its own slots: it reports what it has;
schedulers only lease out what hosts report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable

from ccfarm.cgroups import in_container, machine_cpus, own_cgroup, read_usage
from ccfarm.control.codec import hello
from ccfarm.control.messages import HOST_LEAVING, encode_host_name, encode_host_report
from ccfarm.daemon.probe import SpeedEstimate, tree_cpu
from ccfarm.errors import RemoteProtocolError
from ccfarm.model import CompilerIdentity, HostReport
from ccfarm.protocol import CCFARM, CCFARM_CPP
from ccfarm.protocol.auth import CLIENT, CONTROL, NONCE_SIZE, Handshake

MYPY = False
if MYPY:
    import ssl

log = logging.getLogger("ccfarmd.agent")

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connect = Callable[[str, int], Awaitable[Streams]]


class RefinedSpeed:
    """The speed to report: the probe's estimate, refined by the jobs since.

    Each call feeds the estimate the CPU seconds the compiles could have had
    (`service.compile_seconds`: their wall time, shared when more ran than
    the CPUs) and the children's CPU time, accumulated since the last call
    that had enough to say.
    """

    def __init__(
        self,
        estimate: SpeedEstimate,
        compile_seconds: Callable[[], float],
        children_cpu: Callable[[], float],
    ) -> None:
        self.estimate = estimate
        self.compile_seconds = compile_seconds
        self.children_cpu = children_cpu
        self._wall = compile_seconds()
        self._cpu = children_cpu()

    def __call__(self) -> float:
        wall, cpu = self.compile_seconds(), self.children_cpu()
        if wall - self._wall >= 0.5:
            self.estimate.observe(cpu - self._cpu, wall - self._wall)
            self._wall, self._cpu = wall, cpu
        return self.estimate.speed


class CgroupLoad:
    """External load per CPU from a cgroup's CPU use, net of ccfarm's own.

    Over the interval since the last measure: (the cgroup's CPU seconds -
    the daemon's and its compilers' CPU seconds) / wall seconds / CPUs. A
    call sooner than `min_interval` after the last measure (one heartbeat
    per scheduler) gives the last figure again, as does an unreadable
    counter; before the first interval it is 0.
    """

    def __init__(
        self,
        cpus: float,
        usage: Callable[[], float | None],
        own: Callable[[], float],
        clock: Callable[[], float],
        min_interval: float = 1.0,
    ) -> None:
        self.cpus = max(cpus, 0.01)
        self.usage, self.own, self.clock = usage, own, clock
        self.min_interval = min_interval
        self.value = 0.0
        self._last = self._sample()

    def _sample(self) -> tuple[float, float | None, float]:
        return self.clock(), self.usage(), self.own()

    def __call__(self) -> float:
        wall, usage, own = self.clock(), None, 0.0
        if wall - self._last[0] >= self.min_interval:
            wall, usage, own = self._sample()
        if usage is None:
            return self.value
        last_wall, last_usage, last_own = self._last
        self._last = (wall, usage, own)
        if last_usage is not None:
            external = (usage - last_usage) - (own - last_own)
            self.value = round(max(0.0, external) / (wall - last_wall) / self.cpus, 3)
        return self.value


class LoadAverageLoad:
    """External load per CPU from the load average, net of ccfarm's jobs.

    The 1-minute load average is an exponential average of the run queue
    (time constant 60 s), so ccfarm's part of it is not the jobs running
    now but their own such average: the load stays up for a minute after
    the jobs end, and is still rising while they start. What is taken off
    is the larger of the two, (load - max(running, average running)) / CPUs,
    so a host is not withdrawn for the jobs it just ran.
    """

    TIME_CONSTANT = 60.0

    def __init__(
        self,
        cpus: float,
        running: Callable[[], int],
        load: Callable[[], float] = lambda: os.getloadavg()[0],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cpus = max(cpus, 1.0)
        self.running, self.load, self.clock = running, load, clock
        self.average = float(running())
        self._when = clock()

    def __call__(self) -> float:
        now, running = self.clock(), self.running()
        decay = math.exp(-max(0.0, now - self._when) / self.TIME_CONSTANT)
        self.average = running + (self.average - running) * decay
        self._when = now
        return round(max(0.0, self.load() - max(running, self.average)) / self.cpus, 3)


def cgroup_counts(limit: float | None, affinity: int, machine: int, container: bool) -> bool:
    """Whether the cgroup's use, not the load average, says how busy the host is."""
    return container or affinity < machine or (limit is not None and limit < machine)


def availability(cpus: float, running: Callable[[], int]) -> tuple[str, Callable[[], float]]:
    """How this host measures its external load: (what, the measure).

    From its cgroup when it is CPU-limited (a quota below the machine's
    CPUs, or an affinity to fewer than all of them) or in a container,
    where the load average counts the neighbours; otherwise from the load
    average.
    """
    cgroup = own_cgroup()
    if cgroup is not None and read_usage(cgroup) is not None:
        affinity = machine_cpus()
        if cgroup_counts(cgroup.limit, affinity, os.cpu_count() or affinity, in_container()):
            measure = CgroupLoad(cpus, lambda: read_usage(cgroup), tree_cpu, time.monotonic)
            return f"cgroup v{cgroup.version} ({cpus:.3g} CPUs)", measure
    return "load average", LoadAverageLoad(cpus, running)


class HostAgent:
    def __init__(
        self,
        *,
        port: int,
        listen: str,
        advertise: str,
        slots: int,
        cpus: float,
        speed: Callable[[], float],
        compilers: tuple[CompilerIdentity, ...],
        running: Callable[[], int],
        desktop: Callable[[], bool],
        heartbeat: float = 2.0,
        leaving: asyncio.Event | None = None,
        connect: Connect = asyncio.open_connection,
        external: Callable[[], float] | None = None,
        secret: bytes | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """`leaving` set (the daemon drains or stops): say BYEE to the
        scheduler (no new leases; the running jobs finish) and keep the
        connection until the daemon exits (its close: the host is gone);
        `connect` opens a connection to a scheduler;
        `external` measures the external load per CPU (default: from the
        cgroup where the host is CPU-limited, else the load average);
        with the farm `secret`, each scheduler must prove it before the
        agent reports (a fake scheduler learns nothing, hands out nothing);
        with `tls_context` (`--tls-ca`), the default `connect` speaks TLS and
        the scheduler's certificate must name the address dialled."""
        self.port = port
        self.listen = listen
        self.advertise = advertise
        self.slots = slots
        self.cpus = cpus
        self.speed = speed
        self.compilers = compilers
        self.running = running
        self.desktop = desktop
        self.heartbeat = heartbeat
        self.leaving = leaving or asyncio.Event()
        #: connected sessions that have not said BYEE yet (see `said_goodbye`)
        self._unsaid = 0
        self._all_said = asyncio.Event()
        self._all_said.set()
        if tls_context is not None and connect is asyncio.open_connection:
            context = tls_context

            def connect(address: str, port: int) -> Awaitable[Streams]:
                return asyncio.open_connection(address, port, ssl=context, server_hostname=address)

        self._connect = connect
        self.secret = secret
        if external is None:
            what, external = availability(cpus, running)
            log.info("availability measured from the %s", what)
        self.external = external

    def report(self, local_address: str) -> HostReport:
        address = self.advertise or (
            self.listen if self.listen not in ("", "0.0.0.0", "::") else local_address
        )
        return HostReport(
            host=f"{address}:{self.port}",
            address=address,
            port=self.port,
            slots=self.slots,
            cpus=max(1, math.ceil(self.cpus - 1e-9)),
            speed=self.speed(),
            load=os.getloadavg()[0],
            running=self.running(),
            external_load=self.external(),
            desktop_in_use=self.desktop(),
            compilers=self.compilers,
            protocols=(1, 2, 3, CCFARM, CCFARM_CPP),
        )

    async def run(self, scheduler: tuple[str, int]) -> None:
        """Stay connected to one scheduler, reconnecting with backoff, until
        the daemon exits (the task is cancelled); once `leaving`, no new
        connections."""
        delay = 1.0
        while not self.leaving.is_set():
            try:
                await self._session(*scheduler)
                delay = 1.0
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                log.info(
                    "scheduler %s:%d unreachable (%s); retrying in %.0f s", *scheduler, exc, delay
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.leaving.wait(), delay)
            delay = min(delay * 2, 10.0)

    async def said_goodbye(self, timeout: float) -> None:
        """Until each connected scheduler has been told BYEE (after `leaving`
        is set), or `timeout`: the daemon's exit must not cut it short."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_said.wait(), timeout)

    async def _session(self, address: str, port: int) -> None:
        reader, writer = await asyncio.wait_for(self._connect(address, port), 5)
        sockname = writer.get_extra_info("sockname")
        if sockname is None:  # closed already (a TLS scheduler that refused our certificate)
            writer.close()
            raise ConnectionError("the scheduler closed the connection at once")
        local = sockname[0]
        if self.secret is not None:
            try:
                await asyncio.wait_for(_authenticate(reader, writer, self.secret), 10)
            except RemoteProtocolError as exc:
                writer.close()
                raise OSError(f"not authenticated: {exc}") from None
        log.info("registered with scheduler %s:%d", address, port)
        owed = True  # this session's goodbye
        self._unsaid += 1
        self._all_said.clear()

        def settle() -> None:
            nonlocal owed
            if owed:
                owed = False
                self._unsaid -= 1
                if not self._unsaid:
                    self._all_said.set()

        closed = asyncio.ensure_future(reader.read())  # the scheduler sends nothing to hosts
        leaving = asyncio.ensure_future(self.leaving.wait())
        try:
            if self.secret is None:
                writer.write(hello())
            said_goodbye = False
            while not closed.done():
                report = self.report(local)
                writer.write(encode_host_report(report))
                if leaving.done() and not said_goodbye:
                    # no new leases here, the running jobs finish; the scheduler
                    # hears it at once, and drops the host when this connection
                    # closes (the daemon's exit)
                    writer.write(encode_host_name(HOST_LEAVING, report.host))
                    said_goodbye = True
                    log.info("leaving scheduler %s:%d", address, port)
                await asyncio.wait_for(writer.drain(), 10)
                if said_goodbye:
                    settle()
                waits = {closed} if said_goodbye else {closed, leaving}
                await asyncio.wait(waits, timeout=self.heartbeat)
        finally:
            settle()
            closed.cancel()
            leaving.cancel()
            writer.close()


async def _authenticate(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes
) -> None:
    """The hello and the farm secret's handshake (the scheduler proves itself
    first); the agent's proof goes out ahead of its first report."""
    handshake = Handshake(CLIENT, secret, os.urandom(NONCE_SIZE), CONTROL)
    writer.write(hello() + handshake.start())
    while not handshake.done:
        data = await reader.read(4096)
        if not data:
            handshake.receive_eof()
        writer.write(handshake.receive_data(data))
    if handshake.rest:  # a scheduler sends hosts nothing
        raise RemoteProtocolError("the scheduler spoke after its challenge")
