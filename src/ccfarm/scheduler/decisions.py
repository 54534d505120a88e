"""Who takes a free slot, when a slow slot is worth it, who goes express. Pure.

These read the farm's parts and change nothing (but for the random draw of
a host): `core.Farm` asks, then grants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ccfarm.scheduler.evidence import SpeedEvidence
from ccfarm.scheduler.ledger import LeaseLedger
from ccfarm.scheduler.policy import Policy
from ccfarm.scheduler.queue import WaitQueue
from ccfarm.scheduler.slots import Host, Key, SlotIndex


@dataclass(slots=True)
class Turn:
    """A waiting client's turn: it takes a slot with its smallest (or biggest)
    job. (Not frozen: see `ledger.Lease`.)"""

    key: Key
    client: str
    smallest: bool


class Decisions:
    """The scheduling rules over the slots, the queue and the ledger."""

    def __init__(
        self,
        policy: Policy,
        slots: SlotIndex,
        queue: WaitQueue,
        ledger: LeaseLedger,
        scan_clients: int,
        evidence: SpeedEvidence | None = None,
    ) -> None:
        self.policy = policy
        #: hosts on trial (`SpeedEvidence.on_trial`) take average jobs as if fast enough
        self.evidence = evidence
        self.slots = slots
        self.queue = queue
        self.ledger = ledger
        #: how many waiting clients of a key a freed slot looks at (`core.SCAN_CLIENTS`)
        self.scan_clients = scan_clients

    # -- fastest first -------------------------------------------------------------

    def worth(self, key: Key, host: Host, ahead: int, cost: float = 1.0) -> bool:
        """Is a free slot on `host` better than waiting for a faster host?

        With F busy slots on faster hosts (mean speed s_f) each freeing after
        an average job's time there (w/s_f), the (ahead+1)-th of them frees
        after about t = (ahead+1)/F of that. A job of c times the average
        cost takes c*w/s_h on this host (speed s_h), c*w/s_f on a faster
        one. Waiting for the faster slot costs more than the job's own wait:
        a build sends its next job as soon as one is placed, and the slot
        this job waits for would have gone to that one, which now waits
        about as long (while this slot stays idle). Counting both waits,
        the slot is worth it when c*w/s_h - c*w/s_f <= 2t, that is when
        ahead + 1 >= c * F * (s_f / s_h - 1) / 2  (= c * `need`).
        Counting this job's wait alone (half as permissive) left the slowest
        hosts of the emulated farm idle most of a one-client build, which
        took 9-18 % longer (docs/benchmarks.md, tenth session).
        """
        return ahead + 1 >= cost * self.need(key, host)

    def need(self, key: Key, host: Host) -> float:
        """F * (s_f / s_h - 1) / 2 of `worth`: 0 with nothing faster to wait for;
        at most 1 for a host on trial (it takes jobs of average cost or less
        until its speed is known)."""
        if not self.policy.prefer_fast:
            return 0.0
        slots, speed = self.slots.capacity.faster(key, host.next_tier)
        if slots <= 0:
            return 0.0
        need = max(0.0, slots * (speed / max(host.next_speed, 1e-9) - 1)) / 2
        if (
            need > 1.0
            and self.evidence is not None
            and self.evidence.on_trial(key, host.report.host)
        ):
            return 1.0
        return need

    # -- the client's own machine ---------------------------------------------------

    def stay_local(self, host: Host | None, local_speed: float) -> str:
        """Why a job whose client holds a free local slot should compile there
        ("": take `host`, the free host `pick` chose).

        The client compiles at once rather than wait: with no free host it
        stays. With one, it stays unless that host is more than
        `local_margin` times as fast as the client (a speed of 0: not known,
        so any free host is taken). The host is the fastest tier's pick:
        nothing free is much faster. A job that would wait for a faster busy
        host (`worth`) takes the free one instead, as it is faster than
        compiling here and the client does not wait.
        """
        if host is None:
            return "no free host"
        speed = host.next_speed
        if local_speed <= 0 or speed > local_speed * self.policy.local_margin:
            return ""
        return f"no free host is faster (best free {speed:.3g}, client {local_speed:.3g})"

    # -- fairness ------------------------------------------------------------------

    def turn(self, host: Host, now: float) -> Turn | None:
        """Which waiting client takes a free slot of `host`, if any.

        Each compiler has a ring of waiting clients; a served client goes to
        the back of it. On a host of the fastest tier that has slots (nothing
        faster to wait for) the waiting client that used the farm least
        lately (`usage`; ring order breaks ties) takes it, with its biggest
        job: the big jobs go first and to the fast hosts. A slot on a slower
        host goes only to a job for which it is worth it (`worth`, which
        weighs the job's relative cost), and then to the client's smallest
        job: first to the least-used client for which it is worth it at the
        front of the line (behind that client's own other jobs, which go to
        faster hosts first); if it is worth it only further back (a much
        slower host), to the client that used the farm most. So the heaviest
        user takes the slow host, a small build keeps its turn for a fast
        one, and no big job ends a build late on a slow host.
        """
        best: tuple[tuple[int, float, int], Key, str, bool] | None = None
        rings = self.queue.rings
        for key in host.keys:
            ring = rings.get(key)
            if not ring:
                continue
            need = self.need(key, host)
            count = self.queue.counts[key]
            if need > 0 and self.queue.cheapest_cost(key) * need > count:
                continue  # worth it for nobody: no need to look at each client
            choice = self._choose(ring, need, count, now)
            if choice is not None and (best is None or choice[0] < best[0]):
                best = (choice[0], key, choice[1], need > 0)
        if best is None:
            return None
        _, key, client, smallest = best
        return Turn(key, client, smallest)

    def _choose(
        self, ring: Mapping[str, Sequence[tuple[float, int]]], need: float, count: int, now: float
    ) -> tuple[tuple[int, float, int], str] | None:
        """Which waiting client takes a slot of `need` (see `need`), ranked
        (smaller first) against the other compilers' choices for the same slot.

        It looks at the `scan_clients` clients served longest ago, and further
        only if none of them can take it: the cost of a grant does not grow
        with the queue; beyond them the ring's order decides."""
        front: tuple[float, str] | None = None
        back: tuple[float, str] | None = None
        usage, scan = self.ledger.usage, self.scan_clients
        for looked, (client, line) in enumerate(ring.items()):
            if looked >= scan and (front or back):
                break  # further back only when nobody this far can take it
            used = usage(client, now)
            cheapest = line[0][0]
            # worth it at the front of the line, behind the client's own
            # bigger jobs (which the faster hosts take first)?
            if cheapest * need <= len(line):
                if front is None or used < front[0]:
                    front = (used, client)
            elif cheapest * need <= count and (back is None or used >= back[0]):
                back = (used, client)  # worth it behind everyone: the heaviest
        if front is not None:
            used, client = front
            return (0, used, self.queue.last_served(client)), client
        if back is not None:
            used, client = back
            return (1, -used, -self.queue.last_served(client)), client
        return None

    # -- express leases ------------------------------------------------------------

    def express_host(self, key: Key, client: str) -> Host | None:
        """The host for an express lease, if `client` should get one now.

        Only when every slot is taken, only for a client below its fair share
        (offered slots / active clients), and only for a light one (its
        demand, leases + waiting requests, at most half another client's): so
        a `make -j4` started during two `make -j200`s runs at once, while the
        big builds never get express leases, not even from each other; and
        (the caller checks) only for a job of at least `express_min_cost`:
        a small build's big jobs are its critical path. The fastest host
        whose lane is open takes it and runs it ahead of its other jobs.
        (Clients are few: the scans here are over clients, not hosts.)
        """
        if not self.policy.express:
            return None
        loads = self.ledger.loads()
        active = len(loads) + (client not in loads)
        share = self.slots.offered_total / active
        if self.ledger.held(client) >= share:
            return None
        # only a light client: its demand (leases + waiting requests) at most
        # half of the heaviest other client's. Two equal big builds never get
        # express leases (they would only slow each other's jobs down).
        demand = loads.get(client, 0) + 1
        if not any(other != client and load >= 2 * demand for other, load in loads.items()):
            return None
        return self.slots.pick_lane(key)

    def lane_turn(self, host: Host) -> Turn | None:
        """An express lane opened on `host`: the longest-unserved waiting client
        below its share takes it for its biggest job, if that is big enough."""
        if not host.lane_open or not self.policy.express:
            return None
        for key in host.keys:
            for client, line in self.queue.rings.get(key, {}).items():
                if line[-1][0] < self.policy.express_min_cost:
                    continue
                # (`express_host` draws a lane at random only to say whether
                # one is open: replayed timelines depend on that draw)
                if self.express_host(key, client) is not None:
                    return Turn(key, client, smallest=False)
        return None
