"""One `ccfarm` command line, run in this process (the wrapper's own, or a
fork server's child): `--help`, `--version`, or a compile job."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

USAGE = """\
usage: ccfarm [COMPILER] [COMPILER ARGS...]
       (or as CC="ccfarm gcc", CMAKE_C_COMPILER_LAUNCHER=ccfarm, or a link named gcc/cc)

Hosts come from CCFARM_SCHEDULER (scheduler leases), CCFARM_HOSTS (ccfarmd
hosts) or DISTCC_HOSTS (distcc syntax). CCFARM_SCHEDULER_TIMEOUT bounds a
scheduler's connect and first answer (2 s), CCFARM_LEASE_WAIT the wait for a
free slot (60 s); a failed host or scheduler is skipped for
CCFARM_BACKOFF_PERIOD (60 s). Every local compile takes one of
--localslots=N (host list; default: one per CPU). With a scheduler, a job
compiles here when a local slot is free and no free host is faster than this
machine (CCFARM_LOCAL_SPEED pins its speed; default: measured once), and a
job waiting for the farm takes a local slot that frees first.
Environment: CCFARM_FALLBACK=0 fails instead of compiling locally after a
remote failure; CCFARM_VERBOSE=1 says in one line per job where it ran and
why; CCFARM_LOG (or DISTCC_LOG) takes the wrapper's messages instead of
stderr; CCFARM_DIR is the state directory (default $DISTCC_DIR or ~/.distcc). Jobs run in a warm
fork server process (one per user, gone after CCFARM_HELPER_IDLE seconds idle,
default 600); CCFARM_HELPER=0 runs each job in its own process instead.
"""


def run_job(argv: list[str], env: Mapping[str, str]) -> int:
    """Run one compile job in this process (the wrapper's or a fork server's child)."""
    if len(argv) == 2 and os.path.basename(argv[0]).startswith("ccfarm"):
        if argv[1] in ("--help", "-h"):
            sys.stdout.write(USAGE)
            return 0
        if argv[1] == "--version":
            from ccfarm import __version__

            sys.stdout.write(f"ccfarm {__version__}\n")
            return 0
    from ccfarm.client.job.invocation import resolve
    from ccfarm.client.job.run import compile_job
    from ccfarm.errors import CcfarmError

    try:
        inv = resolve(argv, env)
    except CcfarmError as exc:
        sys.stderr.write(f"ccfarm: {exc}\n")
        return 101
    return compile_job(inv, env)
