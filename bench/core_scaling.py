"""Decision cost of the pure scheduler core at 100 and at 10,000 hosts.

    python bench/core_scaling.py [--cycles 100000]

Two steady states, each measured as request + release cycles:
  free:       half the farm's slots leased; every request is granted at once
  saturated:  every slot leased and 200 clients waiting; every release hands
              the slot to a waiting client (fair queue) and a new request waits
Target: the cost at 10,000 hosts within 3x the cost at 100.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import deque

sys.path.insert(0, "src")
from ccfarm.model import CompilerIdentity, HostReport, LeaseGranted, LeaseRequest  # noqa: E402
from ccfarm.scheduler.core import Farm  # noqa: E402
from ccfarm.scheduler.policy import Policy  # noqa: E402

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")


def make_farm(hosts: int) -> Farm:
    farm = Farm(Policy(host_timeout=1e9, lease_timeout=1e9, max_wait=1e9), random.Random(1))
    for i in range(hosts):
        speed = (1.0, 2.0, 4.0)[i % 3]
        farm.host_report(
            HostReport(
                f"h{i}",
                f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}",
                3632,
                4,
                4,
                speed,
                0.0,
                compilers=(GCC,),
            ),
            0.0,
        )
    return farm


def cycles(hosts: int, n: int, saturated: bool) -> float:
    farm = make_farm(hosts)
    total = hosts * 4
    held: deque[int] = deque()
    ids = iter(range(1, 10**12))
    clients = [f"m{i}/u" for i in range(200)]
    fill = total if saturated else total // 2
    for _ in range(fill):
        for o in farm.request(LeaseRequest(next(ids), "filler/u", GCC, 1e9), 0.0):
            if isinstance(o, LeaseGranted):
                held.append(o.lease)
    if saturated:
        for i in range(200):
            farm.request(LeaseRequest(next(ids), clients[i], GCC, 1e9), 0.0)
    started = time.perf_counter()
    for i in range(n):
        # sizes as wrappers send them (20-220 KB), time moving so that ended
        # leases teach the cost model
        now = 1.0 + i * 1e-3
        size = 20_000 + (i * 7919) % 200_000
        for o in farm.request(LeaseRequest(next(ids), clients[i % 200], GCC, 1e9, size), now):
            if isinstance(o, LeaseGranted):
                held.append(o.lease)
        for o in farm.release(held.popleft(), now):
            if isinstance(o, LeaseGranted):
                held.append(o.lease)
    return (time.perf_counter() - started) / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cycles", type=int, default=100_000)
    args = p.parse_args()
    print(f"pure core, request+release cycles, {args.cycles} each (microseconds per cycle)")
    for saturated in (False, True):
        small = cycles(100, args.cycles, saturated)
        large = cycles(10_000, args.cycles, saturated)
        label = "saturated" if saturated else "free"
        print(
            f"  {label:<10} 100 hosts: {small:6.2f} us   10,000 hosts: {large:6.2f} us   "
            f"ratio {large / small:.2f} (target <= 3)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
