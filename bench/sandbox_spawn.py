"""The job sandbox's start, alone: from "command sent" to the compiler's exit.

    python bench/sandbox_spawn.py [-n 40] [--program /bin/true]

Runs `program` (default `true`) through ccfarmd's own code (`daemon/process`),
interleaved, in a process grown to about the daemon's size (~50 MB):

* warm: a room started beforehand (a shell waiting in its sandbox), then
  timed from sending its script (`Room.run`) to the exit;
* cold: a fresh sandbox (`Confined`: bwrap, limits set by prlimit);
* cold, preexec_fn: a fresh sandbox started as before the warm pool
  (limits set in a `preexec_fn`, so Python forks instead of vfork);
* and the same three without the sandbox (`--sandbox=off`).

Started as root, it first becomes `nobody` (as ccfarmd does), so bwrap
makes an unprivileged user namespace. Prints medians in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from ccfarm.daemon.job import CompilePlan  # noqa: E402
from ccfarm.daemon.process import Confined, _limit_child, find_sandbox  # noqa: E402
from ccfarm.daemon.sandbox import JobLimits  # noqa: E402
from ccfarm.daemon.user import drop_root  # noqa: E402

#: live objects that make this process about as big as a running ccfarmd
BALLAST = [bytes(1000) + str(i).encode() for i in range(20000)] + [
    list(range(40)) for _ in range(40000)
]


async def _old(argv: list[str], cwd: str, env: dict[str, str], limits: JobLimits) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=functools.partial(_limit_child, 0, limits.rlimits()),
    )
    await proc.communicate()


async def measure(n: int, program: str) -> dict[str, list[float]]:
    found = find_sandbox()
    if isinstance(found, str):
        sys.exit(f"no sandbox: {found}")
    limits = JobLimits()
    job = tempfile.mkdtemp(prefix="ccfarmd-")
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": job}
    plan = CompilePlan(program, (program,), job, env, 1, None, None, job_dir=job)
    times: dict[str, list[float]] = {}
    for kind in ("sandbox", "no sandbox"):
        for name in ("warm", "cold", "cold, preexec_fn"):
            times[f"{kind}: {name}"] = []
    for _ in range(n):
        for sandbox in (found, None):
            kind = "sandbox" if sandbox else "no sandbox"
            confined = Confined(limits, sandbox)
            room = await confined.room(job, (), env, 0)
            await asyncio.sleep(0.05)  # (it gets ready meanwhile, as in the pool)
            began = time.perf_counter()
            proc = await room.run(plan, 0)
            assert proc is not None
            await proc.communicate()
            times[f"{kind}: warm"].append(time.perf_counter() - began)

            began = time.perf_counter()
            await (await confined(plan, 0)).communicate()
            times[f"{kind}: cold"].append(time.perf_counter() - began)

            argv = [program]
            if sandbox is not None:
                argv = sandbox.command(program, [], job_dir=job, cwd=job)
            began = time.perf_counter()
            await _old(argv, job, env, limits)
            times[f"{kind}: cold, preexec_fn"].append(time.perf_counter() - began)
    os.rmdir(job)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-n", type=int, default=40)
    p.add_argument("--program", default="/bin/true")
    args = p.parse_args()
    user = drop_root("nobody") if os.geteuid() == 0 else "(as started)"
    times = asyncio.run(measure(args.n, args.program))
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    print(f"{args.program} from 'command sent' to exit, n={args.n} each, interleaved;")
    print(f"user {user}, this process {rss} MiB resident ({len(BALLAST)} ballast objects)")
    for name, values in times.items():
        print(f"  {name:<28} median {statistics.median(values) * 1000:6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
