"""A lease: one job's claim on one slot of one host, and its life."""

from __future__ import annotations

from ccfarm._record import record
from ccfarm.model.compiler import CompilerIdentity


@record
class LeaseRequest:
    request: int  # the requester's id for this request
    client: str  # fairness key: "machine/user"
    compiler: CompilerIdentity | None  # None: any host
    timeout: float  # seconds the request may wait for a slot
    #: the job's preprocessed size in bytes, a hint of what it costs to
    #: compile (0: not known, counted as an average job)
    size: int = 0
    #: the client holds a free local slot: it would rather compile at once on
    #: its own machine than wait, or use a host hardly faster than itself
    local_slot: bool = False
    #: the client machine's speed in the hosts' units (0: not known)
    local_speed: float = 0.0
    #: how many of `size`'s bytes come from the job's main file (not from
    #: headers), the better measure of its cost (0: not known)
    main: int = 0


@record
class LeaseGranted:
    request: int
    lease: int
    host: str
    address: str
    port: int
    #: an express lease: one job beyond the host's slots, run ahead of the others
    express: bool = False
    #: the host's speed and speed tier when granted (0 and None: not told)
    speed: float = 0.0
    tier: int | None = None


#: the refusal that means "compile on your own machine" (a local slot is free
#: and no free host would finish the job sooner)
LOCAL = "local"


@record
class LeaseRefused:
    request: int
    reason: str  # LOCAL, or why no host was found
    note: str = ""  # for people: what the decision weighed


@record
class LeaseRevoked:
    """A granted lease ended by the scheduler (host gone, lease timed out)."""

    lease: int
    request: int
    reason: str
