"""One `ccfarm` command line, run in this process (the wrapper's own, or a
fork server's child): `--help`, `--version`, or a compile job."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

USAGE = """\
usage: ccfarm [COMPILER] [COMPILER ARGS...]
       ccfarm --help | --version
       ccfarm -j              jobs to run at once: `make -j$(ccfarm -j)` (distcc's -j)
       ccfarm --show-hosts    the hosts jobs may go to, one host-list entry a line
       (or as CC="ccfarm gcc", CMAKE_C_COMPILER_LAUNCHER=ccfarm, or a link named gcc/cc)

Runs one compile job on a farm host (a scheduler's lease, else a host list),
else here. The object, messages and exit status are the local compiler's.
With CCFARM_SCHEDULER, -j counts the slots of the farm's hosts that take
jobs plus this machine's local slots, and --show-hosts lists those hosts;
else both answer from the host list, as distcc does.

Environment (distcc's DISTCC_* names work where they are shown):
  CCFARM_SCHEDULER=HOST[:PORT][,...]  schedulers to ask for a host first
  CCFARM_HOSTS=LIST         ccfarmd hosts, distcc's syntax (host[:port][/slots])
  DISTCC_HOSTS=LIST         distcc hosts (else ~/.distcc/hosts, /etc/distcc/hosts);
                            localhost/N or --localslots=N: local compiles at once
                            (default: the CPUs it may use, a cgroup's CPU quota
                            counted, as in a container); with a scheduler a
                            job compiles here when a local slot is free and no
                            free host is faster, and a job waiting for the farm
                            takes a local slot that frees first
  CCFARM_SCHEDULER_TIMEOUT=S  a scheduler's connect and first answer (2)
  CCFARM_LEASE_WAIT=S       the wait in the scheduler's queue for a free slot (60)
  CCFARM_CONNECT_TIMEOUT=S  connecting to a host (4)
  CCFARM_IO_TIMEOUT=S       any other network wait (300; DISTCC_IO_TIMEOUT)
  CCFARM_BACKOFF_PERIOD=S   a failed host or scheduler is skipped this long
                            (60; DISTCC_BACKOFF_PERIOD)
  DISTCC_PAUSE_TIME_MSEC=MS  between looks for a free slot when all are taken (1000)
  CCFARM_LOCAL_SPEED=X      this machine's speed for the scheduler's choice
                            between here and a host (default: measured once;
                            0: not told, any free host is taken)
  CCFARM_LOCAL_NICE=N       niceness added to a compile the scheduler keeps here
                            (10; 0: none): preprocessing for the hosts goes first
  CCFARM_LOG=FILE           the wrapper's own messages go there, not to stderr
                            (DISTCC_LOG)
  CCFARM_FALLBACK=0         fail (exit 116) instead of compiling here after a
                            remote failure (DISTCC_FALLBACK)
  CCFARM_VERBOSE=1          say in one line per job where it ran and why
                            (DISTCC_VERBOSE)
  CCFARM_MODE=exact         always ship the sources and headers to ccfarmd hosts
  CCFARM_COMPRESS=lzo       pack LZO bodies (smaller, ~17 MB/s of CPU: for links
                            under ~100 Mbit/s); default off: stored LZO, which
                            any distccd reads, as fast as the link
  CCFARM_SECRET_FILE=FILE   the farm secret (docs/security.md): prove it to the
                            scheduler and to ccfarmd hosts, and check theirs
  CCFARM_TLS_CA=FILE        talk TLS to the scheduler and ccfarmd hosts; their
                            certificates must be signed by this CA and name
                            the address or name dialled (docs/security.md)
  CCFARM_TLS_CERT=FILE      this machine's certificate, for servers that ask for
                            one (with CCFARM_TLS_KEY=FILE, its key)
  CCFARM_TLS_KEY=FILE       the private key of CCFARM_TLS_CERT
  CCFARM_CLIENT_NAME=NAME   who this build is to the scheduler's fairness
                            (default: machine/user)
  CCFARM_DIR=DIR            state directory (default $DISTCC_DIR or ~/.distcc)
  CCFARM_HELPER=0           run each job in its own process, not the fork server
  CCFARM_HELPER_IDLE=S      the fork server's life without jobs (600)
  CCFARM_LAUNCHER_DEBUG=1   the native launcher says which way each job went
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
        if argv[1] in ("-j", "--show-hosts"):
            from ccfarm.client.job.farmsize import answer

            return answer(argv[1], env)
    from ccfarm.client.job.invocation import resolve
    from ccfarm.client.job.run import compile_job
    from ccfarm.errors import CcfarmError

    try:
        inv = resolve(argv, env)
    except CcfarmError as exc:
        sys.stderr.write(f"ccfarm: {exc}\n")
        return 101
    return compile_job(inv, env)
