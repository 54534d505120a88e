"""`ccfarm`: the compiler wrapper's entry point (kept tiny for fast start-up)."""

from __future__ import annotations

import os
import sys

from ccfarm.client.forkserver import forward


def main() -> int:
    argv = sys.argv
    status = None
    if forward.enabled(os.environb):
        name = forward.socket_name(os.environ)
        status = forward.forward_job(argv, name)
        if status == forward.ABSENT:
            forward.start_server(name)  # for the jobs after this one
            status = None
            from ccfarm.client.forkserver.launcher import first_use

            first_use(os.environ, argv[0])  # once per install: the native `ccfarm`
    if status is None:
        from ccfarm.client.job.command import run_job

        status = run_job(argv, os.environ)
    # Skip the interpreter's teardown: this process has nothing left to clean.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    # `python -m ccfarm.client.main` is the wrapper, not a masquerade; the
    # native launcher says what it was called as (a masquerade link, maybe)
    sys.argv[0] = os.environ.pop("CCFARM_ARGV0", "ccfarm")
    sys.exit(main())
