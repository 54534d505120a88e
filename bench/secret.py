"""The farm secret's cost per job: N sequential compiles of a tiny C file, one run.

    python bench/secret.py [-n 100]

Two farms side by side on loopback, the same but for `--secret-file`: a
ccfarmd listed in CCFARM_HOSTS, and a scheduler with a ccfarmd registered
(CCFARM_SCHEDULER: one more handshake per job, for the lease). Rounds are
interleaved, in a shuffled order, so machine noise hits every way alike; prints medians, what
each adds over local gcc, and what the secret adds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, median_ms, timed  # noqa: E402

from ccfarm.demo.farm import start_daemon, stop_daemon, stop_process, wait_listening  # noqa: E402
from ccfarm.secretfile import read_secret  # noqa: E402

TINY = "int add(int a, int b) { return a + b; }\nint twice(int x) { return add(x, x); }\n"


def _scheduler(address: str, work: str, extra: tuple[str, ...]) -> tuple[str, subprocess.Popen]:  # type: ignore[type-arg]
    port = free_port(address)
    log = os.path.join(work, f"scheduler-{address}.log")
    cmd = [sys.executable, "-m", "ccfarm.scheduler.main", "--listen", address, "--port", str(port)]
    cmd += ["--log-file", log, "--load-low", "100", "--load-high", "200", *extra]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    wait_listening(address, port)
    return f"{address}:{port}", proc


def _wait_registered(sched: str, extra: tuple[str, ...]) -> None:
    cmd = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", sched, "--json", *extra, "hosts"]
    deadline = time.monotonic() + 30
    while subprocess.run(cmd, capture_output=True, check=True).stdout.strip() in (b"[]", b""):
        if time.monotonic() > deadline:
            sys.exit(f"no host registered with {sched}")
        time.sleep(0.2)


def _lease_times(plain: str, keyed: str, secret: bytes, n: int) -> tuple[list[float], list[float]]:
    """request_lease + release against each scheduler, interleaved: seconds each."""
    from ccfarm.client.job.lease import parse_schedulers, request_lease

    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for sched, key, out in ((plain, None, times[0]), (keyed, secret, times[1])):
            started = time.perf_counter()
            request_lease(parse_schedulers(sched), None, secret=key).release()
            out.append(time.perf_counter() - started)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-n", type=int, default=100)
    args = p.parse_args()
    ccfarm = shutil.which("ccfarm")
    if not ccfarm:
        sys.exit("need ccfarm on PATH (scripts/setup.sh)")
    work = tempfile.mkdtemp(prefix="ccfarm-bench-")
    with open(os.path.join(work, "tiny.c"), "w") as f:
        f.write(TINY)
    secret = os.path.join(work, "farm.secret")
    with open(secret, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(secret, 0o600)
    keyed = ("--secret-file", secret)
    state = os.path.join(work, "state")
    os.mkdir(state)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
    base.update(CCFARM_DIR=state, DISTCC_DIR=state, CCFARM_FALLBACK="0")
    started = []
    schedulers = []
    try:
        plain_sched, proc = _scheduler("127.0.1.5", work, ())
        schedulers.append(proc)
        keyed_sched, proc = _scheduler("127.0.1.6", work, keyed)
        schedulers.append(proc)
        hb = ("--heartbeat", "0.5", "--speed", "1")
        for address, extra in (
            ("127.0.1.1", ()),
            ("127.0.1.2", keyed),
            ("127.0.1.3", ("--scheduler", plain_sched, *hb)),
            ("127.0.1.4", ("--scheduler", keyed_sched, *hb, *keyed)),
        ):
            started.append(start_daemon(address, free_port(address), 2, work, extra=extra))
        _wait_registered(plain_sched, ())
        _wait_registered(keyed_sched, keyed)
        hosts = [f"{d.address}:{d.port}" for d in started]
        envs = {
            "local": base,
            "hosts": {**base, "CCFARM_HOSTS": hosts[0]},
            "hosts+secret": {**base, "CCFARM_HOSTS": hosts[1], "CCFARM_SECRET_FILE": secret},
            "scheduler": {**base, "CCFARM_SCHEDULER": plain_sched},
            "scheduler+secret": {
                **base,
                "CCFARM_SCHEDULER": keyed_sched,
                "CCFARM_SECRET_FILE": secret,
            },
        }
        compile_cmd = ["gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"]
        cmds = {name: ([] if name == "local" else [ccfarm]) + compile_cmd for name in envs}
        times: dict[str, list[float]] = {name: [] for name in envs}
        for name in envs:  # warm-up (caches, the fork server)
            timed(cmds[name], work, envs[name])
        order = list(envs)
        for round_ in range(args.n):
            random.Random(round_).shuffle(order)  # no way always follows the same one
            for name in order:
                times[name].append(timed(cmds[name], work, envs[name]))
        leases = _lease_times(plain_sched, keyed_sched, read_secret(secret), 3 * args.n)
    finally:
        for daemon in started:
            stop_daemon(daemon)
        for proc in schedulers:
            stop_process(proc, 10)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: median_ms(v) for k, v in times.items()}
    print(f"sequential compiles of a tiny C file, n={args.n} each, interleaved")
    for name in envs:
        added = med[name] - med["local"]
        print(f"  {name:<18} median {med[name]:7.2f} ms  (+{added:.2f} over local gcc)")
    listed = med["hosts+secret"] - med["hosts"]
    leased = med["scheduler+secret"] - med["scheduler"]
    print(f"  the secret adds: listed host {listed:+.2f} ms/job, via the scheduler {leased:+.2f}")
    plain, proven = (median_ms(v) for v in leases)
    print(
        f"  a lease alone (request_lease + release, n={3 * args.n}): {plain:.2f} ms,"
        f" with the secret {proven:.2f} ms ({proven - plain:+.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
