"""Where this machine's CPU really is: the process's cgroup, its CPU limit and use.

Used by ccfarmd (its default slots, its availability) and by the wrapper
(its local slots: a build in a container limited to half a CPU gets one,
not one per CPU of the machine).

Inside a container or a CPU-limited cgroup the load average is the whole
machine's; what this host can give is its cgroup's quota, and what others
take from it is the cgroup's CPU use that is not ccfarm's.

The `parse_*` functions are pure (text in, numbers out, `None` for absent
or garbage). `find_cpu_cgroup` and `read_usage` read files under a root
directory that is a parameter (`/sys/fs/cgroup` on Linux), so tests build
fixture trees. Both cgroup versions:

* v2 (unified): `0::/path` in /proc/self/cgroup; `cpu.max` ("max 100000"
  or "QUOTA PERIOD") and `cpu.stat` (`usage_usec`) under ROOT/path.
* v1: the `cpu` and `cpuacct` controllers' lines; `cpu.cfs_quota_us` and
  `cpu.cfs_period_us` (-1: no limit) under ROOT/cpu,cpuacct/path or
  ROOT/cpu/path, `cpuacct.usage` (ns) under ROOT/cpuacct/path or the same;
  a `cpu` group with no `cpuacct` group of its own (the two mounted apart)
  is measured by its processes' times (`cgroup.procs`, /proc/PID/stat).

The limit is the smallest on the way from the daemon's cgroup up to the
root (a child never gets more than its ancestors' quota); the use is read
where that limit is (every cgroup below it competes for the same quota),
else in the daemon's own cgroup. Directories that do not exist on the way
are skipped: in a container without a cgroup namespace, /proc/self/cgroup
names the machine's path while the mount's root is the container's cgroup.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

from ccfarm._record import record

__all__ = [
    "CpuCgroup",
    "cpu_slots",
    "effective_cpus",
    "find_cpu_cgroup",
    "in_container",
    "machine_cpus",
    "own_cgroup",
    "parse_cfs",
    "parse_cpu_max",
    "parse_cpuacct_usage",
    "parse_proc_cgroup",
    "parse_proc_stat",
    "parse_usage_usec",
    "read_usage",
]


@record
class CpuCgroup:
    """The cgroup that bounds this host's CPU, as found under a root."""

    version: int  # 1 or 2
    limit: float | None  # CPUs the quota allows (None: no quota on the way)
    usage_file: str  # its CPU use: cpu.stat (v2) or cpuacct.usage (v1)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup -> {controller: path}; the v2 line's key is ""."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            found[""] = path
            continue
        for name in controllers.split(","):
            if name:
                found[name] = path
    return found


def _number(text: str) -> int | None:
    text = text.strip()
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(text) > 20:
        return None
    return int(text)


def parse_cpu_max(text: str) -> float | None:
    """v2 `cpu.max` -> CPUs ("max 100000" and garbage: no limit)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = _number(parts[0]), _number(parts[1])
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota / period


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` -> CPUs (-1: no limit)."""
    quota, period = _number(quota_text), _number(period_text)
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota / period


def parse_usage_usec(text: str) -> float | None:
    """v2 `cpu.stat` -> CPU seconds used (`usage_usec`)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "usage_usec":
            value = _number(parts[1])
            return None if value is None or value < 0 else value / 1e6
    return None


def parse_cpuacct_usage(text: str) -> float | None:
    """v1 `cpuacct.usage` (nanoseconds) -> CPU seconds."""
    value = _number(text)
    return None if value is None or value < 0 else value / 1e9


def parse_proc_stat(text: str) -> tuple[int, int, int] | None:
    """/proc/PID/stat -> (pid, ppid, clock ticks of it and its reaped children)."""
    head, sep, tail = text.rpartition(")")  # the command name may hold ") "
    fields = tail.split()
    if not sep or len(fields) < 15:
        return None
    numbers = [_number(f) for f in (head.split("(", 1)[0], fields[1], *fields[11:15])]
    if any(n is None for n in numbers):
        return None
    pid, ppid, utime, stime, cutime, cstime = (n or 0 for n in numbers)
    return pid, ppid, utime + stime + cutime + cstime


def _read(path: str, limit: int = 4096) -> str | None:
    try:
        with open(path) as f:
            return f.read(limit)
    except (OSError, UnicodeDecodeError):
        return None


def _chain(base: str, path: str) -> list[str]:
    """base/path, then each parent up to base itself, the existing ones."""
    parts = [p for p in path.split("/") if p]
    dirs = [os.path.join(base, *parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dirs if os.path.isdir(d)]


def _limit_v2(d: str) -> float | None:
    text = _read(os.path.join(d, "cpu.max"))
    return None if text is None else parse_cpu_max(text)


def _limit_v1(d: str) -> float | None:
    quota = _read(os.path.join(d, "cpu.cfs_quota_us"))
    period = _read(os.path.join(d, "cpu.cfs_period_us"))
    return None if quota is None or period is None else parse_cfs(quota, period)


def _bound(
    dirs: list[str], limit_of: Callable[[str], float | None]
) -> tuple[float | None, str | None]:
    """The smallest limit on the chain and the directory that sets it."""
    best: tuple[float | None, str | None] = (None, None)
    for d in dirs:
        limit = limit_of(d)
        if limit is not None and (best[0] is None or limit < best[0]):
            best = (limit, d)
    return best


def find_cpu_cgroup(proc_cgroup: str, root: str = "/sys/fs/cgroup") -> CpuCgroup | None:
    """The daemon's CPU cgroup from /proc/self/cgroup's text, or None."""
    paths = parse_proc_cgroup(proc_cgroup)
    if "cpu" in paths or "cpuacct" in paths:
        return _find_v1(paths, root)
    if "" in paths:
        dirs = _chain(root, paths[""])
        limit, where = _bound(dirs, _limit_v2)
        for d in [where] if where else dirs:
            usage = os.path.join(d, "cpu.stat")
            if _read(usage) is not None:
                return CpuCgroup(2, limit, usage)
    return None


def _find_v1(paths: dict[str, str], root: str) -> CpuCgroup | None:
    def mounts(controller: str) -> list[str]:
        names = ["cpu,cpuacct", "cpuacct,cpu", controller]
        return [os.path.join(root, n) for n in names if os.path.isdir(os.path.join(root, n))]

    limit, where = None, None
    for base in mounts("cpu")[:1]:
        limit, where = _bound(_chain(base, paths.get("cpu", "/")), _limit_v1)
    dirs = [_chain(base, paths.get("cpuacct", "/")) for base in mounts("cpuacct")[:1]]
    if where is not None:  # the limit's own cgroup in the cpuacct hierarchy
        relative = os.path.relpath(where, mounts("cpu")[0])
        dirs = [[os.path.normpath(os.path.join(base, relative)) for base in mounts("cpuacct")]]
    for d in dirs[0] if dirs else []:
        usage = os.path.join(d, "cpuacct.usage")
        if _read(usage) is not None:
            return CpuCgroup(1, limit, usage)
    if where is not None:  # a quota without accounting: sum its processes' times
        return CpuCgroup(1, limit, os.path.join(where, "cgroup.procs"))
    return None


def read_usage(cgroup: CpuCgroup, proc: str = "/proc") -> float | None:
    """CPU seconds the cgroup has used so far (None if unreadable now)."""
    if os.path.basename(cgroup.usage_file) == "cgroup.procs":
        return _procs_usage(os.path.dirname(cgroup.usage_file), proc)
    text = _read(cgroup.usage_file)
    if text is None:
        return None
    return parse_usage_usec(text) if cgroup.version == 2 else parse_cpuacct_usage(text)


def _procs_usage(group: str, proc: str) -> float | None:
    """CPU seconds of the processes in a cgroup and its children (and of
    their reaped children): a v1 `cpu` group with no `cpuacct` group of its
    own, as on machines that mount the two apart. The time of a process
    that ended and was reaped outside the group is lost."""
    ticks, readable = 0, False
    for d, _, _ in os.walk(group):
        text = _read(os.path.join(d, "cgroup.procs"), 1 << 20)
        if text is None:
            continue
        readable = True
        for pid in text.split():
            stat = _read(os.path.join(proc, pid, "stat")) if pid.isdigit() else None
            parsed = None if stat is None else parse_proc_stat(stat)
            ticks += parsed[2] if parsed else 0
    return ticks / os.sysconf("SC_CLK_TCK") if readable else None


def in_container(root: str = "/", environ: dict[str, str] | None = None) -> bool:
    """Docker's /.dockerenv, podman's /run/.containerenv, or $container."""
    env = os.environ if environ is None else environ
    return bool(env.get("container")) or any(
        os.path.exists(os.path.join(root, p)) for p in (".dockerenv", "run/.containerenv")
    )


def machine_cpus() -> int:
    """CPUs this process may run on (its affinity mask: taskset, cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # (not Linux)
        return os.cpu_count() or 1


def own_cgroup(root: str = "/sys/fs/cgroup") -> CpuCgroup | None:
    """This process's CPU cgroup (v1 or v2), or None."""
    try:
        with open("/proc/self/cgroup") as f:
            text = f.read()
    except OSError:
        return None
    return find_cpu_cgroup(text, root)


def effective_cpus(cgroup: CpuCgroup | None = None) -> float:
    """CPUs this process may use: its affinity, capped by a v1 or v2 quota."""
    cgroup = cgroup if cgroup is not None else own_cgroup()
    cpus = float(machine_cpus())
    if cgroup is not None and cgroup.limit is not None:
        cpus = min(cpus, cgroup.limit)
    return cpus


def cpu_slots(cgroup: CpuCgroup | None = None) -> int:
    """Compile slots for `effective_cpus`: a fraction of a CPU rounded up
    (ccfarmd's default --jobs, the wrapper's local slots)."""
    return max(1, math.ceil(effective_cpus(cgroup)))
