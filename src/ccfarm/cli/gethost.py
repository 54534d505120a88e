"""`ccfarm-gethost`: the classic `CC = gethost distcc gcc` style.

    make CC="ccfarm-gethost distcc gcc"
    make CC="ccfarm-gethost --secret-file FILE distcc gcc"
    make CC="ccfarm-gethost --tls-ca CA.pem distcc gcc"

Gets a lease from the scheduler (CCFARM_SCHEDULER), runs the rest of its
command line with DISTCC_HOSTS set to the granted host, releases the lease
when the command exits and passes its exit status through. With no
scheduler reachable the command runs with DISTCC_HOSTS as it was; when the
scheduler has no host in time, with DISTCC_HOSTS=localhost (a local compile).

As the `ccfarm` wrapper, it bounds a scheduler's connect and first answer by
CCFARM_SCHEDULER_TIMEOUT (2 s) and the wait for a free slot by
CCFARM_LEASE_WAIT (60 s), and shares its marks of failed schedulers (in
CCFARM_DIR): one that failed is skipped for CCFARM_BACKOFF_PERIOD (60 s).

With a farm secret (--secret-file FILE before the command, or
CCFARM_SECRET_FILE) the scheduler must prove it knows it before a lease is
asked for. The distcc client itself cannot authenticate: the host must take
plain distcc requests from this machine's address (ccfarmd's --allow, and
not --no-distcc-clients).

With --tls-ca FILE (or CCFARM_TLS_CA) the lease is asked for over TLS, the
scheduler's certificate checked against that CA and the name or address in
CCFARM_SCHEDULER; --tls-cert FILE and --tls-key FILE (CCFARM_TLS_CERT,
CCFARM_TLS_KEY) present this machine's own. The compile itself goes to the
host in plain distcc: the host must take plain distcc requests without TLS
(not --tls-require with --no-distcc-clients).
"""

from __future__ import annotations

import os
import subprocess
import sys

MYPY = False
if MYPY:
    from ccfarm.model import CompilerIdentity

_COMPILERS = ("gcc", "g++", "cc", "c++", "clang", "clang++")


def _compiler_of(argv: list[str]) -> CompilerIdentity | None:
    """The compiler identity of the first compiler named on the command line."""
    from ccfarm.client.hosts.slots import state_dir
    from ccfarm.client.job.compilerinfo import compiler_info
    from ccfarm.client.job.invocation import find_compiler

    for arg in argv[1:]:
        base = os.path.basename(arg)
        if base.startswith(_COMPILERS) and not base.startswith("ccfarm"):
            path = find_compiler(arg, os.environ.get("PATH", os.defpath))
            if path is None:
                return None
            info = compiler_info(path, "c", [], os.path.join(state_dir(os.environ), "cache"))
            return info.identity if info.identity.known else None
    return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or "")
        return 0 if args else 101
    if args == ["--version"]:
        from ccfarm import __version__

        sys.stdout.write(f"ccfarm-gethost {__version__}\n")
        return 0
    from ccfarm import tls
    from ccfarm.errors import ConfigError
    from ccfarm.secretfile import ENVIRONMENT, secret_from

    files = {
        "--secret-file": os.environ.get(ENVIRONMENT, ""),
        "--tls-cert": os.environ.get(tls.CERT_ENV, ""),
        "--tls-key": os.environ.get(tls.KEY_ENV, ""),
        "--tls-ca": os.environ.get(tls.CA_ENV, ""),
    }
    while args and args[0].partition("=")[0] in files:
        flag = args.pop(0)
        name = flag.partition("=")[0]
        if "=" in flag:
            files[name] = flag.partition("=")[2]
        elif args:
            files[name] = args.pop(0)
        else:
            sys.stderr.write(f"ccfarm-gethost: {name} needs a FILE\n")
            return 101
    if not args:
        sys.stderr.write("ccfarm-gethost: no command given\n")
        return 101
    try:
        secret = secret_from(files["--secret-file"])
        context = tls.client_from(
            tls.TLSFiles(files["--tls-cert"], files["--tls-key"], files["--tls-ca"])
        )
    except ConfigError as exc:
        sys.stderr.write(f"ccfarm-gethost: {exc}\n")
        return 101
    env = dict(os.environ)
    lease = None
    text = env.get("CCFARM_SCHEDULER", "")
    if text:
        from ccfarm.client.hosts.statedir import state_dir
        from ccfarm.client.job.lease import NoLease, SchedulerMarks, parse_schedulers, request_lease
        from ccfarm.client.job.plan import read_settings

        settings = read_settings(env)  # the wrapper's timeouts, waits and backoff period
        marks = SchedulerMarks(state_dir(env), settings.backoff)
        schedulers = marks.to_ask(parse_schedulers(text))
        if isinstance(schedulers, list):  # else each failed lately: DISTCC_HOSTS as it is
            try:
                lease = request_lease(
                    schedulers,
                    _compiler_of(args),
                    connect_timeout=settings.scheduler_timeout,
                    wait=settings.lease_wait,
                    failed=marks.failed,
                    answered=marks.answered,
                    secret=secret,
                    tls=context,
                )
            except NoLease as exc:
                if exc.answered:
                    env["DISTCC_HOSTS"] = "localhost"
    if lease is not None:
        g = lease.grant
        env["DISTCC_HOSTS"] = f"{g.address}:{g.port}/1,lzo"
    try:
        return subprocess.call(args, env=env)
    except OSError as exc:
        sys.stderr.write(f"ccfarm-gethost: cannot run {args[0]}: {exc.strerror}\n")
        return 127
    finally:
        if lease is not None:
            lease.release()


if __name__ == "__main__":
    sys.exit(main())
