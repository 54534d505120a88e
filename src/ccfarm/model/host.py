"""What a compile host tells the scheduler about itself."""

from __future__ import annotations

from ccfarm._record import record
from ccfarm.model.compiler import CompilerIdentity


@record
class HostReport:
    """A host agent's registration or heartbeat."""

    host: str  # unique name, "address:port"
    address: str
    port: int
    slots: int  # jobs it accepts at most (its --jobs)
    cpus: int
    speed: float  # bigger is faster
    load: float  # 1-minute load average
    running: int = 0  # ccfarm jobs running there now (their load is not "external")
    desktop_in_use: bool = False
    compilers: tuple[CompilerIdentity, ...] = ()
    protocols: tuple[int, ...] = (1, 2, 3)
    #: external load per CPU as the host measured it (its cgroup's use or the
    #: load average, net of its ccfarm jobs); None from older hosts, for
    #: which the scheduler takes (load - running) / cpus
    external_load: float | None = None
