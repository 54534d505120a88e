"""An emulated heterogeneous farm on one machine: ccfarm, distcc and icecream
side by side, every one with its default settings.

    sudo .venv/bin/python bench/farm.py [--repeat N] [--shape S] [--scenario C]

Six compile hosts, each in its own cgroup v1 CPU group with a quota of 0.3,
0.3, 0.15, 0.15, 0.075, 0.075 CPU (three speed tiers). Farm shapes:

  tiers   one job slot per host
  multi   the two fastest hosts with two slots, the others one

Scenarios, each on every shape:

  one       one client machine (0.5 CPU) builds Lua 5.1-5.5 (129 files), make -j8
  three     three client machines (0.3 CPU each) build Lua 5.4, 5.3 and 5.5 at once
  fairness  the three clients: a small build (8 files, make -j4) started 3 s
            into two big ones; its time is the figure

Systems, each as its documentation sets it up:

  ccfarm    ccfarm-scheduler and one ccfarmd per host (they measure their own
            speed); clients set CCFARM_SCHEDULER; no other setting
  distcc    one distccd per host; every client lists the hosts fastest first
            (`host/N,lzo`) and `localhost/1` last, distcc's way to use the
            client's own CPU
  icecream  icecc-scheduler and one iceccd per host (`-m N`), one iceccd
            --no-remote per client machine (icecream's clients talk to their
            machine's daemon); ICECC_TESTS=1 keeps discovery on loopback

Each round starts every system's farm afresh (state directories and
icecream's compiler environments are kept between rounds, as on a farm
that runs all day) and runs the systems in a rotated order. The lower bound
is the compile CPU work (a local `make` of every file, measured first) over
the capacity that compiles: the hosts' quotas plus the client machines'
(every system compiles on the client too). Reported: makespans, share of
the bound, ratios against each peer, medians over the rounds. For every
build it shows each client's CPU (a cpuacct group beside its CPU group:
make, the wrapper, the preprocessor, its local compiles) and the share of
its scheduling periods it spent held at its quota (near 100 %: the build
waited for the client's CPU); for ccfarm builds also where each host was
idle (before its first job, between jobs, after its last) and which jobs
ended last.

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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    CGROOT,
    CPUACCT,
    PERIOD,
    accounting,
    cgroup,
    in_group,
    set_quota,
    stop_group,
    usage_seconds,
)

from ccfarm.demo.codebase import LuaTree, fetch_lupa, lua_trees, prepare_build  # noqa: E402
from ccfarm.demo.farm import (  # noqa: E402
    ccfarmd_command,
    distccd_command,
    scheduler_command,
    stop_process,
    wait_listening,
)

HOST_QUOTAS = (0.3, 0.3, 0.15, 0.15, 0.075, 0.075)
SHAPES = {"tiers": (1, 1, 1, 1, 1, 1), "multi": (2, 2, 1, 1, 1, 1)}
#: scenario -> (client quotas, trees each client builds, make -j)
SCENARIOS: dict[str, tuple[tuple[float, ...], tuple[tuple[str, ...], ...], int]] = {
    "one": ((0.5,), (("lua51", "lua52", "lua53", "lua54", "lua55"),), 8),
    "three": ((0.3, 0.3, 0.3), (("lua54",), ("lua53",), ("lua55",)), 8),
    "fairness": ((0.3, 0.3, 0.3), (("lua54",), ("lua53",), ("lua55",)), 8),
}
SYSTEMS = ("ccfarm", "distcc", "icecream")
PORT = 3632
SCHED = ("127.0.2.1", 3634)
ICE_SCHED_PORT = 8767
VERBOSE = bool(os.environ.get("CCFARM_BENCH_VERBOSE"))


@contextmanager
def process(argv: list[str], log: str, env: dict[str, str] | None = None) -> Iterator[None]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)
    try:
        yield
    finally:
        stop_process(proc, 20)


def counted(group: str) -> str:
    """The cpuacct group beside a client's CPU group (its CPU use is counted)."""
    return os.path.join(CPUACCT, os.path.relpath(group, CGROOT))


def make(
    build: str, cc: str, env: dict[str, str], jobs: int, group: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        in_group(group, ["make", f"-j{jobs}", f"CC={cc}", "liblua.a"], counted(group)),
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
    """One system's farm, up: how its clients compile, where its hosts log."""

    cc: str
    envs: list[dict[str, str]]  # one per client machine
    clients: list[str]  # their cgroups
    work: str
    host_logs: list[str] = field(default_factory=list)

    def run(self, builds: list[str], jobs: int) -> list[float]:
        """Every build at once, build i on client i; each one's time from the common start."""
        started = time.monotonic()
        procs = [
            make(b, self.cc, e, jobs, g)
            for b, e, g in zip(builds, self.envs, self.clients, strict=False)
        ]
        return [t - started for t in wait_all(procs, self.cc)]

    def fairness(self, big: list[str], small: str, jobs: int, delay: float = 3.0) -> float:
        """Seconds for `small` (make -j4, client 3) started `delay` into the `big` builds."""
        procs = [
            make(b, self.cc, e, jobs, g)
            for b, e, g in zip(big, self.envs[:2], self.clients[:2], strict=True)
        ]
        time.sleep(delay)
        started = time.monotonic()
        small_env = {**self.envs[2], "CCFARM_VERBOSE": "1"} if VERBOSE else self.envs[2]
        (ended,) = wait_all([make(small, self.cc, small_env, 4, self.clients[2])], self.cc)
        wait_all(procs, self.cc)
        return ended - started


def wait_all(procs: list[subprocess.Popen[bytes]], what: str) -> list[float]:
    """Wait for every process; when each ended (monotonic). A failed build ends the run."""
    done = [0.0] * len(procs)
    pending = dict(enumerate(procs))
    while pending:
        for i, p in list(pending.items()):
            if p.poll() is not None:
                done[i] = time.monotonic()
                del pending[i]
                err = p.stderr.read().decode(errors="replace") if p.stderr else ""
                if p.returncode:
                    sys.exit(f"build failed ({what}): {err[-1500:]}")
                if VERBOSE and err:
                    print(err)
        time.sleep(0.01)
    for p in procs:
        p.communicate()
    return done


@dataclass
class Bench:
    """What every farm shares: host and client groups, work directory, client state."""

    hosts: list[str]  # host cgroups
    clients: list[str]  # client cgroups
    work: str
    base_env: dict[str, str]

    @property
    def state(self) -> str:
        """The ccfarmd hosts' --state-dir (their speed probe, kept between rounds)."""
        return os.path.join(self.work, "ccfarmd-state")

    def client_envs(self) -> list[dict[str, str]]:
        envs = []
        for i in range(len(self.clients)):
            state = os.path.join(self.work, f"state-c{i + 1}")
            os.makedirs(state, exist_ok=True)
            envs.append(
                {
                    **self.base_env,
                    "CCFARM_DIR": state,
                    "DISTCC_DIR": state,
                    "CCFARM_CLIENT_NAME": f"client{i + 1}/bench",
                }
            )
        return envs


@contextmanager
def ccfarm_farm(bench: Bench, slots: tuple[int, ...]) -> Iterator[Farm]:
    ccfarm = shutil.which("ccfarm")
    assert ccfarm
    work = bench.work
    with ExitStack() as stack:
        argv = scheduler_command(*SCHED, ("--log-level", "debug") if VERBOSE else ())
        stack.enter_context(process(argv, os.path.join(work, "scheduler.log")))
        wait_listening(*SCHED)
        logs = [os.path.join(work, f"ccfarmd-{i + 1}.log") for i in range(len(slots))]
        for i, (group, n, log) in enumerate(zip(bench.hosts, slots, logs, strict=True)):
            # the speed probe's result is kept between rounds, as by a host's restarts
            extra = ("--scheduler", f"{SCHED[0]}:{SCHED[1]}", "--state-dir", bench.state)
            argv = ccfarmd_command(f"127.0.1.{i + 1}", PORT, n, extra)
            stack.enter_context(process(in_group(group, argv), log))
        _wait_ccfarm_hosts(len(slots))
        envs = [{**e, "CCFARM_SCHEDULER": f"{SCHED[0]}:{SCHED[1]}"} for e in bench.client_envs()]
        try:
            yield Farm(f"{ccfarm} gcc", envs, bench.clients, work, logs)
        finally:
            for group in bench.clients:
                stop_group(group)  # the clients' fork servers


@contextmanager
def distcc_farm(bench: Bench, slots: tuple[int, ...]) -> Iterator[Farm]:
    distcc, distccd = shutil.which("distcc"), shutil.which("distccd")
    assert distcc and distccd
    with ExitStack() as stack:
        for i, (group, n) in enumerate(zip(bench.hosts, slots, strict=True)):
            address = f"127.0.1.{i + 1}"
            stack.enter_context(
                process(
                    in_group(group, distccd_command(distccd, address, PORT, n)),
                    os.path.join(bench.work, f"distccd-{i + 1}.log"),
                )
            )
            wait_listening(address, PORT)
        order = sorted(range(len(slots)), key=lambda i: -HOST_QUOTAS[i])  # fastest first
        hostlist = " ".join(f"127.0.1.{i + 1}:{PORT}/{slots[i]},lzo" for i in order)
        envs = [{**e, "DISTCC_HOSTS": f"{hostlist} localhost/1"} for e in bench.client_envs()]
        yield Farm(f"{distcc} gcc", envs, bench.clients, bench.work)


@contextmanager
def icecream_farm(bench: Bench, slots: tuple[int, ...]) -> Iterator[Farm]:
    icecc, iceccd, scheduler = (shutil.which(n) for n in ("icecc", "iceccd", "icecc-scheduler"))
    if not (icecc and iceccd and scheduler):
        sys.exit("needs icecream (apt-get install icecc)")
    ice = os.path.join(bench.work, "icecream")  # iceccd drops root: its files live here
    os.makedirs(ice, exist_ok=True)
    os.chmod(bench.work, 0o755)
    os.chmod(ice, 0o777)
    net = f"ccfarmbench{os.getpid()}"
    env = {
        **bench.base_env,
        "ICECC_TESTS": "1",
        "ICECC_TEST_SCHEDULER_PORTS": f"{ICE_SCHED_PORT}:{ICE_SCHED_PORT + 2}",
        "ICECC_SCHEDULER": f"127.0.0.1:{ICE_SCHED_PORT}",
    }

    def daemon(
        name: str, group: str, n: int, port: int, *extra: str, client: bool = False
    ) -> list[str]:
        argv = [iceccd, "-b", os.path.join(ice, f"envs-{name}"), "-n", net, "-N", name]
        argv += ["-m", str(n), "-p", str(port), "-l", os.path.join(ice, f"{name}.log"), "-vv"]
        argv += extra
        # a client machine's daemon compiles its local jobs: its CPU is the client's
        return in_group(group, argv, *([counted(group)] if client else []))

    with ExitStack() as stack:
        argv = [scheduler, "-p", str(ICE_SCHED_PORT), "-n", net]
        stack.enter_context(
            process(argv + ["-l", os.path.join(ice, "scheduler.log")], os.devnull, env)
        )
        names = []
        for i, (group, n) in enumerate(zip(bench.hosts, slots, strict=True)):
            names.append(f"h{i + 1}")
            sock = {"ICECC_TEST_SOCKET": os.path.join(ice, f"sock-h{i + 1}")}
            stack.enter_context(
                process(daemon(names[-1], group, n, 10250 + i), os.devnull, {**env, **sock})
            )
        envs = []
        for i, (group, quota) in enumerate(zip(bench.clients, client_quotas(bench), strict=True)):
            names.append(f"c{i + 1}")
            sock = {"ICECC_TEST_SOCKET": os.path.join(ice, f"sock-c{i + 1}")}
            local = max(1, round(quota))
            argv = daemon(names[-1], group, local, 10270 + i, "--no-remote", client=True)
            stack.enter_context(process(argv, os.devnull, {**env, **sock}))
            envs.append({**bench.client_envs()[i], **env, **sock, "ICECC_TEST_REMOTEBUILD": "1"})
        _wait_icecream(ice, names)
        yield Farm(f"{icecc} gcc", envs, bench.clients, bench.work)


STARTERS: dict[str, Callable[[Bench, tuple[int, ...]], contextlib.AbstractContextManager[Farm]]] = {
    "ccfarm": ccfarm_farm,
    "distcc": distcc_farm,
    "icecream": icecream_farm,
}


def client_quotas(bench: Bench) -> list[float]:
    quotas = []
    for group in bench.clients:
        with open(os.path.join(group, "cpu.cfs_quota_us")) as f:
            quotas.append(int(f.read()) / PERIOD)
    return quotas


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


def timeline(jobs: list[Job], makespan: float, files: int) -> list[str]:
    """Where each host was idle during a build that ended at `makespan`."""
    lines = [f"    {len(jobs)} jobs ran on hosts, for {files} files"]
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
    last = sorted(jobs, key=lambda j: j.end)[-3:]
    lines.append(
        "    last to finish on hosts: "
        + ", ".join(
            f"{j.source} on {HOST_QUOTAS[j.host]} CPU {j.start:.1f}-{j.end:.1f} s" for j in last
        )
    )
    return lines


def client_build(trees: list[LuaTree], build_dir: str, limit: int | None = None) -> str:
    """One client's build: one Lua tree (its first `limit` files), or several
    trees under one Makefile whose sub-makes share make's job slots."""
    if len(trees) == 1:
        t = trees[0]
        return prepare_build(LuaTree(t.name, t.path, t.sources[:limit]), build_dir)
    os.makedirs(build_dir, exist_ok=True)
    names = [t.name for t in trees]
    for t in trees:
        prepare_build(t, os.path.join(build_dir, t.name))
    with open(os.path.join(build_dir, "Makefile"), "w") as f:
        f.write(f".PHONY: liblua.a {' '.join(names)}\nliblua.a: {' '.join(names)}\n")
        for n in names:
            f.write(f"{n}:\n\t$(MAKE) -C {n} liblua.a\n")
    return build_dir


def run_scenario(
    farm: Farm, scenario: str, trees: dict[str, LuaTree], tag: str
) -> tuple[float, list[str]]:
    """One scenario on a running farm: the makespan (fairness: the small build's
    time) and, for ccfarm, the hosts' timeline."""
    _, builds_of, jobs = SCENARIOS[scenario]

    def build(i: int, limit: int | None = None) -> str:
        mine = [trees[n] for n in builds_of[i]]
        return client_build(mine, os.path.join(farm.work, f"{tag}-{scenario}-{i}"), limit)

    if scenario == "fairness":
        return farm.fairness([build(0), build(1)], build(2, 8), jobs), []
    builds = [build(i) for i in range(len(builds_of))]
    offsets = [os.path.getsize(log) for log in farm.host_logs]
    clients = farm.clients[: len(builds)]
    before = [(throttling(g), usage_seconds(counted(g))) for g in clients]
    t0 = time.time()
    done = farm.run(builds, jobs)
    notes = []
    for i, (group, (periods, cpu)) in enumerate(zip(clients, before, strict=True)):
        share = throttled_share(periods, throttling(group))
        used = usage_seconds(counted(group)) - cpu
        files = sum(len(trees[n].sources) for n in builds_of[i])
        notes.append(
            f"    client {i + 1}: {used:.1f} CPU s for {files} files"
            f" ({used / files * 1000:.0f} ms a file, its local compiles included);"
            f" held at its quota in {share:.0%} of its periods"
        )
    if farm.host_logs:
        files = sum(len(trees[n].sources) for names in builds_of for n in names)
        notes += timeline(host_jobs(farm.host_logs, offsets, t0), max(done), files)
    return max(done), notes


def throttling(group: str) -> tuple[int, int]:
    """A CPU group's (periods with work, periods that hit the quota) so far."""
    with open(os.path.join(group, "cpu.stat")) as f:
        stat = dict(line.split() for line in f if line.strip())
    return int(stat["nr_periods"]), int(stat["nr_throttled"])


def throttled_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Of the periods between two readings in which the group ran, the share it
    was held at its quota: near 100 %, its CPU was what the build waited for."""
    periods, throttled = after[0] - before[0], after[1] - before[1]
    return throttled / periods if periods else 0.0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=3, help="rounds of every configuration (3)")
    p.add_argument("--shape", action="append", choices=SHAPES, help="farm shape (all)")
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="scenario (all)")
    p.add_argument("--system", action="append", choices=SYSTEMS, help="system (all)")
    args = p.parse_args()
    if os.geteuid() != 0 or not os.path.isdir(CGROOT):
        sys.exit("needs root and cgroup v1 at /sys/fs/cgroup/cpu")
    shapes = args.shape or list(SHAPES)
    scenarios = args.scenario or list(SCENARIOS)
    systems = args.system or list(SYSTEMS)
    names = {n for s in scenarios for b in SCENARIOS[s][1] for n in b}
    trees = {t.name: t for t in lua_trees(fetch_lupa()) if t.name in names}
    work = tempfile.mkdtemp(prefix="ccfarm-farm-")
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM", "ICECC"))
    }
    results: dict[tuple[str, str, str], list[float]] = {}
    work_s = cpu_work(list(trees.values()), work)
    per_file = work_s / sum(len(t.sources) for t in trees.values())
    with ExitStack() as stack:
        hosts = [stack.enter_context(cgroup(f"h{i + 1}", q)) for i, q in enumerate(HOST_QUOTAS)]
        clients = [stack.enter_context(cgroup(f"c{i + 1}", 0.3)) for i in range(3)]
        for i in range(3):
            stack.enter_context(accounting(f"c{i + 1}"))  # counted(clients[i])
        for shape in shapes:
            for rnd in range(args.repeat):
                order = systems[rnd % len(systems) :] + systems[: rnd % len(systems)]
                for system in order:
                    bench = Bench(hosts, clients, work, base_env)
                    with STARTERS[system](bench, SHAPES[shape]) as farm:
                        for scenario in scenarios:
                            quotas = SCENARIOS[scenario][0]
                            for group, q in zip(clients, quotas, strict=False):
                                set_quota(group, q)
                            tag = f"{shape}-r{rnd}-{system}"
                            took, notes = run_scenario(farm, scenario, trees, tag)
                            results.setdefault((shape, scenario, system), []).append(took)
                            print(
                                f"{shape} round {rnd + 1} {scenario:<8} {system:<8} {took:6.1f} s"
                            )
                            print("\n".join(notes))
                            sys.stdout.flush()
    if VERBOSE:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    report(results, trees, per_file, shapes, scenarios, systems)
    return 0


def report(
    results: dict[tuple[str, str, str], list[float]],
    trees: dict[str, LuaTree],
    per_file: float,
    shapes: list[str],
    scenarios: list[str],
    systems: list[str],
) -> None:
    print(f"\nhosts {HOST_QUOTAS} CPU; compile work {per_file * 1000:.0f} CPU ms per file")
    for shape in shapes:
        print(f"\nshape {shape}: slots {SHAPES[shape]}")
        for scenario in scenarios:
            quotas, builds_of, jobs = SCENARIOS[scenario]
            capacity = sum(HOST_QUOTAS) + sum(quotas)
            files = sum(len(trees[n].sources) for b in builds_of for n in b)
            bound = files * per_file / capacity
            if scenario == "fairness":
                print("  fairness (small build of 8 files, make -j4, into two big builds):")
            else:
                print(
                    f"  {scenario}: {len(quotas)} client(s) x {quotas[0]} CPU, {files} files,"
                    f" make -j{jobs}; capacity {capacity:.2f} CPU, bound {bound:.1f} s"
                )
            medians = {}
            for system in systems:
                values = results.get((shape, scenario, system))
                if not values:
                    continue
                medians[system] = statistics.median(values)
                each = ", ".join(f"{v:.1f}" for v in values)
                share = (
                    "" if scenario == "fairness" else f"  {bound / medians[system]:6.1%} of bound"
                )
                print(f"    {system:<9} median {medians[system]:6.1f} s{share}   rounds: {each}")
            if "ccfarm" in medians:
                for peer in (s for s in systems if s != "ccfarm" and s in medians):
                    ratios = [
                        c / o
                        for c, o in zip(
                            results[(shape, scenario, "ccfarm")],
                            results[(shape, scenario, peer)],
                            strict=True,
                        )
                    ]
                    print(
                        f"    ccfarm/{peer:<9} median {statistics.median(ratios):.2f}"
                        f"   rounds: {', '.join(f'{r:.2f}' for r in ratios)}"
                    )


def _wait_ccfarm_hosts(n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    argv = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", f"{SCHED[0]}:{SCHED[1]}"]
    while time.monotonic() < deadline:
        out = subprocess.run([*argv, "--json", "hosts"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.count('"host"') >= n:
            return
        time.sleep(0.5)
    sys.exit("ccfarm hosts did not register with the scheduler")


def _wait_icecream(directory: str, names: list[str], timeout: float = 60.0) -> None:
    """Until every iceccd's log says it found the scheduler."""
    deadline = time.monotonic() + timeout
    waiting = set(names)
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            with contextlib.suppress(OSError), open(os.path.join(directory, f"{name}.log")) as f:
                if "Connected to scheduler" in f.read():
                    waiting.discard(name)
        time.sleep(0.5)
    if waiting:
        sys.exit(f"iceccd {sorted(waiting)} did not find the scheduler")


if __name__ == "__main__":
    sys.exit(main())
