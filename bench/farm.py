"""An emulated heterogeneous farm on one machine, several client machines.

    sudo .venv/bin/python bench/farm.py [--repeat N] [--skip-fairness] [--skip-exact]

Six compile hosts on 127.0.1.1-6, each in its own cgroup v1 CPU group with a
quota of 0.3, 0.3, 0.15, 0.15, 0.075, 0.075 CPU (three speed tiers), and three
client machines, each its own cgroup (0.3 CPU), building a real code base
each (Lua 5.4, 5.3 and 5.5 from PyPI's lupa sdist) at the same time:

  ccfarm:  ccfarmd hosts registered with ccfarm-scheduler (they measure their
           own speed), clients with CCFARM_SCHEDULER
  distcc:  distccd hosts, every client with the same static list, fastest first
  local:   each client builds on its own CPU share only (first round only)

Reports each makespan, the lower bound (total compile CPU work / total farm
capacity) and the share of it reached. Then fairness: a small build (8 files)
started while two big builds run, with ccfarm and with distcc. With
--repeat N the configurations run N rounds, alternating which goes first,
and the summary gives medians. For each ccfarm build it shows where the
hosts were idle: before their first job, between jobs, after their last.
With --pin each host is also pinned to one CPU (a cpuset group): a one-CPU
host, where a nicer job yields to another as on a real one (unpinned, two
jobs of one host run on two CPUs and share its quota whatever their nice
values: --express needs it), but three hosts then share each CPU of this
machine with the clients, and the figures get noisier.
Needs root (cgroups); removes its groups afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from ccfarm.demo.codebase import LuaTree, fetch_lupa, lua_trees, prepare_build  # noqa: E402
from ccfarm.demo.farm import (  # noqa: E402
    ccfarmd_command,
    distccd_command,
    stop_process,
    wait_listening,
)

CGROOT = "/sys/fs/cgroup/cpu"
CPUSET_ROOT = "/sys/fs/cgroup/cpuset"
PERIOD = 100_000
HOST_QUOTAS = (0.3, 0.3, 0.15, 0.15, 0.075, 0.075)
CLIENT_QUOTA = 0.3
TREES = ("lua54", "lua53", "lua55")
PORT = 3632
SCHED = ("127.0.2.1", 3634)
VERBOSE = bool(os.environ.get("CCFARM_BENCH_VERBOSE"))
#: an emulated host: its CPU group (quota) and its cpuset group (one CPU), if pinned
Host = tuple[str, str | None]


@contextmanager
def group_at(path: str, settings: dict[str, str]) -> Iterator[str]:
    """A cgroup v1 directory with these files written; removed afterwards."""
    os.makedirs(path, exist_ok=True)
    for key, value in settings.items():
        with open(os.path.join(path, key), "w") as f:
            f.write(value)
    try:
        yield path
    finally:
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except OSError:  # processes still leaving
                time.sleep(0.1)


def cgroup(name: str, cpus: float) -> contextlib.AbstractContextManager[str]:
    """A CPU group with a quota of `cpus` CPUs."""
    return group_at(
        os.path.join(CGROOT, f"ccfarm-bench-{name}"),
        {"cpu.cfs_period_us": str(PERIOD), "cpu.cfs_quota_us": str(int(cpus * PERIOD))},
    )


def cpuset(name: str, cpu: int) -> contextlib.AbstractContextManager[str]:
    """A cpuset group that runs its processes on CPU `cpu` only."""
    with open(os.path.join(CPUSET_ROOT, "cpuset.mems")) as f:
        mems = f.read().strip()
    return group_at(
        os.path.join(CPUSET_ROOT, f"ccfarm-bench-{name}"),
        {"cpuset.mems": mems, "cpuset.cpus": str(cpu)},  # mems first: the kernel wants both
    )


def stop_group(group: str, timeout: float = 10.0) -> None:
    """SIGTERM what is left in a client group (only our builds' fork servers), wait for it."""
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


def in_group(group: str, argv: list[str], pinned: str | None = None) -> list[str]:
    """argv run inside cgroup `group`, and cpuset `pinned` if given (the
    wrapper moves only itself)."""
    moves = "".join(f"echo $$ > {g}/cgroup.procs; " for g in (group, pinned) if g)
    return ["sh", "-c", f'{moves}exec "$@"', "sh", *argv]


@contextmanager
def process(argv: list[str], log: str, env: dict[str, str] | None = None) -> Iterator[None]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    try:
        yield
    finally:
        stop_process(proc, 20)


def make(
    build: str, cc: str, env: dict[str, str], jobs: int, group: str | None
) -> subprocess.Popen[bytes]:
    argv = ["make", f"-j{jobs}", f"CC={cc}", "liblua.a"]
    return subprocess.Popen(
        in_group(group, argv) if group else argv,
        cwd=build,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def cpu_work(trees: list[LuaTree], work: str) -> float:
    """CPU seconds to compile every file once (all children of a local make)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for tree in trees:
        build = prepare_build(tree, os.path.join(work, f"work-{tree.name}"))
        subprocess.run(
            ["make", "-j2", "CC=gcc", "liblua.a"], cwd=build, check=True, capture_output=True
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@dataclass
class Farm:
    """One configuration's farm, up: how its clients compile, where its hosts log."""

    cc: str
    envs: list[dict[str, str]]
    clients: list[str]
    work: str
    jobs: int
    host_logs: list[str] = field(default_factory=list)

    def builds(self, trees: list[LuaTree], tag: str) -> list[str]:
        return [prepare_build(t, os.path.join(self.work, f"{tag}-{t.name}")) for t in trees]

    def run(self, builds: list[str], envs: list[dict[str, str]] | None = None) -> list[float]:
        """Every build at once; each one's time from the common start."""
        envs = envs or self.envs
        started = time.monotonic()
        procs = [
            make(b, self.cc, e, self.jobs, g)
            for b, e, g in zip(builds, envs, self.clients, strict=True)
        ]
        done = [0.0] * len(procs)
        pending = dict(enumerate(procs))
        while pending:
            for i, p in list(pending.items()):
                if p.poll() is not None:
                    done[i] = time.monotonic() - started
                    del pending[i]
                    if p.returncode:
                        err = p.stderr.read().decode() if p.stderr else ""
                        sys.exit(f"build failed ({self.cc}): {err[-1500:]}")
            time.sleep(0.01)
        for p in procs:
            p.communicate()
        return done

    def fairness(self, big: list[str], small: str, delay: float = 3.0) -> float:
        """Seconds for `small` (make -j4) started `delay` into the `big` builds."""
        procs = [
            make(b, self.cc, e, self.jobs, g)
            for b, e, g in zip(big, self.envs[:2], self.clients[:2], strict=True)
        ]
        time.sleep(delay)
        started = time.monotonic()
        small_env = {**self.envs[2], "CCFARM_VERBOSE": "1"} if VERBOSE else self.envs[2]
        small_proc = make(small, self.cc, small_env, 4, self.clients[2])
        _, err = small_proc.communicate()
        took = time.monotonic() - started
        if VERBOSE:
            print(f"small build ({took:.1f} s):\n{err.decode()}")
        for p in procs:
            p.communicate()
        if small_proc.returncode:
            sys.exit("small build failed")
        return took


@contextmanager
def ccfarm_farm(base: Farm, hosts: list[Host], scheduler_args: tuple[str, ...]) -> Iterator[Farm]:
    ccfarm = shutil.which("ccfarm")
    assert ccfarm
    work = base.work
    with ExitStack() as stack:
        stack.enter_context(
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
                    *(["--log-level", "debug"] if VERBOSE else []),
                    *scheduler_args,
                ],
                os.path.join(work, "scheduler.log"),
            )
        )
        wait_listening(*SCHED)
        logs = [os.path.join(work, f"ccfarmd-{i + 1}.log") for i in range(len(hosts))]
        for i, ((group, pinned), log) in enumerate(zip(hosts, logs, strict=True)):
            argv = ccfarmd_command(
                f"127.0.1.{i + 1}",
                PORT,
                1,
                ("--scheduler", f"{SCHED[0]}:{SCHED[1]}", "--heartbeat", "1"),
            )
            stack.enter_context(process(in_group(group, argv, pinned), log))
        _wait_hosts(len(hosts))
        envs = [{**e, "CCFARM_SCHEDULER": f"{SCHED[0]}:{SCHED[1]}"} for e in base.envs]
        try:
            yield Farm(f"{ccfarm} gcc", envs, base.clients, work, base.jobs, logs)
        finally:
            for group in base.clients:
                stop_group(group)  # the clients' fork servers


@contextmanager
def distcc_farm(base: Farm, hosts: list[Host], _: tuple[str, ...]) -> Iterator[Farm]:
    distcc, distccd = shutil.which("distcc"), shutil.which("distccd")
    assert distcc and distccd
    with ExitStack() as stack:
        for i, (group, pinned) in enumerate(hosts):
            address = f"127.0.1.{i + 1}"
            stack.enter_context(
                process(
                    in_group(group, distccd_command(distccd, address, PORT, 1), pinned),
                    os.path.join(base.work, f"distccd-{i + 1}.log"),
                )
            )
            wait_listening(address, PORT)
        hostlist = " ".join(f"127.0.1.{i + 1}:{PORT}/1,lzo" for i in range(len(hosts)))
        envs = [{**e, "DISTCC_HOSTS": hostlist} for e in base.envs]
        yield Farm(f"{distcc} gcc", envs, base.clients, base.work, base.jobs)


@dataclass
class Job:
    host: int
    source: str
    start: float
    end: float


def host_jobs(logs: list[str], offsets: list[int], t0: float) -> list[Job]:
    """Jobs in the ccfarmd logs past `offsets`, in seconds since wall time `t0`."""
    jobs = []
    for host, (log, offset) in enumerate(zip(logs, offsets, strict=True)):
        with open(log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        for line in text.splitlines():
            # "DATE TIME,MS ccfarmd[PID] INFO PEER SOURCE vVERSION TOTAL ms (received ..."
            head, sep, _ = line.partition(" ms (received ")
            if not sep:
                continue
            words = head.split()
            stamp = datetime.datetime.strptime(f"{words[0]} {words[1]}", "%Y-%m-%d %H:%M:%S,%f")
            end = stamp.timestamp() - t0
            jobs.append(Job(host, words[-3], end - float(words[-1]) / 1000, end))
    return jobs


def timeline(jobs: list[Job], done: list[float]) -> list[str]:
    """Where each host was idle during a build that ended at max(done)."""
    makespan = max(done)
    lines = ["    clients done at " + ", ".join(f"{d:.1f}" for d in done) + " s"]
    for host, quota in enumerate(HOST_QUOTAS):
        mine = sorted((j for j in jobs if j.host == host), key=lambda j: j.start)
        if not mine:
            lines.append(f"    host {host + 1} ({quota} CPU): no jobs")
            continue
        busy = sum(j.end - j.start for j in mine)
        gaps = sum(max(0.0, b.start - a.end) for a, b in itertools.pairwise(mine))
        lines.append(
            f"    host {host + 1} ({quota} CPU): {len(mine):3d} jobs, busy {busy / makespan:4.0%};"
            f" idle {max(0.0, mine[0].start):4.1f} s before its first, {gaps:4.1f} s between,"
            f" {max(0.0, makespan - mine[-1].end):4.1f} s after its last"
        )
    last = sorted(jobs, key=lambda j: j.end)[-4:]
    lines.append(
        "    last to finish: "
        + ", ".join(
            f"{j.source} on {HOST_QUOTAS[j.host]} CPU {j.start:.1f}-{j.end:.1f} s" for j in last
        )
    )
    return lines


def run_round(
    rnd: int, args: argparse.Namespace, base: Farm, hosts: list[Host], trees: list[LuaTree]
) -> tuple[dict[str, float], list[str]]:
    results: dict[str, float] = {}
    notes: list[str] = []
    kinds = ["ccfarm", "distcc"] if rnd % 2 == 0 else ["distcc", "ccfarm"]
    for kind in kinds:
        starter = ccfarm_farm if kind == "ccfarm" else distcc_farm
        with starter(base, hosts, ("--express",) if args.express else ()) as farm:
            tag = f"r{rnd}-{kind}"
            offsets = [os.path.getsize(log) for log in farm.host_logs]
            t0 = time.time()
            done = farm.run(farm.builds(trees, tag))
            results[kind] = max(done)
            if farm.host_logs:
                notes += [f"  round {rnd + 1}, ccfarm build:"]
                notes += timeline(host_jobs(farm.host_logs, offsets, t0), done)
            if not args.skip_fairness:
                big = farm.builds(trees[:2], f"{tag}-big")
                small = LuaTree(trees[2].name, trees[2].path, trees[2].sources[:8])
                small_build = prepare_build(small, os.path.join(base.work, f"{tag}-small"))
                results[f"{kind} small"] = farm.fairness(big, small_build)
            if kind == "ccfarm" and not args.skip_exact:
                exact = [{**e, "CCFARM_MODE": "exact"} for e in farm.envs]
                results["ccfarm exact"] = max(farm.run(farm.builds(trees, f"{tag}-x"), exact))
    if rnd == 0:
        local = Farm("gcc", base.envs, base.clients, base.work, 2)
        results["local"] = max(local.run(local.builds(trees, f"r{rnd}-local")))
    return results, notes


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=1, help="rounds of every configuration")
    p.add_argument("--skip-fairness", action="store_true")
    p.add_argument(
        "--skip-exact", action="store_true", help="skip the ccfarm run with CCFARM_MODE=exact"
    )
    p.add_argument("-j", type=int, default=8, help="make -j per client")
    p.add_argument("--express", action="store_true", help="ccfarm-scheduler --express")
    p.add_argument("--pin", action="store_true", help="pin each host to one CPU (see above)")
    p.add_argument(
        "--client-cpu",
        type=float,
        default=CLIENT_QUOTA,
        help="CPU quota of each client machine (0.3)",
    )
    args = p.parse_args()
    if os.geteuid() != 0 or not os.path.isdir(CGROOT):
        sys.exit("needs root and cgroup v1 at /sys/fs/cgroup/cpu")
    if not all(shutil.which(n) for n in ("ccfarm", "distcc", "distccd")):
        sys.exit("needs ccfarm, distcc and distccd on PATH")
    trees = [t for t in lua_trees(fetch_lupa()) if t.name in TREES]
    work = tempfile.mkdtemp(prefix="ccfarm-farm-")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
    rounds: list[dict[str, float]] = []
    with ExitStack() as stack:
        cpus = sorted(os.sched_getaffinity(0))
        hosts = [
            (
                stack.enter_context(cgroup(f"h{i + 1}", q)),
                stack.enter_context(cpuset(f"h{i + 1}", cpus[i % len(cpus)])) if args.pin else None,
            )
            for i, q in enumerate(HOST_QUOTAS)
        ]
        clients = [stack.enter_context(cgroup(f"c{i + 1}", args.client_cpu)) for i in range(3)]
        work_s = cpu_work(trees, work)
        envs = []
        for i in range(3):
            state = os.path.join(work, f"state-c{i + 1}")
            os.makedirs(state)
            envs.append(
                {
                    **base_env,
                    "CCFARM_DIR": state,
                    "DISTCC_DIR": state,
                    "CCFARM_CLIENT_NAME": f"client{i + 1}/bench",
                    "CCFARM_HELPER_IDLE": "5",
                }
            )
        base = Farm("", envs, clients, work, args.j)
        for rnd in range(args.repeat):
            results, notes = run_round(rnd, args, base, hosts, trees)
            rounds.append(results)
            print("\n".join(notes))
            sys.stdout.flush()
    if VERBOSE:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    report(rounds, work_s, trees, args)
    return 0


def report(
    rounds: list[dict[str, float]], work_s: float, trees: list[LuaTree], args: argparse.Namespace
) -> None:
    capacity = sum(HOST_QUOTAS)
    bound = work_s / capacity
    files = sum(len(t.sources) for t in trees)
    print(
        f"emulated farm: hosts {HOST_QUOTAS} CPU (sum {capacity:.2f}), 3 clients x "
        f"{args.client_cpu} CPU, each building one Lua tree ({files} files in all), "
        f"make -j{args.j}, {len(rounds)} round(s)"
    )
    print(f"  compile work {work_s:.1f} CPU s; lower bound {bound:.1f} s")

    def row(name: str, values: list[float], fmt: str = "{:6.1f} s") -> str:
        each = "  ".join(fmt.format(v) for v in values)
        median = fmt.format(statistics.median(values))
        return f"  {name:<22} median {median}   rounds: {each}"

    for name in ("ccfarm", "ccfarm exact", "distcc", "local"):
        values = [r[name] for r in rounds if name in r]
        if values:
            print(row(f"{name} makespan", values))
            if name != "local":
                print(row(f"{name} share of bound", [bound / v for v in values], "{:6.1%}"))
    ratios = [r["ccfarm"] / r["distcc"] for r in rounds]
    print(row("ccfarm/distcc", ratios, "{:6.2f}"))
    share = sum(bound / r["ccfarm"] >= 0.85 for r in rounds)
    faster = sum(x < 1 for x in ratios)
    print(
        f"  rounds at >= 85 % of the bound: {share}/{len(rounds)}; faster than distcc: "
        f"{faster}/{len(rounds)}"
    )
    if not args.skip_fairness:
        print(row("small build, ccfarm", [r["ccfarm small"] for r in rounds]))
        print(row("small build, distcc", [r["distcc small"] for r in rounds]))
        sooner = [r["distcc small"] / r["ccfarm small"] for r in rounds]
        print(row("small: distcc/ccfarm", sooner, "{:6.2f}"))
        print(
            f"  rounds with the small build >= 2x sooner: "
            f"{sum(x >= 2 for x in sooner)}/{len(rounds)}"
        )


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
            print(out.stdout if VERBOSE else "", end="")
            return
        time.sleep(0.5)
    sys.exit("hosts did not register with the scheduler")


if __name__ == "__main__":
    sys.exit(main())
