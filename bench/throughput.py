"""Throughput: `make -jN` of real code (Lua 5.1-5.5 from PyPI's lupa sdist)
through ccfarm and through distcc, in the same run.

    python bench/throughput.py [-j 8] [--trees lua54,lua53,lua55] [--rounds 2]

Two daemons on 127.0.1.1 and 127.0.1.2. Configurations:
  ccfarm -> 2 x ccfarmd   (ccfarm's exact mode)
  ccfarm -> 2 x ccfarmd   (protocol 2: local preprocessing only, as distcc)
  distcc -> 2 x distccd   (distcc as people run it)
  distcc -> 2 x ccfarmd   (same daemons as the first: isolates the client)
  local make -jN          (for scale: on one machine the "farm" is this machine)
Each round builds every tree from clean once per configuration, in rotation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ccfarmd, distccd  # noqa: E402

from ccfarm.demo.codebase import fetch_lupa, lua_trees, prepare_build  # noqa: E402


def build_all(dirs: list[str], jobs: int, cc: str, env: dict[str, str]) -> float:
    """Build each tree from clean, one `make -jN` after the other; total seconds."""
    for d in dirs:
        subprocess.run(["make", "clean"], cwd=d, check=True, capture_output=True)
    started = time.perf_counter()
    for d in dirs:
        proc = subprocess.run(
            ["make", f"-j{jobs}", f"CC={cc}", "liblua.a", "lua.o"],
            cwd=d,
            env=env,
            capture_output=True,
            check=False,
        )
        if proc.returncode:
            sys.exit(f"build failed with {cc}: {proc.stderr.decode()[-2000:]}")
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-j", type=int, default=8)
    p.add_argument("--trees", default="lua54,lua53,lua55")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--jobs-per-host", type=int, default=2)
    args = p.parse_args()
    ccfarm, distcc = shutil.which("ccfarm"), shutil.which("distcc")
    if not ccfarm or not distcc:
        sys.exit("need ccfarm and distcc on PATH")
    trees = [t for t in lua_trees(fetch_lupa()) if t.name in args.trees.split(",")]
    work = tempfile.mkdtemp(prefix="ccfarm-tp-")
    dirs = [prepare_build(t, os.path.join(work, t.name)) for t in trees]
    files = sum(len(t.sources) + 1 for t in trees)
    state = os.path.join(work, "state")
    os.mkdir(state)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
    base.update(CCFARM_DIR=state, DISTCC_DIR=state, CCFARM_FALLBACK="0", DISTCC_FALLBACK="0")
    jph = args.jobs_per_host
    results: dict[str, list[float]] = {}
    with ExitStack() as stack:
        cf = [stack.enter_context(ccfarmd(f"127.0.1.{n}", jph, work)) for n in (1, 2)]
        dc = [stack.enter_context(distccd(f"127.0.1.{n}", jph, work)) for n in (1, 2)]
        cf_hosts = " ".join(d.spec for d in cf)
        configs = {
            "ccfarm -> ccfarmd": (f"{ccfarm} gcc", {**base, "CCFARM_HOSTS": cf_hosts}),
            "ccfarm -> ccfarmd (CCFARM_MODE=exact)": (
                f"{ccfarm} gcc",
                {**base, "CCFARM_HOSTS": cf_hosts, "CCFARM_MODE": "exact"},
            ),
            "ccfarm -> ccfarmd (protocol 2)": (
                f"{ccfarm} gcc",
                {**base, "DISTCC_HOSTS": " ".join(f"{d.spec},lzo" for d in cf)},
            ),
            "distcc -> distccd": (
                f"{distcc} gcc",
                {**base, "DISTCC_HOSTS": " ".join(f"{a}:{port}/{jph},lzo" for a, port in dc)},
            ),
            "distcc -> ccfarmd": (
                f"{distcc} gcc",
                {**base, "DISTCC_HOSTS": " ".join(f"{d.address}:{d.port}/{jph},lzo" for d in cf)},
            ),
            "local": ("gcc", base),
        }
        for _ in range(args.rounds):
            for name, (cc, env) in configs.items():
                results.setdefault(name, []).append(build_all(dirs, args.j, cc, env))
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"make -j{args.j} of {files} C files ({args.trees}), 2 hosts x {jph} slots, "
        f"best of {args.rounds}"
    )
    best = {k: min(v) for k, v in results.items()}
    for name, t in best.items():
        print(f"  {name:<31} {t:6.2f} s   ({', '.join(f'{x:.2f}' for x in results[name])})")
    print(
        f"  ratio ccfarm/distcc (wall time, full stacks): "
        f"{best['ccfarm -> ccfarmd'] / best['distcc -> distccd']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
