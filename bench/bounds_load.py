"""Load and soak against a real ccfarmd and ccfarm-scheduler (docs/security.md,
"Limits and load").

1. Daemon: IDLE concurrent connections that send nothing (from 16 client
   addresses), and at the same time JOBS small compile jobs offered at once
   to a 4-slot daemon (from other addresses). Prints how many jobs were
   answered and refused, their latency, and the daemon's peak RSS and open
   descriptors.
2. Scheduler: IDLE silent connections, then a lease request from another
   address: how long its answer takes.
3. Soak (--soak seconds, at least 300 for the record): jobs, idle
   connections, garbage and half-sent bodies against the daemon, lease
   requests and releases against the scheduler, without pause; RSS and open
   descriptors of both sampled every 10 s, which must stay flat.

    python bench/bounds_load.py                    # 1,000 idle, 200 jobs, 300 s soak
    python bench/bounds_load.py --soak 0           # the load only
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ccfarm.control import messages as m
from ccfarm.control.codec import MessageParser, hello
from ccfarm.demo.farm import (
    scheduler_command,
    start_daemon,
    stop_daemon,
    stop_process,
    wait_listening,
)
from ccfarm.model import HostReport, LeaseRequest
from ccfarm.protocol import LZO, JobHeader, encode_request

DAEMON = "127.0.3.1"
SCHEDULER = "127.0.3.2"
JOB = encode_request(JobHeader(LZO, (b"gcc", b"-c", b"x.c", b"-o", b"x.o")), source=b"int x;\n")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def job(port: int, source: str) -> tuple[str, float]:
    """("ok" | "refused", seconds) of one small job from `source`."""
    started = time.perf_counter()
    try:
        with socket.create_connection((DAEMON, port), 120, (source, 0)) as sock:
            sock.sendall(JOB)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
    except OSError:
        reply = b""
    kind = "ok" if reply.startswith(b"DONE00000002STAT00000000") else "refused"
    return kind, time.perf_counter() - started


def idle_connections(address: str, port: int, n: int, sources: int = 16) -> list[socket.socket]:
    held = []
    for i in range(n):
        with contextlib.suppress(OSError):
            source = (f"127.0.4.{i % sources + 1}", 0)
            held.append(socket.create_connection((address, port), 10, source))
    return held


def alive(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the peer has not closed yet."""
    n = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            n += sock.recv(1) != b""
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def daemon_load(port: int, pid: int, idle: int, jobs: int) -> None:
    base_rss, base_fds = rss_mib(pid), fds(pid)
    peak = [base_rss, base_fds]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0], peak[1] = max(peak[0], rss_mib(pid)), max(peak[1], fds(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    held = idle_connections(DAEMON, port, idle)
    results: list[tuple[str, float]] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(job(port, f"127.0.5.{i % 50 + 1}")))
        for i in range(jobs)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    open_after_jobs = alive(held)
    time.sleep(12)  # past the daemon's idle timeout (10 s)
    open_later = alive(held)
    stop.set()
    sampler.join()
    for sock in held:
        sock.close()
    ok = sorted(t for kind, t in results if kind == "ok")
    print(
        f"daemon, 4 slots: {idle} idle connections + {jobs} jobs at once: "
        f"{len(ok)} answered, {jobs - len(ok)} refused in {elapsed:.1f} s; "
        f"answered in median {ok[len(ok) // 2] * 1000:.0f} ms, max {ok[-1] * 1000:.0f} ms"
        if ok
        else f"daemon: no job answered of {jobs}"
    )
    print(
        f"  idle connections still open after the jobs: {open_after_jobs} of {len(held)}, "
        f"12 s later: {open_later}; RSS {base_rss:.0f} -> peak {peak[0]:.0f} MiB, "
        f"descriptors {base_fds} -> peak {peak[1]}"
    )


def lease_answer(port: int, source: str = "127.0.6.1") -> float:
    started = time.perf_counter()
    with socket.create_connection((SCHEDULER, port), 30, (source, 0)) as sock:
        sock.sendall(hello() + m.encode_lease_request(LeaseRequest(1, "b/b", None, 5)))
        assert sock.recv(65536)
    return time.perf_counter() - started


def scheduler_load(port: int, pid: int, idle: int) -> None:
    base_fds = fds(pid)
    held = idle_connections(SCHEDULER, port, idle)
    answer = lease_answer(port)
    peak_fds = fds(pid)
    time.sleep(12)
    print(
        f"scheduler: {idle} silent connections: a lease request from elsewhere answered in "
        f"{answer * 1000:.0f} ms; descriptors {base_fds} -> {peak_fds}, "
        f"12 s later {fds(pid)} ({alive(held)} still open)"
    )
    for sock in held:
        sock.close()


def soak(dport: int, dpid: int, sport: int, spid: int, seconds: float) -> None:
    stop = time.monotonic() + seconds
    counts = {"jobs": 0, "leases": 0, "junk": 0}

    def jobs_loop(i: int) -> None:
        while time.monotonic() < stop:
            job(dport, f"127.0.7.{i + 1}")
            counts["jobs"] += 1

    def junk_loop() -> None:
        head = JOB[:-23] + b"DOTI%08x" % (64 << 20)  # a 64 MiB body that never comes
        while time.monotonic() < stop:
            held = idle_connections(DAEMON, dport, 100)
            for sock in held[:20]:
                with contextlib.suppress(OSError):
                    sock.sendall(head + b"x" * 1_000_000)
            for sock in held[20:40]:
                with contextlib.suppress(OSError):
                    sock.sendall(os.urandom(512))
            time.sleep(3)
            for sock in held:
                sock.close()
            counts["junk"] += len(held)

    def leases_loop() -> None:
        host = socket.create_connection((SCHEDULER, sport), 30)
        report = m.encode_host_report(HostReport("h1", "10.0.0.1", 3632, 8, 8, 1.0, 0.0))
        host.sendall(hello() + report)
        last = time.monotonic()
        while time.monotonic() < stop:
            if time.monotonic() - last > 2:
                host.sendall(report)
                last = time.monotonic()
            with socket.create_connection((SCHEDULER, sport), 30) as sock:
                sock.sendall(hello() + m.encode_lease_request(LeaseRequest(1, "s/s", None, 5)))
                parser = MessageParser(expect_hello=False)
                while not (got := list(parser.messages())):
                    data = sock.recv(65536)
                    if not data:
                        break
                    parser.receive_data(data)
                if got and got[0].kind == m.LEASE_GRANTED:
                    sock.sendall(m.encode_release(m.decode_granted(got[0]).lease))
            counts["leases"] += 1
        host.close()

    workers = [threading.Thread(target=jobs_loop, args=(i,)) for i in range(6)]
    workers += [threading.Thread(target=junk_loop), threading.Thread(target=leases_loop)]
    for thread in workers:
        thread.start()
    began = time.monotonic()
    print("soak: seconds, daemon RSS MiB, daemon fds, scheduler RSS MiB, scheduler fds")
    samples = []
    while time.monotonic() < stop:
        sample = (time.monotonic() - began, rss_mib(dpid), fds(dpid), rss_mib(spid), fds(spid))
        samples.append(sample)
        print("  {:5.0f}  {:6.1f}  {:4d}  {:6.1f}  {:4d}".format(*sample), flush=True)
        time.sleep(10)
    for thread in workers:
        thread.join()
    late = samples[len(samples) // 3 :]
    print(
        f"soak of {seconds:.0f} s: {counts['jobs']} jobs, {counts['leases']} lease cycles, "
        f"{counts['junk']} idle/garbage/half-sent connections; after the first third: daemon RSS "
        f"{min(s[1] for s in late):.0f}-{max(s[1] for s in late):.0f} MiB, "
        f"fds {min(s[2] for s in late)}-{max(s[2] for s in late)}; scheduler RSS "
        f"{min(s[3] for s in late):.0f}-{max(s[3] for s in late):.0f} MiB, "
        f"fds {min(s[4] for s in late)}-{max(s[4] for s in late)}"
    )


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--idle", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--soak", type=float, default=300.0, help="seconds (0: no soak)")
    args = p.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o1777)  # a daemon started as root runs as its own user
        daemon = start_daemon(DAEMON, free_port(DAEMON), 4, tmp, extra=("--tmpdir", tmp))
        sport = free_port(SCHEDULER)
        log = os.path.join(tmp, "scheduler.log")
        sched = subprocess.Popen(
            scheduler_command(SCHEDULER, sport, ("--log-file", log)), stdin=subprocess.DEVNULL
        )
        try:
            wait_listening(SCHEDULER, sport)
            assert daemon.process is not None
            dpid = daemon.process.pid
            daemon_load(daemon.port, dpid, args.idle, args.jobs)
            scheduler_load(sport, sched.pid, args.idle + 100)
            if args.soak:
                soak(daemon.port, dpid, sport, sched.pid, args.soak)
            print(f"logs: daemon {os.path.getsize(daemon.log_path)} bytes")
        finally:
            stop_daemon(daemon)
            stop_process(sched, 10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
