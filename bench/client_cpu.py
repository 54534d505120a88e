"""The client machine's CPU per remote job: what the wrapper costs the machine
that runs the build (preprocessing included), ccfarm beside distcc, one run.

    python bench/client_cpu.py [--trees lua54] [--rounds 3] [-j 2]

On a build machine with few or slow CPUs the client side is the bottleneck
of a farm: every job is preprocessed, packed and sent from there. Each
configuration builds the same tree from clean with `make -jN` inside a
cgroup v1 `cpuacct` group of its own (root only); the daemons run outside
it, so the group's CPU time is the client's alone: make, the wrapper (and
ccfarm's warm helper, started fresh in the group each round), the
preprocessor, compression and the network. Rounds alternate the order.
`gcc -E` of every file (no wrapper) is the floor every preprocessing
client pays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    CPUACCT,
    accounting,
    ccfarmd,
    distccd,
    scheduler,
    stop_group,
    usage_seconds,
)

from ccfarm.demo.codebase import fetch_lupa, lua_trees, prepare_build  # noqa: E402


def build(group: str, tree_dir: str, jobs: int, cc: str, env: dict[str, str]) -> float:
    """CPU seconds the client's side of one clean build took."""
    subprocess.run(["make", "clean"], cwd=tree_dir, check=True, capture_output=True)
    stop_group(group)
    before = usage_seconds(group)
    make = ["make", f"-j{jobs}", f"CC={cc}", "liblua.a", "lua.o"]
    proc = subprocess.run(
        ["sh", "-c", f'echo $$ > {group}/cgroup.procs; exec "$@"', "sh", *make],
        cwd=tree_dir,
        env=env,
        capture_output=True,
        check=False,
    )
    if proc.returncode:
        sys.exit(f"build failed with {cc}: {proc.stderr.decode()[-2000:]}")
    stop_group(group)  # the warm helper's exit is counted too
    return usage_seconds(group) - before


def preprocess_only(group: str, tree_dir: str, sources: list[str]) -> float:
    before = usage_seconds(group)
    script = "; ".join(f"gcc -O2 -E {s} -o /dev/null" for s in sources)
    subprocess.run(
        ["sh", "-c", f"echo $$ > {group}/cgroup.procs; {script}"], cwd=tree_dir, check=True
    )
    return usage_seconds(group) - before


def wait_registered(sched: str, count: int, timeout: float = 60.0) -> None:
    argv = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", sched, "--json", "hosts"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.count('"host"') >= count:
            return
        time.sleep(0.3)
    sys.exit("the ccfarmd did not register with the scheduler")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-j", type=int, default=2)
    p.add_argument("--trees", default="lua54")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    ccfarm, distcc = shutil.which("ccfarm"), shutil.which("distcc")
    if not ccfarm or not distcc:
        sys.exit("need ccfarm and distcc on PATH")
    if os.geteuid() != 0 or not os.access(CPUACCT, os.W_OK):
        sys.exit(f"needs root and a writable cgroup v1 cpuacct hierarchy ({CPUACCT})")
    trees = [t for t in lua_trees(fetch_lupa()) if t.name in args.trees.split(",")]
    work = tempfile.mkdtemp(prefix="ccfarm-cpu-")
    results: dict[str, list[float]] = {}
    files = 0
    with ExitStack() as stack:
        group = stack.enter_context(accounting("client"))
        cf = stack.enter_context(ccfarmd("127.0.1.1", 2, work))
        # the same daemon through a scheduler (load ignored: the daemon is not
        # in a CPU group, and the machine's load average is everyone's)
        sched = stack.enter_context(
            scheduler("127.0.1.3", work, ("--load-low", "100", "--load-high", "200"))
        )
        stack.enter_context(
            ccfarmd("127.0.1.4", 2, work, extra=("--scheduler", sched, "--heartbeat", "0.5"))
        )
        wait_registered(sched, 1)
        address, port = stack.enter_context(distccd("127.0.1.2", 2, work))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
        base.update(CCFARM_FALLBACK="0", DISTCC_FALLBACK="0")
        configs = {
            "ccfarm -> ccfarmd": (ccfarm + " gcc", {"CCFARM_HOSTS": cf.spec}),
            "ccfarm -> ccfarmd, exact": (
                ccfarm + " gcc",
                {"CCFARM_HOSTS": cf.spec, "CCFARM_MODE": "exact"},
            ),
            # (CCFARM_LOCAL_SPEED=0: every job to a free host, none compiled in the group)
            "ccfarm -> scheduler -> ccfarmd": (
                ccfarm + " gcc",
                {"CCFARM_SCHEDULER": sched, "CCFARM_LOCAL_SPEED": "0"},
            ),
            "distcc -> distccd": (distcc + " gcc", {"DISTCC_HOSTS": f"{address}:{port}/2,lzo"}),
        }
        names = list(configs)
        for round_ in range(args.rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            for tree in trees:
                tree_dir = prepare_build(tree, os.path.join(work, tree.name))
                if round_ == 0:
                    files += len(tree.sources) + 1
                results.setdefault("gcc -E (the floor)", []).append(
                    preprocess_only(group, tree_dir, [*tree.sources, "lua.c"])
                )
                for name in order:
                    cc, extra = configs[name]
                    state = tempfile.mkdtemp(dir=work)  # a fresh helper, in the group
                    env = {**base, **extra, "CCFARM_DIR": state, "DISTCC_DIR": state}
                    results.setdefault(name, []).append(build(group, tree_dir, args.j, cc, env))
    shutil.rmtree(work, ignore_errors=True)
    per_round = {k: [x / len(trees) for x in v] for k, v in results.items()}
    print(f"client CPU of a clean make -j{args.j}, {files} C files ({args.trees}), medians")
    print(f"of {args.rounds} rounds; per job = total / files")
    floor = statistics.median(per_round["gcc -E (the floor)"]) * len(trees) / files
    for name, values in per_round.items():
        total = statistics.median(values) * len(trees)
        per_job = total / files * 1000
        above = "" if name.startswith("gcc -E") else f"  (+{per_job - floor * 1000:.1f} ms)"
        print(f"  {name:<26} {total:6.2f} s   {per_job:6.1f} ms/job{above}")
    cf_job = statistics.median(per_round["ccfarm -> ccfarmd"]) * len(trees) / files - floor
    dc_job = statistics.median(per_round["distcc -> distccd"]) * len(trees) / files - floor
    print(f"  client CPU above the preprocessor, ccfarm/distcc: {cf_job / dc_job:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
