"""What the scheduler core is fed and what it answers (frozen records)."""

from __future__ import annotations

from ccfarm._record import record


@record
class Compiler:
    """A compiler identity; a request matches hosts that have exactly this one."""

    family: str  # "gcc", "clang"
    version: str  # "12.2.0"
    target: str  # "x86_64-linux-gnu"

    def text(self) -> str:
        return f"{self.family} {self.version} {self.target}"

    @classmethod
    def parse(cls, text: str) -> Compiler:
        family, version, target = text.split()
        return cls(family, version, target)


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
    compilers: tuple[Compiler, ...] = ()
    protocols: tuple[int, ...] = (1, 2, 3)


@record
class LeaseRequest:
    request: int  # the shell's id for this request
    client: str  # fairness key: "machine/user"
    compiler: Compiler | None  # None: any host
    timeout: float  # seconds the request may wait for a slot
    #: the job's preprocessed size in bytes, a hint of what it costs to
    #: compile (0: not known, counted as an average job)
    size: int = 0


@record
class LeaseGranted:
    request: int
    lease: int
    host: str
    address: str
    port: int
    #: an express lease: one job beyond the host's slots, run ahead of the others
    express: bool = False


@record
class LeaseRefused:
    request: int
    reason: str


@record
class LeaseRevoked:
    """A granted lease ended by the scheduler (host gone, lease timed out)."""

    lease: int
    request: int
    reason: str


Outcome = LeaseGranted | LeaseRefused | LeaseRevoked
