"""A full farm and an idle client: 5 sequential jobs while another build holds
every host slot (issue "a live farm": target 5 s in all).

Starts a scheduler and two ccfarmd hosts on loopback, takes every host slot
with another client's leases, then times 5 sequential `ccfarm gcc -c` jobs
(the wrapper's defaults: this machine's speed measured once) beside the
same 5 compiles with plain `gcc` (the floor), alternating which goes first.

    python bench/full_farm.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, timed  # noqa: E402

from ccfarm.client.job.lease import Lease, request_lease  # noqa: E402
from ccfarm.demo.farm import (  # noqa: E402
    scheduler_command,
    start_daemon,
    stop_daemon,
    wait_listening,
)

SOURCE = "".join(
    f"double f{i}(double x) {{ double s = 0; for (int k = 0; k < {i % 7 + 3}; k++) "
    f"s += x * k / (k + {i + 1}.0); return s; }}\n"
    for i in range(200)
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ccfarm = shutil.which("ccfarm")
    if ccfarm is None:
        sys.exit("ccfarm is not on PATH (.venv/bin)")
    with tempfile.TemporaryDirectory(prefix="ccfarm-bench-") as tmp:
        address = "127.0.1.200"
        port = free_port(address)
        sched = f"{address}:{port}"
        log = os.path.join(tmp, "scheduler.log")
        scheduler = subprocess.Popen(
            scheduler_command(address, port, ("--log-file", log)), stdin=subprocess.DEVNULL
        )
        daemons = []
        held: list[Lease] = []
        try:
            wait_listening(address, port)
            for n in (201, 202):
                host = f"127.0.1.{n}"
                daemons.append(
                    start_daemon(
                        host,
                        free_port(host),
                        1,
                        tmp,
                        extra=("--scheduler", sched, "--speed", "1", "--heartbeat", "0.5"),
                    )
                )
            while len(held) < 2:  # every host slot, as soon as both hosts joined
                got = request_lease([(address, port)], None, client="other/build", wait=10)
                assert isinstance(got, Lease)
                held.append(got)
            with open(os.path.join(tmp, "a.c"), "w") as f:
                f.write(SOURCE)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("CCFARM_", "DISTCC_"))}
            env.update(CCFARM_SCHEDULER=sched, CCFARM_DIR=os.path.join(tmp, "state"))
            farm_runs, local_runs = [], []
            for r in range(args.rounds):

                def farm() -> float:
                    return sum(
                        timed([ccfarm, "gcc", "-O2", "-c", "a.c", "-o", f"f{i}.o"], tmp, env)
                        for i in range(5)
                    )

                def local() -> float:
                    return sum(
                        timed(["gcc", "-O2", "-c", "a.c", "-o", f"l{i}.o"], tmp, env)
                        for i in range(5)
                    )

                order = (farm, local) if r % 2 == 0 else (local, farm)
                for run in order:
                    (farm_runs if run is farm else local_runs).append(run())
            print(
                f"5 sequential jobs, every host slot held by another build ({args.rounds} rounds)"
            )
            print(
                f"  ccfarm (scheduler, defaults): {', '.join(f'{t:.2f}' for t in farm_runs)} s"
                f"  median {statistics.median(farm_runs):.2f} s"
            )
            print(
                f"  plain gcc:                    {', '.join(f'{t:.2f}' for t in local_runs)} s"
                f"  median {statistics.median(local_runs):.2f} s"
            )
            print(
                f"  ratio {statistics.median(farm_runs) / statistics.median(local_runs):.2f}"
                "  (first ccfarm round includes measuring this machine's speed once)"
            )
        finally:
            for lease in held:
                lease.release()
            for d in daemons:
                stop_daemon(d)
            scheduler.terminate()
            scheduler.wait(10)


if __name__ == "__main__":
    main()
