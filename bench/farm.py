"""An emulated heterogeneous farm on one machine, several client machines.

    sudo python bench/farm.py [--skip-fairness]

Six compile hosts on 127.0.1.1-6, each in its own cgroup v1 CPU group with a
quota of 0.3, 0.3, 0.15, 0.15, 0.075, 0.075 CPU (three speed tiers), and three
client machines, each its own cgroup (0.3 CPU), building a real code base
each (Lua 5.4, 5.3 and 5.5 from PyPI's lupa sdist) at the same time:

  ccfarm:  ccfarmd hosts registered with ccfarm-scheduler (they measure their
           own speed), clients with CCFARM_SCHEDULER
  distcc:  distccd hosts, every client with the same static list, fastest first
  local:   each client builds on its own CPU share only

Reports each makespan, the lower bound (total compile CPU work / total farm
capacity) and the share of it reached. Then fairness: a small build (8 files)
started while two big builds run, with ccfarm and with distcc.
Needs root (cgroups); removes its groups afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from ccfarm.demo.codebase import LuaTree, fetch_lupa, lua_trees, prepare_build  # noqa: E402
from ccfarm.demo.farm import (  # noqa: E402
    ccfarmd_command,
    distccd_command,
    stop_process,
    wait_listening,
)

CGROOT = "/sys/fs/cgroup/cpu"
PERIOD = 100_000
HOST_QUOTAS = (0.3, 0.3, 0.15, 0.15, 0.075, 0.075)
CLIENT_QUOTA = 0.3
TREES = ("lua54", "lua53", "lua55")
PORT = 3632
SCHED = ("127.0.2.1", 3634)


@contextmanager
def cgroup(name: str, cpus: float) -> Iterator[str]:
    path = os.path.join(CGROOT, f"ccfarm-bench-{name}")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
        f.write(str(PERIOD))
    with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
        f.write(str(int(cpus * PERIOD)))
    try:
        yield path
    finally:
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except OSError:  # processes still leaving
                time.sleep(0.1)


def stop_group(group: str, timeout: float = 10.0) -> None:
    """SIGTERM what is left in a client group (only our builds' helpers), wait for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(os.path.join(group, "cgroup.procs")) as f:
            pids = [int(x) for x in f.read().split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(0.2)


def in_group(group: str, argv: list[str]) -> list[str]:
    """argv run inside cgroup `group` (the wrapper moves only itself)."""
    return ["sh", "-c", f'echo $$ > {group}/cgroup.procs; exec "$@"', "sh", *argv]


@contextmanager
def process(argv: list[str], log: str, env: dict[str, str] | None = None) -> Iterator[None]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    try:
        yield
    finally:
        stop_process(proc, 20)


def make(
    build: str, cc: str, env: dict[str, str], jobs: int, group: str | None, target: str = "liblua.a"
) -> subprocess.Popen[bytes]:
    argv = ["make", f"-j{jobs}", f"CC={cc}", target]
    return subprocess.Popen(
        in_group(group, argv) if group else argv,
        cwd=build,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def fresh_builds(trees: list[LuaTree], work: str, tag: str) -> list[str]:
    return [prepare_build(t, os.path.join(work, f"{tag}-{t.name}")) for t in trees]


def cpu_work(trees: list[LuaTree], work: str) -> float:
    """CPU seconds to compile every file once (all children of a local make)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for build in fresh_builds(trees, work, "work"):
        subprocess.run(
            ["make", "-j2", "CC=gcc", "liblua.a"], cwd=build, check=True, capture_output=True
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_builds(
    builds: list[str], cc: str, envs: list[dict[str, str]], groups: list[str], jobs: int
) -> float:
    started = time.monotonic()
    procs = [make(b, cc, e, jobs, g) for b, e, g in zip(builds, envs, groups, strict=True)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"build failed ({cc}): {err.decode()[-1500:]}")
    return time.monotonic() - started


def fairness(
    big: list[str],
    small: str,
    cc: str,
    envs: list[dict[str, str]],
    groups: list[str],
    jobs: int,
    delay: float = 3.0,
) -> float:
    procs = [make(b, cc, e, jobs, g) for b, e, g in zip(big, envs[:2], groups[:2], strict=True)]
    time.sleep(delay)
    started = time.monotonic()
    verbose = bool(os.environ.get("CCFARM_BENCH_VERBOSE"))
    small_env = {**envs[2], "CCFARM_VERBOSE": "1"} if verbose else envs[2]
    small_proc = make(small, cc, small_env, 4, groups[2])
    _, err = small_proc.communicate()
    took = time.monotonic() - started
    if verbose:
        print(f"small build ({took:.1f} s):\n{err.decode()}")
    for p in procs:
        p.communicate()
    if small_proc.returncode:
        sys.exit("small build failed")
    return took


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--skip-fairness", action="store_true")
    p.add_argument(
        "--skip-exact", action="store_true", help="skip the ccfarm run with CCFARM_MODE=exact"
    )
    p.add_argument("-j", type=int, default=8, help="make -j per client")
    p.add_argument(
        "--client-cpu",
        type=float,
        default=CLIENT_QUOTA,
        help="CPU quota of each client machine (0.3)",
    )
    args = p.parse_args()
    verbose = bool(os.environ.get("CCFARM_BENCH_VERBOSE"))
    if os.geteuid() != 0 or not os.path.isdir(CGROOT):
        sys.exit("needs root and cgroup v1 at /sys/fs/cgroup/cpu")
    ccfarm, distcc, distccd = (shutil.which(n) for n in ("ccfarm", "distcc", "distccd"))
    if not (ccfarm and distcc and distccd):
        sys.exit("needs ccfarm, distcc and distccd on PATH")
    trees = [t for t in lua_trees(fetch_lupa()) if t.name in TREES]
    work = tempfile.mkdtemp(prefix="ccfarm-farm-")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
    results: dict[str, float] = {}
    with ExitStack() as stack:
        hosts = [stack.enter_context(cgroup(f"h{i + 1}", q)) for i, q in enumerate(HOST_QUOTAS)]
        clients = [stack.enter_context(cgroup(f"c{i + 1}", args.client_cpu)) for i in range(3)]
        work_s = cpu_work(trees, work)
        capacity = sum(HOST_QUOTAS)
        bound = work_s / capacity
        envs = []
        for i in range(3):
            state = os.path.join(work, f"state-c{i + 1}")
            os.makedirs(state)
            envs.append(
                {
                    **base,
                    "CCFARM_DIR": state,
                    "DISTCC_DIR": state,
                    "CCFARM_CLIENT_NAME": f"client{i + 1}/bench",
                    "CCFARM_HELPER_IDLE": "5",
                }
            )

        # -- ccfarm with the scheduler
        with ExitStack() as farm:
            farm.enter_context(
                process(
                    [
                        sys.executable,
                        "-m",
                        "ccfarm.scheduler.main",
                        "--listen",
                        SCHED[0],
                        "--port",
                        str(SCHED[1]),
                        "--load-low",
                        "100",
                        "--load-high",
                        "200",
                        *(["--log-level", "debug"] if verbose else []),
                    ],
                    os.path.join(work, "scheduler.log"),
                )
            )
            wait_listening(*SCHED)
            for i, group in enumerate(hosts):
                address = f"127.0.1.{i + 1}"
                farm.enter_context(
                    process(
                        in_group(
                            group,
                            ccfarmd_command(
                                address,
                                PORT,
                                1,
                                ("--scheduler", f"{SCHED[0]}:{SCHED[1]}", "--heartbeat", "1"),
                            ),
                        ),
                        os.path.join(work, f"ccfarmd-{i + 1}.log"),
                    )
                )
            _wait_hosts(len(hosts))
            cf_envs = [{**e, "CCFARM_SCHEDULER": f"{SCHED[0]}:{SCHED[1]}"} for e in envs]
            logs = [os.path.join(work, f"ccfarmd-{i + 1}.log") for i in range(len(hosts))]
            offsets = [os.path.getsize(log) for log in logs]
            results["ccfarm"] = run_builds(
                fresh_builds(trees, work, "cf"), f"{ccfarm} gcc", cf_envs, clients, args.j
            )
            busy = [host_busy(log, offset) for log, offset in zip(logs, offsets, strict=True)]
            if not args.skip_fairness:
                big = fresh_builds(trees[:2], work, "cf-big")
                small = _small_build(trees[2], work, "cf-small")
                results["ccfarm small"] = fairness(
                    big, small, f"{ccfarm} gcc", cf_envs, clients, args.j
                )
            if not args.skip_exact:
                exact_envs = [{**e, "CCFARM_MODE": "exact"} for e in cf_envs]
                results["ccfarm exact"] = run_builds(
                    fresh_builds(trees, work, "cfx"), f"{ccfarm} gcc", exact_envs, clients, args.j
                )
            for group in clients:
                stop_group(group)  # the clients' warm helpers

        # -- distcc, static list, fastest first
        with ExitStack() as farm:
            for i, group in enumerate(hosts):
                farm.enter_context(
                    process(
                        in_group(group, distccd_command(distccd, f"127.0.1.{i + 1}", PORT, 1)),
                        os.path.join(work, f"distccd-{i + 1}.log"),
                    )
                )
                wait_listening(f"127.0.1.{i + 1}", PORT)
            hostlist = " ".join(f"127.0.1.{i + 1}:{PORT}/1,lzo" for i in range(len(hosts)))
            dc_envs = [{**e, "DISTCC_HOSTS": hostlist} for e in envs]
            results["distcc"] = run_builds(
                fresh_builds(trees, work, "dc"), f"{distcc} gcc", dc_envs, clients, args.j
            )
            if not args.skip_fairness:
                big = fresh_builds(trees[:2], work, "dc-big")
                small = _small_build(trees[2], work, "dc-small")
                results["distcc small"] = fairness(
                    big, small, f"{distcc} gcc", dc_envs, clients, args.j
                )

        # -- local: each client on its own share
        results["local"] = run_builds(fresh_builds(trees, work, "lo"), "gcc", envs, clients, 2)
    if verbose:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)

    files = sum(len(t.sources) for t in trees)
    print(
        f"emulated farm: hosts {HOST_QUOTAS} CPU (sum {capacity:.2f}), 3 clients x "
        f"{args.client_cpu} CPU, each building one Lua tree ({files} files in all), make -j{args.j}"
    )
    print(f"  compile work {work_s:.1f} CPU s; lower bound {bound:.1f} s")
    for name in ("ccfarm", "ccfarm exact", "distcc", "local"):
        if name in results:
            t = results[name]
            print(f"  {name:<12} makespan {t:6.1f} s   {bound / t:5.1%} of the bound")
    print(f"  ccfarm/distcc makespan ratio: {results['ccfarm'] / results['distcc']:.2f}")
    print(
        "  ccfarm hosts busy during its build: "
        + ", ".join(
            f"{q} CPU: {seconds / results['ccfarm']:.0%} ({jobs} jobs)"
            for q, (jobs, seconds) in zip(HOST_QUOTAS, busy, strict=True)
        )
    )
    if not args.skip_fairness:
        cf, dc = results["ccfarm small"], results["distcc small"]
        print(
            f"  fairness: small build during two big ones: ccfarm {cf:.1f} s, "
            f"distcc {dc:.1f} s, {dc / cf:.2f}x sooner (target >= 2x)"
        )
    return 0


def _wait_hosts(n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ccfarm.cli.ctl",
                "--scheduler",
                f"{SCHED[0]}:{SCHED[1]}",
                "--json",
                "hosts",
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode == 0 and out.stdout.count('"host"') >= n:
            print(out.stdout if os.environ.get("CCFARM_BENCH_VERBOSE") else "", end="")
            return
        time.sleep(0.5)
    sys.exit("hosts did not register with the scheduler")


def host_busy(log: str, offset: int) -> tuple[int, float]:
    """(jobs, seconds spent on them) from a ccfarmd log, past `offset` (one job slot)."""
    jobs, seconds = 0, 0.0
    with open(log, "rb") as f:
        f.seek(offset)
        for line in f.read().decode(errors="replace").splitlines():
            # "... PEER SOURCE vVERSION TOTAL ms (received ..., started ..., compiled ...)"
            head, sep, _ = line.partition(" ms (received ")
            if sep:
                jobs += 1
                seconds += float(head.rsplit(" ", 1)[1]) / 1000
    return jobs, seconds


def _small_build(tree: LuaTree, work: str, tag: str) -> str:
    small = LuaTree(tree.name, tree.path, tree.sources[:8])
    return prepare_build(small, os.path.join(work, tag))


if __name__ == "__main__":
    sys.exit(main())
