"""Scheduler throughput and latency over real loopback sockets.

    python bench/scheduler_load.py [--hosts 1000] [--clients 500] [--seconds 10]

Starts `ccfarm-scheduler` in its own process, registers N simulated hosts
(HOST messages with heartbeats), then runs M concurrent clients, each on its
own connection, requesting a lease, getting it, releasing it, in a loop.
Reports grants+releases per second and p50/p99 grant latency.
Targets: >= 5,000 per second from one scheduler process, p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import contextlib

from ccfarm.control import messages as m  # noqa: E402
from ccfarm.control.codec import encode, hello  # noqa: E402
from ccfarm.demo.farm import scheduler_command, wait_listening  # noqa: E402
from ccfarm.model import CompilerIdentity, HostReport, LeaseRequest  # noqa: E402

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
ADDRESS = "127.0.2.1"


async def hosts_feeder(port: int, n: int, ready: asyncio.Event, stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(ADDRESS, port)
    reports = [
        m.encode_host_report(
            HostReport(
                f"10.1.{i >> 8}.{i & 255}:3632",
                f"10.1.{i >> 8}.{i & 255}",
                3632,
                4,
                4,
                (1.0, 2.0, 4.0)[i % 3],
                0.1,
                compilers=(GCC,),
            )
        )
        for i in range(n)
    ]
    writer.write(hello())
    while not stop.is_set():
        writer.write(b"".join(reports))
        await writer.drain()
        ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5)
    writer.close()


async def client(
    port: int,
    name: str,
    deadline: float,
    latencies: list[float],
    counts: list[int],
    interval: float,
) -> None:
    """Request, get, release, in a loop; every `interval` seconds (0: at once)."""
    reader, writer = await asyncio.open_connection(ADDRESS, port)
    request = m.encode_lease_request(LeaseRequest(1, name, GCC, 30))
    writer.write(hello())
    next_start = time.perf_counter() + interval * random.random()
    while time.perf_counter() < deadline:
        if interval:
            await asyncio.sleep(max(0.0, next_start - time.perf_counter()))
            next_start += interval
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readexactly(12)
        body = await reader.readexactly(int(head[4:], 16))
        latencies.append(time.perf_counter() - started)
        if head[:4] != b"LGNT":
            raise SystemExit(f"unexpected reply {head!r} {body!r}")
        lease = body.split(b"lease=", 1)[1].split(b"\n", 1)[0].decode()
        writer.write(encode(m.LEASE_RELEASE, {"lease": lease}))
        counts[0] += 2  # one grant, one release
    writer.close()


async def run(
    port: int, hosts: int, clients: int, seconds: float, rate: float
) -> tuple[float, list[float]]:
    ready, stop = asyncio.Event(), asyncio.Event()
    feeder = asyncio.ensure_future(hosts_feeder(port, hosts, ready, stop))
    await ready.wait()
    await asyncio.sleep(1.0)  # let the scheduler take all registrations in
    latencies: list[float] = []
    counts = [0]
    interval = 2 * clients / rate if rate else 0.0  # a cycle is one grant and one release
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(client(port, f"m{i}/u", deadline, latencies, counts, interval) for i in range(clients))
    )
    elapsed = time.perf_counter() - started
    stop.set()
    await feeder
    return counts[0] / elapsed, latencies


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--hosts", type=int, default=1000)
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument(
        "--rate",
        type=float,
        default=5000.0,
        help="paced run at this many grants+releases per second (then flat out)",
    )
    args = p.parse_args()
    port = 3634
    proc = subprocess.Popen(scheduler_command(ADDRESS, port, ("--log-level", "warning")))
    runs = []
    try:
        wait_listening(ADDRESS, port)
        for rate in (args.rate, 0.0):
            achieved, lat = asyncio.run(run(port, args.hosts, args.clients, args.seconds, rate))
            runs.append((rate, achieved, lat))
    finally:
        proc.terminate()
        proc.wait(10)
    print(
        f"{args.hosts} hosts, {args.clients} concurrent clients on their own connections, "
        f"{args.seconds:.0f} s per run, one scheduler process (the load generator is another "
        f"process on the same 2-core machine)"
    )
    for asked, achieved, lat in runs:
        lat.sort()
        p50 = statistics.median(lat) * 1000
        p99 = lat[int(len(lat) * 0.99)] * 1000
        label = f"paced at {asked:,.0f}/s" if asked else "flat out"
        print(
            f"  {label:<18} grants+releases per second {achieved:8,.0f}   "
            f"grant latency p50 {p50:6.2f} ms, p99 {p99:6.2f} ms"
        )
    print("  targets: >= 5,000 per second with p99 < 20 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
