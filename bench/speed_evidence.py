"""A lying host's share of successive builds, with and without speed evidence.

    python bench/speed_evidence.py [--builds 4] [--jobs 40] [--claim 100]

The pure scheduler core on a simulated timeline: three honest hosts of
speed 1 and one claiming `--claim` that is no faster, two slots each, one
client running `make -j8` builds of `--jobs` jobs (sizes 10-200 KB, cost
0.05 s + 10 us per KB at speed 1) one after another; each job is released
when its host would have finished it. Prints, per build, the liar's jobs
(a fair share is a quarter) and the build's makespan, with evidence (the
default) and with `--no-speed-evidence` (every claim trusted).
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys

sys.path.insert(0, "src")
from ccfarm.model import CompilerIdentity, HostReport, LeaseGranted, LeaseRequest  # noqa: E402
from ccfarm.scheduler.core import Farm  # noqa: E402
from ccfarm.scheduler.policy import Policy  # noqa: E402

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")


def builds(claim: float, evidence: bool, count: int, jobs: int) -> list[tuple[int, float]]:
    """(liar's jobs, makespan) of each build."""
    policy = Policy(host_timeout=1e9, max_wait=1e9, speed_evidence=evidence)
    farm = Farm(policy, random.Random(1))
    claims = {"h1": 1.0, "h2": 1.0, "h3": 1.0, "liar": claim}
    for name, speed in claims.items():
        farm.host_report(HostReport(name, name, 3632, 2, 2, speed, 0.0, compilers=(GCC,)), 0.0)
    rng = random.Random(2)
    ids = iter(range(1, 10**9))
    now = 0.0
    out: list[tuple[int, float]] = []
    for _ in range(count):
        start, liar = now, 0
        todo = [rng.randint(10_000, 200_000) for _ in range(jobs)]
        size_of: dict[int, int] = {}
        running: list[tuple[float, int]] = []
        outstanding = 0
        while todo or running:
            while todo and outstanding < 8:
                req = LeaseRequest(next(ids), "c/u", GCC, 1e9, todo.pop())
                size_of[req.request] = req.size
                outstanding += 1
                granted = farm.request(req, now)
                for o in granted:
                    if isinstance(o, LeaseGranted):
                        liar += o.host == "liar"
                        seconds = 0.05 + 1e-5 * size_of[o.request]  # every host: speed 1
                        heapq.heappush(running, (now + seconds, o.lease))
            now, lease = heapq.heappop(running)
            outstanding -= 1
            for o in farm.release(lease, now):
                if isinstance(o, LeaseGranted):
                    liar += o.host == "liar"
                    heapq.heappush(running, (now + 0.05 + 1e-5 * size_of[o.request], o.lease))
        out.append((liar, now - start))
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--builds", type=int, default=4)
    p.add_argument("--jobs", type=int, default=40)
    p.add_argument("--claim", type=float, default=100.0)
    args = p.parse_args()
    print(f"liar claiming {args.claim:g} among 3 honest hosts, {args.jobs}-job builds at -j8")
    print(f"(fair share {args.jobs / 4:g} jobs; liar's jobs / makespan in simulated seconds)")
    for evidence in (True, False):
        row = builds(args.claim, evidence, args.builds, args.jobs)
        label = "evidence" if evidence else "claims trusted"
        cells = "   ".join(f"{liar:3d} / {span:5.2f} s" for liar, span in row)
        print(f"  {label:<15} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
