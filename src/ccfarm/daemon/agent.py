"""The host agent inside ccfarmd: registers with the scheduler(s) and keeps
them informed (heartbeats with load, free slots and desktop use).

The daemon stays the authority on its own slots: it reports what it has;
schedulers only lease out what hosts report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Awaitable, Callable

from ccfarm.control.codec import hello
from ccfarm.control.messages import HOST_LEAVING, encode_host_name, encode_host_report
from ccfarm.daemon.probe import SpeedEstimate
from ccfarm.model import CompilerIdentity, HostReport
from ccfarm.protocol import CCFARM, CCFARM_CPP

log = logging.getLogger("ccfarmd.agent")

Connect = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class RefinedSpeed:
    """The speed to report: the probe's estimate, refined by the jobs since.

    Each call feeds the estimate the compile wall time and the children's CPU
    time accumulated since the last call that had enough to say.
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
    ) -> None:
        """`leaving` set (the daemon drains or stops): say BYEE to the
        scheduler and stop; `connect` opens a connection to a scheduler."""
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
        self._connect = connect

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
            desktop_in_use=self.desktop(),
            compilers=self.compilers,
            protocols=(1, 2, 3, CCFARM, CCFARM_CPP),
        )

    async def run(self, scheduler: tuple[str, int]) -> None:
        """Stay connected to one scheduler until `leaving`, reconnecting with backoff."""
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

    async def _session(self, address: str, port: int) -> None:
        reader, writer = await asyncio.wait_for(self._connect(address, port), 5)
        local = writer.get_extra_info("sockname")[0]
        log.info("registered with scheduler %s:%d", address, port)
        closed = asyncio.ensure_future(reader.read())  # the scheduler sends nothing to hosts
        leaving = asyncio.ensure_future(self.leaving.wait())
        try:
            writer.write(hello())
            while not closed.done():
                report = self.report(local)
                if leaving.done():  # no new leases here: the scheduler hears it at once
                    writer.write(encode_host_name(HOST_LEAVING, report.host))
                    await asyncio.wait_for(writer.drain(), 5)
                    log.info("left scheduler %s:%d", address, port)
                    return
                writer.write(encode_host_report(report))
                await asyncio.wait_for(writer.drain(), 10)
                await asyncio.wait({closed, leaving}, timeout=self.heartbeat)
        finally:
            closed.cancel()
            leaving.cancel()
            writer.close()
