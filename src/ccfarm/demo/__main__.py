"""`ccfarm-demo`: bring up a farm on this machine, build Lua through it, stop.

ccfarm-demo [--hosts N] [--jobs-per-host J] [--tree lua54] [--no-scheduler]

By default a ccfarm-scheduler on 127.0.1.1 and N ccfarmd on 127.0.1.2...
with pinned speeds (--speed: N, N-1, ..., 1; they share this machine's
CPUs, so the speeds are what the scheduler is told, not CPU quotas); the
build asks the scheduler for each job's host. --no-scheduler gives the
daemons a static host list instead. The scheduler ignores load (every
emulated host sees the one machine's load average).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from ccfarm.addresses import DAEMON_PORT
from ccfarm.demo.codebase import fetch_lupa, lua_trees, prepare_build
from ccfarm.demo.farm import start_daemon, start_scheduler, stop_daemon, wait_hosts

SCHEDULER_PORT = 3634


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="ccfarm-demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from ccfarm import __version__

    p.add_argument("--version", action="version", version=f"ccfarm-demo {__version__}")
    p.add_argument("--hosts", type=int, default=3, help="daemons (default 3)")
    p.add_argument(
        "--no-scheduler", action="store_true", help="a static host list, no ccfarm-scheduler"
    )
    p.add_argument("--jobs-per-host", type=int, default=2)
    p.add_argument("--port", type=int, default=DAEMON_PORT)
    p.add_argument("--tree", default="lua54", help="which Lua version to build")
    p.add_argument("--keep", action="store_true", help="keep the build directory")
    args = p.parse_args(argv)

    phases: list[tuple[str, float]] = []
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases.append((name, now - mark))
        mark = now

    print("== fetching Lua sources (PyPI package lupa, cached after the first run)")
    trees = {t.name: t for t in lua_trees(fetch_lupa())}
    tree = trees[args.tree]
    work = tempfile.mkdtemp(prefix="ccfarm-demo-")
    build = prepare_build(tree, os.path.join(work, tree.name))
    beside = os.path.join(os.path.dirname(sys.executable), "ccfarm")
    ccfarm = beside if os.access(beside, os.X_OK) else shutil.which("ccfarm") or "ccfarm"
    daemons = []
    scheduler = None
    sched = ""
    speeds: dict[str, float] = {}
    phase("setup")
    try:
        env = {
            **os.environ,
            "CCFARM_VERBOSE": "1",
            "CCFARM_DIR": os.path.join(work, "state"),
            "CCFARM_HELPER_IDLE": "5",  # the demo's fork server leaves soon after it
        }
        first = 1
        if not args.no_scheduler:
            scheduler = start_scheduler("127.0.1.1", SCHEDULER_PORT, work)
            sched = f"{scheduler.address}:{scheduler.port}"
            env["CCFARM_SCHEDULER"] = sched
            first = 2
        for n in range(args.hosts):
            address = f"127.0.1.{first + n}"
            extra: tuple[str, ...] = ()
            if scheduler is not None:
                speeds[address] = float(args.hosts - n)
                extra = ("--scheduler", sched)
                extra += ("--speed", str(speeds[address]))
            daemons.append(start_daemon(address, args.port, args.jobs_per_host, work, extra))
        if scheduler is not None:
            wait_hosts(sched, len(daemons))
            print(
                f"== farm up: CCFARM_SCHEDULER={sched}, {len(daemons)} ccfarmd with "
                f"pinned speeds (--speed; no CPU quotas: they share this machine's CPUs)"
            )
        else:
            env["CCFARM_HOSTS"] = " ".join(d.spec for d in daemons)
            print(f"== farm up: CCFARM_HOSTS='{env['CCFARM_HOSTS']}'")
        phase("farm start")
        jobs = args.hosts * args.jobs_per_host
        print(f"== make -j{jobs} CC='{ccfarm} gcc' in {build} ({len(tree.sources) + 1} files)")
        started = time.monotonic()
        proc = subprocess.run(
            ["make", f"-j{jobs}", f"CC={ccfarm} gcc"],
            cwd=build,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - started
        where = collections.Counter(re.findall(r"compiled on (\S+)", proc.stderr))
        other = [ln for ln in proc.stderr.splitlines() if "compiled on" not in ln]
        if other:
            print("\n".join(other), file=sys.stderr)
        for line in proc.stderr.splitlines():
            m = re.search(r"ccfarm: (\S+): compiled on (\S+)", line)
            if m:
                print(f"   {m.group(1):<14} -> {m.group(2)}")
        if proc.returncode != 0:
            print(f"== build FAILED (make exit {proc.returncode})")
            return proc.returncode
        local = len(tree.sources) + 1 - sum(where.values())
        phase("build")
        print(f"== built in {elapsed:.1f} s; where the jobs went:")
        print(f"   {'host':<18} {'speed':>6} {'slots':>6} {'jobs':>5}")
        for d in daemons:
            speed = f"{speeds[d.address]:.0f}" if d.address in speeds else "-"
            count = sum(n for h, n in where.items() if h.split(":")[0] == d.address)
            print(f"   {d.address + ':' + str(d.port):<18} {speed:>6} {d.jobs:>6} {count:>5}")
        print(f"   {'local':<18} {'':>6} {'':>6} {local:>5}")
        if scheduler is not None:
            print(
                "   why: the scheduler hands each job the fastest free host, and a slower "
                "free host only when waiting for a faster one would take longer"
            )
            print(f"== the scheduler's view (ccfarm-ctl --scheduler {sched} hosts):")
            view = subprocess.run(
                [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", sched, "hosts"],
                capture_output=True,
                text=True,
                check=False,
            )
            print(view.stdout.rstrip() or view.stderr.rstrip())
        out = subprocess.run(
            [
                os.path.join(build, "lua"),
                "-e",
                "print(_VERSION .. ' built by ccfarm says: ' .. 6*7)",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        print(f"== {out.stdout.strip()}")
        return 0
    finally:
        for d in daemons:
            stop_daemon(d)
        if scheduler is not None:
            stop_daemon(scheduler)
        print("== farm stopped")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        phase("teardown")
        print("== times: " + ", ".join(f"{name} {secs:.1f} s" for name, secs in phases))


if __name__ == "__main__":
    sys.exit(main())
