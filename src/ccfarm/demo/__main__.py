"""`ccfarm-demo`: bring up a two-host farm on this machine, build Lua, stop.

ccfarm-demo [--hosts N] [--jobs-per-host J] [--tree lua54]
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
from ccfarm.demo.farm import start_daemon, stop_daemon


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="ccfarm-demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--hosts", type=int, default=2, help="daemons on 127.0.1.1..N (default 2)")
    p.add_argument("--jobs-per-host", type=int, default=2)
    p.add_argument("--port", type=int, default=DAEMON_PORT)
    p.add_argument("--tree", default="lua54", help="which Lua version to build")
    p.add_argument("--keep", action="store_true", help="keep the build directory")
    args = p.parse_args(argv)

    print("== fetching Lua sources (PyPI package lupa, cached after the first run)")
    trees = {t.name: t for t in lua_trees(fetch_lupa())}
    tree = trees[args.tree]
    work = tempfile.mkdtemp(prefix="ccfarm-demo-")
    build = prepare_build(tree, os.path.join(work, tree.name))
    beside = os.path.join(os.path.dirname(sys.executable), "ccfarm")
    ccfarm = beside if os.access(beside, os.X_OK) else shutil.which("ccfarm") or "ccfarm"
    daemons = []
    try:
        for n in range(1, args.hosts + 1):
            daemons.append(start_daemon(f"127.0.1.{n}", args.port, args.jobs_per_host, work))
        hosts = " ".join(d.spec for d in daemons)
        print(f"== farm up: CCFARM_HOSTS='{hosts}'")
        env = {
            **os.environ,
            "CCFARM_HOSTS": hosts,
            "CCFARM_VERBOSE": "1",
            "CCFARM_DIR": os.path.join(work, "state"),
            "CCFARM_HELPER_IDLE": "5",  # the demo's fork server leaves soon after it
        }
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
        print(
            f"== built in {elapsed:.1f} s; jobs per host: "
            + ", ".join([*(f"{h}: {n}" for h, n in sorted(where.items())), f"local: {local}"])
        )
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
        print("== farm stopped")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
