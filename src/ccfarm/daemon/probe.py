"""What a host tells the scheduler about itself: CPUs, speed, compilers."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time

from ccfarm.cgroups import parse_proc_stat
from ccfarm.compiler.identity import parse_version_output
from ccfarm.daemon.compilers import CompilerAllowList
from ccfarm.model import CompilerIdentity

#: a fixed reference compile: about 0.25 s on one core of the development machine
_REFERENCE = "\n".join(
    f"double f{i}(double x, int n) {{ double s = {i}.5; for (int k = 0; k < n; k++) "
    f"s = s * x / (k + {i + 1}.0) + (s > {i} ? k : -k); return s; }}"
    for i in range(100)
)


def tree_cpu(pid: int | None = None, proc: str = "/proc") -> float:
    """CPU seconds of a process and all its descendants, live or reaped.

    For ccfarmd: the daemon itself and every compiler it started, so far.
    Live descendants come from PROC/*/stat; reaped ones are in each
    parent's children's times.
    """
    pid = os.getpid() if pid is None else pid
    kids: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        names = []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat")) as f:
                parsed = parse_proc_stat(f.read())
        except (OSError, UnicodeDecodeError):
            continue  # it ended meanwhile
        if parsed is not None:
            kids.setdefault(parsed[1], []).append(parsed[0])
            ticks[parsed[0]] = parsed[2]
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += ticks.get(p, 0)
        todo.extend(kids.get(p, ()))
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's finished children (its compilers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: the compiler of the reference compile (found on PATH)
REFERENCE_COMPILER = "gcc"


def measure_speed(compiler: str = REFERENCE_COMPILER, rounds: int = 2) -> SpeedEstimate:
    """Time the reference compile (best of `rounds`): wall and CPU seconds."""
    with tempfile.TemporaryDirectory(prefix="ccfarmd-probe-") as tmp:
        source = os.path.join(tmp, "reference.c")
        with open(source, "w") as f:
            f.write(_REFERENCE + "\n")
        best_wall = best_cpu = float("inf")
        for _ in range(rounds):
            cpu = children_cpu()
            started = time.perf_counter()
            subprocess.run(
                [compiler, "-O2", "-c", source, "-o", os.path.join(tmp, "r.o")],
                check=True,
                capture_output=True,
            )
            best_wall = min(best_wall, time.perf_counter() - started)
            best_cpu = min(best_cpu, max(children_cpu() - cpu, 1e-3))
    return SpeedEstimate(best_cpu, best_wall)


class SpeedEstimate:
    """A host's speed score: 1 / seconds of the reference compile, refined.

    The probe gives the reference compile's CPU time (what the core can do)
    and its wall time (what this host gave it: CPU quotas, other load). Jobs
    then keep telling the same thing: the share of the CPU time they could
    have had (`Entitlement`) that they got. The score is (1 / reference CPU
    seconds) x that share, an exponential average over the jobs seen, so a
    host whose CPUs get busier or throttled slows down in the scheduler's
    eyes, and speeds up again.
    """

    def __init__(self, reference_cpu: float, reference_wall: float, weight: float = 0.3) -> None:
        self.reference_cpu = reference_cpu  # the probe's figures (kept across restarts)
        self.reference_wall = reference_wall
        self.core_speed = 1.0 / reference_cpu
        self.share = min(1.0, reference_cpu / reference_wall)
        self.weight = weight

    @property
    def speed(self) -> float:
        return float(f"{self.core_speed * self.share:.2g}")  # 2 digits: no jitter

    def observe(self, cpu_seconds: float, wall_seconds: float) -> None:
        """CPU and wall seconds summed over the jobs finished since the last call."""
        if wall_seconds < 0.5:  # too little to say anything
            return
        share = min(1.0, cpu_seconds / wall_seconds)
        self.share += self.weight * (share - self.share)


class Entitlement:
    """How much CPU a host's compilers could have had: each running one a
    whole CPU while they are no more than its CPUs, an equal share of them
    when there are more (a 1-CPU host running 2 jobs: half a CPU each).

    `at(now)` is the integral of min(1, cpus / running) over the time
    compilers ran; a job's entitlement is its value at the job's end minus
    at its start. The daemon's refined speed divides the compilers' CPU
    time by these, not by their wall time: so it measures what the host's
    CPUs give (quotas, other load), as the probe does, and not the
    contention between its own slots, which the scheduler counts itself (a
    job's speed there is the host's shared once more jobs run than CPUs).
    """

    def __init__(self, cpus: int) -> None:
        self.cpus = max(1, cpus)
        self.running = 0
        self._total = 0.0
        self._since = 0.0

    def at(self, now: float) -> float:
        if self.running == 0:
            return self._total
        return self._total + (now - self._since) * min(1.0, self.cpus / self.running)

    def change(self, now: float, running: int) -> float:
        """`running` compilers from `now` on; returns `at(now)`."""
        self._total = self.at(now)
        self._since, self.running = now, max(0, running)
        return self._total


def compiler_identities(allow: CompilerAllowList) -> list[CompilerIdentity]:
    """The distinct compilers behind the allow-list's names."""
    seen: dict[str, CompilerIdentity] = {}
    for name in sorted(allow.names):
        try:
            path = os.path.realpath(allow.resolve(name))
        except ValueError:
            continue
        if path in seen:
            continue
        try:
            proc = subprocess.run(
                [path, "-v"], capture_output=True, timeout=10, env={**os.environ, "LC_ALL": "C"}
            )
        except (OSError, subprocess.SubprocessError):
            continue
        ident = parse_version_output(proc.stderr.decode("utf-8", "replace"))
        if ident.family != "unknown":
            seen[path] = ident
    return sorted(set(seen.values()), key=lambda i: (i.family, i.version, i.target))
