"""`ccfarm-ctl`: look at and steer a scheduler.

ccfarm-ctl --scheduler HOST[:PORT] hosts [--json]
ccfarm-ctl --scheduler HOST[:PORT] jobs [--json]
ccfarm-ctl --scheduler HOST[:PORT] disable HOST     (drain: no new jobs)
ccfarm-ctl --scheduler HOST[:PORT] enable HOST

HOST may be any unique prefix of a host's name (build1 for build1:3632).

With a farm secret (--secret-file, or $CCFARM_SECRET_FILE) the scheduler
must prove it knows it, and so must ccfarm-ctl; a scheduler that has one
answers nothing without it.

With --tls-ca (or $CCFARM_TLS_CA) ccfarm-ctl connects with TLS and checks
the scheduler's certificate against that CA and the name or address given
to --scheduler; --tls-cert and --tls-key present ccfarm-ctl's own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ccfarm import __version__
from ccfarm.addresses import SCHEDULER_PORT, parse_addresses
from ccfarm.cli.ctlview import (
    HOST_COLUMNS,
    JOB_COLUMNS,
    HostNameError,
    Value,
    match_host,
    table,
    typed_row,
)
from ccfarm.client.job import ask
from ccfarm.client.job.ask import Auth
from ccfarm.config import add_secret_file, add_tls
from ccfarm.control import messages as m
from ccfarm.control.codec import Message
from ccfarm.errors import ConfigError
from ccfarm.secretfile import secret_from

#: exit statuses, one per way of failing (2 is argparse's usage error)
EXIT_REFUSED = 1  # the scheduler answered FAIL
EXIT_USAGE = 2
EXIT_BAD_ADDRESS = 3  # --scheduler cannot be parsed or resolved
EXIT_NO_SCHEDULER = 4  # nothing listening, unreachable, or no answer in time
EXIT_BAD_ANSWER = 5  # the answer was not a control message
EXIT_NO_SUCH_HOST = 6  # no host, or several, match the name given
EXIT_BROKEN_PIPE = 141  # the reader went away (`| head`), as a shell reports SIGPIPE
TIMEOUT = 10.0


class CtlError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


_STATUS = {
    ask.BAD_ADDRESS: EXIT_BAD_ADDRESS,
    ask.NO_SCHEDULER: EXIT_NO_SCHEDULER,
    ask.REFUSED: EXIT_REFUSED,
    ask.BAD_ANSWER: EXIT_BAD_ANSWER,
}


@contextmanager
def _answered() -> Iterator[None]:
    """A question the scheduler left unanswered is a CtlError with its exit status."""
    try:
        yield
    except ask.Unanswered as exc:
        raise CtlError(str(exc), _STATUS[exc.kind]) from None


def _ask(address: tuple[str, int], request: bytes, auth: Auth) -> Message:
    with _answered():
        return ask.ask(address, request, auth, TIMEOUT)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ccfarm-ctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"ccfarm-ctl {__version__}")
    p.add_argument(
        "--scheduler",
        default=os.environ.get("CCFARM_SCHEDULER", "localhost"),
        metavar="HOST[:PORT]",
        help="the scheduler to ask; of a list, the first (default: $CCFARM_SCHEDULER, else"
        f" localhost; port {SCHEDULER_PORT})",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("command", choices=["hosts", "jobs", "disable", "enable"])
    p.add_argument("host", nargs="?", help="for disable and enable: a host's name or its prefix")
    add_secret_file(p)
    add_tls(p)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command in ("disable", "enable") and not args.host:
        p.error(f"{args.command} needs a HOST")
    try:
        secret = secret_from(args.secret_file)
        from ccfarm.tls import TLSFiles, client_from

        context = client_from(TLSFiles(args.tls_cert, args.tls_key, args.tls_ca))
    except ConfigError as exc:
        return _fail(str(exc), 101)
    try:
        found = parse_addresses([args.scheduler], SCHEDULER_PORT)
        if not found:
            raise ConfigError("no scheduler given")
        text = _run(args, found[0], (secret, context))
    except ConfigError as exc:
        return _fail(f"--scheduler: {exc}", EXIT_BAD_ADDRESS)
    except (CtlError, HostNameError) as exc:
        return _fail(str(exc), getattr(exc, "status", EXIT_NO_SUCH_HOST))
    return _print(text)


def _run(args: argparse.Namespace, address: tuple[str, int], auth: Auth) -> str:
    if args.command in ("disable", "enable"):
        hosts = [str(row["host"]) for row in _rows(address, m.QUERY_HOSTS, True, auth)]
        host = match_host(args.host, hosts)
        kind = m.DISABLE if args.command == "disable" else m.ENABLE
        reply = _ask(address, m.encode_host_name(kind, host), auth)
        if reply.kind != m.OK:
            raise CtlError(reply.first().get("reason", "failed"), EXIT_REFUSED)
        if args.json:
            return json.dumps({"host": host, "disabled": kind == m.DISABLE})
        return f"{host}: {args.command}d"
    hosts = args.command == "hosts"
    query, columns = (m.QUERY_HOSTS, HOST_COLUMNS) if hosts else (m.QUERY_JOBS, JOB_COLUMNS)
    rows = _rows(address, query, hosts, auth)
    return json.dumps(rows, indent=2) if args.json else table(rows, columns)


def _rows(address: tuple[str, int], query: str, lists: bool, auth: Auth) -> list[dict[str, Value]]:
    with _answered():
        found = ask.records(address, query, auth, TIMEOUT)
    return [typed_row(record, lists=lists) for record in found]


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"ccfarm-ctl: {message}\n")
    return status


def _print(text: str) -> int:
    """Write the answer; a reader that went away (`| head`) is no error to report."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # the interpreter's own flush at exit would fail again: point stdout at nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return 0


if __name__ == "__main__":
    sys.exit(main())
