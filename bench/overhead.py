"""Per-job overhead: N sequential compiles of a tiny C file, three ways, one run.

    python bench/overhead.py [-n 200]

local gcc vs ccfarm -> ccfarmd vs distcc -> distccd (each daemon on its
own 127.0.1.N address), and the same ccfarm jobs on a second ccfarmd with
its job sandbox off (--sandbox=off): the sandbox's cost per job; and on a
third with no warm pool (--warm-pool 0: each job's sandbox starts when its
request arrives). Prints
medians and the ratio of time added per job over local gcc, ccfarm/distcc
(target <= 1.5). Rounds are interleaved so that machine noise hits all
alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ccfarmd, distccd, median_ms, timed  # noqa: E402

TINY = "int add(int a, int b) { return a + b; }\nint twice(int x) { return add(x, x); }\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-n", type=int, default=200)
    args = p.parse_args()
    ccfarm = shutil.which("ccfarm")
    distcc = shutil.which("distcc")
    if not ccfarm or not distcc:
        sys.exit("need ccfarm (scripts/setup.sh) and distcc (apt-get install distcc) on PATH")
    python = os.path.join(os.path.dirname(ccfarm), "python")  # the venv's interpreter
    work = tempfile.mkdtemp(prefix="ccfarm-bench-")
    with open(os.path.join(work, "tiny.c"), "w") as f:
        f.write(TINY)
    state = os.path.join(work, "state")
    os.mkdir(state)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
    base.update(CCFARM_DIR=state, DISTCC_DIR=state)
    times: dict[str, list[float]] = {
        "local": [],
        "ccfarm": [],
        "ccfarm-exact": [],
        "ccfarm-python": [],
        "ccfarm-noforkserver": [],
        "ccfarm-v2": [],
        "distcc": [],
        "distcc-ccfarmd": [],
        "ccfarm-nosandbox": [],
        "ccfarm-exact-nosandbox": [],
        "ccfarm-nopool": [],
    }
    with (
        ccfarmd("127.0.1.1", 2, work) as cf,
        distccd("127.0.1.2", 2, work) as (dhost, dport),
        ccfarmd("127.0.1.3", 2, work, extra=("--sandbox=off",)) as off,
        ccfarmd("127.0.1.4", 2, work, extra=("--warm-pool", "0")) as nopool,
    ):
        envs = {
            "local": base,
            "ccfarm": {**base, "CCFARM_HOSTS": cf.spec, "CCFARM_FALLBACK": "0"},
            "ccfarm-exact": {
                **base,
                "CCFARM_HOSTS": cf.spec,
                "CCFARM_MODE": "exact",
                "CCFARM_FALLBACK": "0",
            },
            # the wrapper started as Python (the console script without the native launcher)
            "ccfarm-python": {**base, "CCFARM_HOSTS": cf.spec, "CCFARM_FALLBACK": "0"},
            # every job in its own Python process (no fork server)
            "ccfarm-noforkserver": {**base, "CCFARM_HOSTS": cf.spec, "CCFARM_HELPER": "0"},
            # the same daemon, but distcc's protocol 2 (local preprocessing, .i sent)
            "ccfarm-v2": {**base, "DISTCC_HOSTS": f"{cf.spec},lzo", "CCFARM_FALLBACK": "0"},
            "distcc": {**base, "DISTCC_HOSTS": f"{dhost}:{dport}", "DISTCC_FALLBACK": "0"},
            # the real distcc client against our daemon: isolates the daemon's cost
            "distcc-ccfarmd": {**base, "DISTCC_HOSTS": cf.spec, "DISTCC_FALLBACK": "0"},
            # the same jobs on a daemon whose compilers run unconfined
            "ccfarm-nosandbox": {**base, "CCFARM_HOSTS": off.spec, "CCFARM_FALLBACK": "0"},
            "ccfarm-exact-nosandbox": {
                **base,
                "CCFARM_HOSTS": off.spec,
                "CCFARM_MODE": "exact",
                "CCFARM_FALLBACK": "0",
            },
            # sandboxed, but each job's sandbox starts when its request arrives
            "ccfarm-nopool": {**base, "CCFARM_HOSTS": nopool.spec, "CCFARM_FALLBACK": "0"},
        }
        cmds = {
            "local": ["gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "ccfarm": [ccfarm, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "ccfarm-exact": [ccfarm, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "ccfarm-python": [python, "-m", "ccfarm.client.main", "gcc", "-O2", "-c", "tiny.c"],
            "ccfarm-noforkserver": [ccfarm, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "ccfarm-v2": [ccfarm, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "distcc": [distcc, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "distcc-ccfarmd": [distcc, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "ccfarm-nosandbox": [ccfarm, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "ccfarm-exact-nosandbox": [ccfarm, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
            "ccfarm-nopool": [ccfarm, "gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"],
        }
        for name in times:  # warm-up (caches, page cache)
            timed(cmds[name], work, envs[name])
        for _ in range(args.n):
            for name in times:
                times[name].append(timed(cmds[name], work, envs[name]))
    shutil.rmtree(work, ignore_errors=True)
    med = {k: median_ms(v) for k, v in times.items()}
    added_cf = med["ccfarm"] - med["local"]
    added_dc = med["distcc"] - med["local"]
    print(f"sequential compiles of a tiny C file, n={args.n} each, interleaved")
    labels = {
        "local": "local gcc",
        "ccfarm": "ccfarm -> ccfarmd",
        "ccfarm-exact": "ccfarm -> ccfarmd, CCFARM_MODE=exact",
        "ccfarm-python": "ccfarm as Python (no native launcher)",
        "ccfarm-noforkserver": "ccfarm, CCFARM_HELPER=0",
        "ccfarm-v2": "ccfarm -> ccfarmd (protocol 2)",
        "distcc": "distcc -> distccd",
        "distcc-ccfarmd": "distcc -> ccfarmd (protocol 1)",
        "ccfarm-nosandbox": "ccfarm -> ccfarmd, --sandbox=off",
        "ccfarm-exact-nosandbox": "ccfarm -> ccfarmd, exact, --sandbox=off",
        "ccfarm-nopool": "ccfarm -> ccfarmd, --warm-pool 0",
    }
    for name, label in labels.items():
        print(f"  {label:<38} median {med[name]:7.2f} ms  (+{med[name] - med['local']:.2f})")
    print(f"  added per job over local gcc: ccfarm {added_cf:.2f} ms, distcc {added_dc:.2f} ms")
    print(f"  ratio ccfarm/distcc (added time): {added_cf / added_dc:.2f}  (target <= 1.5)")
    added_v2 = med["ccfarm-v2"] - med["local"]
    print(f"  ratio ccfarm protocol 2/distcc (added time): {added_v2 / added_dc:.2f}")
    cost = med["ccfarm"] - med["ccfarm-nosandbox"]
    cost_exact = med["ccfarm-exact"] - med["ccfarm-exact-nosandbox"]
    print(f"  the job sandbox per job: {cost:.2f} ms (preprocessed), {cost_exact:.2f} ms (exact)")
    pool = med["ccfarm-nopool"] - med["ccfarm"]
    print(f"  the warm pool saves per job: {pool:.2f} ms (preprocessed)")
    unconfined = med["ccfarm-nosandbox"] - med["local"]
    print(f"  ratio ccfarm --sandbox=off/distcc (added time): {unconfined / added_dc:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
