"""`ccfarm-ctl`: look at and steer a scheduler.

ccfarm-ctl --scheduler HOST[:PORT] hosts [--json]
ccfarm-ctl --scheduler HOST[:PORT] jobs [--json]
ccfarm-ctl --scheduler HOST[:PORT] disable HOST     (drain: no new jobs)
ccfarm-ctl --scheduler HOST[:PORT] enable HOST

With a farm secret (--secret-file, or $CCFARM_SECRET_FILE) the scheduler
must prove it knows it, and so must ccfarm-ctl; a scheduler that has one
answers nothing without it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from ccfarm.addresses import SCHEDULER_PORT, parse_addresses
from ccfarm.client.job.net import read_message
from ccfarm.config import add_secret_file
from ccfarm.control import messages as m
from ccfarm.control.codec import Message, encode, hello
from ccfarm.errors import ConfigError, RemoteProtocolError
from ccfarm.secretfile import secret_from

HOST_COLUMNS = (
    "host", "tier", "speed", "claimed", "observed", "used", "offered", "slots", "load", "desktop",
    "state",
)  # fmt: skip
JOB_COLUMNS = ("state", "lease", "host", "client", "seconds", "compiler")


def _ask(address: tuple[str, int], request: bytes, secret: bytes | None = None) -> Message:
    with socket.create_connection(address, timeout=10) as sock:
        if secret is None:
            sock.sendall(hello() + request)
            return read_message(sock)
        from ccfarm.client.job.net import authenticate
        from ccfarm.control.codec import MessageParser
        from ccfarm.protocol.auth import CONTROL

        try:
            proof, rest = authenticate(sock, secret, CONTROL, hello())
        except RemoteProtocolError as exc:  # (one line, not a traceback)
            raise SystemExit(f"ccfarm-ctl: {address[0]}:{address[1]}: {exc}") from None
        sock.sendall(proof + request)
        parser = MessageParser(expect_hello=False)
        parser.receive_data(rest)
        return read_message(sock, parser)


def _table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    widths = {c: max([len(c), *(len(r.get(c, "")) for r in rows)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="ccfarm-ctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scheduler", default=os.environ.get("CCFARM_SCHEDULER", "localhost"))
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("command", choices=["hosts", "jobs", "disable", "enable"])
    p.add_argument("host", nargs="?")
    add_secret_file(p)
    args = p.parse_args(argv)
    try:
        secret = secret_from(args.secret_file)
    except ConfigError as exc:
        print(f"ccfarm-ctl: {exc}", file=sys.stderr)
        return 101
    (address,) = parse_addresses([args.scheduler.split(",")[0]], SCHEDULER_PORT)
    if args.command in ("disable", "enable"):
        if not args.host:
            p.error(f"{args.command} needs a HOST")
        kind = m.DISABLE if args.command == "disable" else m.ENABLE
        reply = _ask(address, m.encode_host_name(kind, args.host), secret)
        if reply.kind != m.OK:
            print(f"ccfarm-ctl: {reply.first().get('reason', 'failed')}", file=sys.stderr)
            return 1
        print(
            json.dumps({"host": args.host, "disabled": kind == m.DISABLE})
            if args.json
            else f"{args.host}: {args.command}d"
        )
        return 0
    query, columns = (
        (m.QUERY_HOSTS, HOST_COLUMNS) if args.command == "hosts" else (m.QUERY_JOBS, JOB_COLUMNS)
    )
    reply = _ask(address, encode(query), secret)
    rows = [dict(r) for r in reply.records]
    for row, record in zip(rows, reply.records, strict=True):
        compilers = [v for k, v in record if k == "compiler"]
        if compilers and args.command == "hosts":
            row["compiler"] = "; ".join(compilers)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
