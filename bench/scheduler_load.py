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
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import contextlib

from ccfarm.control import messages as m  # noqa: E402
from ccfarm.control.codec import encode, hello  # noqa: E402
from ccfarm.demo.farm import wait_listening  # noqa: E402
from ccfarm.scheduler.model import Compiler, HostReport, LeaseRequest  # noqa: E402

GCC = Compiler("gcc", "12.2.0", "x86_64-linux-gnu")
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
    port: int, name: str, deadline: float, latencies: list[float], counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(ADDRESS, port)
    request = m.encode_lease_request(LeaseRequest(1, name, GCC, 30))
    writer.write(hello())
    while time.perf_counter() < deadline:
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


async def run(port: int, hosts: int, clients: int, seconds: float) -> tuple[float, list[float]]:
    ready, stop = asyncio.Event(), asyncio.Event()
    feeder = asyncio.ensure_future(hosts_feeder(port, hosts, ready, stop))
    await ready.wait()
    await asyncio.sleep(1.0)  # let the scheduler take all registrations in
    latencies: list[float] = []
    counts = [0]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(client(port, f"m{i}/u", deadline, latencies, counts) for i in range(clients))
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
    args = p.parse_args()
    port = 3634
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ccfarm.scheduler.main",
            "--listen",
            ADDRESS,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    try:
        wait_listening(ADDRESS, port)
        rate, lat = asyncio.run(run(port, args.hosts, args.clients, args.seconds))
    finally:
        proc.terminate()
        proc.wait(10)
    lat.sort()
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99)] * 1000
    print(
        f"{args.hosts} hosts, {args.clients} concurrent clients, {args.seconds:.0f} s, "
        f"one scheduler process (load generator in another, same 2-core machine)"
    )
    print(f"  grants+releases per second: {rate:,.0f}  (target >= 5,000)")
    print(f"  grant latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms  (target p99 < 20 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
