"""`ccfarm-scheduler`: the host-server, on one TCP port (default 3634)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from ccfarm import __version__
from ccfarm.config import build, load_toml
from ccfarm.errors import ConfigError
from ccfarm.scheduler.config import SchedulerConfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ccfarm-scheduler", description="ccfarm host-server: gives each compile job a host"
    )
    p.add_argument("--version", action="version", version=f"ccfarm-scheduler {__version__}")
    p.add_argument("--config", metavar="FILE", help="TOML file ([ccfarm-scheduler] table)")
    p.add_argument("--port", type=int, help="TCP port (default 3634)")
    p.add_argument("--listen", metavar="ADDR", help="address to bind (default all)")
    p.add_argument(
        "--hosts-info",
        metavar="FILE",
        help="DMUCS hosts-info file (name cpus power) pinning speeds",
    )
    p.add_argument("--tier-ratio", type=float, help="speed factor within one tier (1.25)")
    p.add_argument("--load-low", type=float, help="external load per CPU for all slots (0.3)")
    p.add_argument("--load-high", type=float, help="external load per CPU for no slots (1.0)")
    p.add_argument("--desktop-slots", type=int, help="slots while a desktop is in use (0)")
    p.add_argument("--host-timeout", type=float, help="drop hosts silent this long (15 s)")
    p.add_argument("--lease-timeout", type=float, help="revoke leases older than this (600 s)")
    p.add_argument("--max-wait", type=float, help="longest wait for a free host (60 s)")
    p.add_argument(
        "--no-prefer-fast",
        dest="prefer_fast",
        action="store_const",
        const=False,
        help="always use a free slot, however slow its host",
    )
    p.add_argument(
        "--patience",
        type=float,
        help="longest wait for a faster host while a slow one is free (5 s)",
    )
    p.add_argument(
        "--usage-half-life",
        type=float,
        help="seconds for a client's past farm use to count half as much (60)",
    )
    p.add_argument(
        "--express",
        action="store_const",
        const=True,
        help="express leases: a light client's job beyond a host's slots, run first there",
    )
    p.add_argument(
        "--express-min-cost",
        type=float,
        help="express leases only for jobs this costly relative to the average (1)",
    )
    p.add_argument("--log-file", metavar="FILE")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    return p


def load_config(argv: Sequence[str] | None = None) -> SchedulerConfig:
    args = parser().parse_args(argv)
    values = load_toml(args.config, "ccfarm-scheduler") if args.config else {}
    return build(SchedulerConfig, args, values)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
        hosts_info = {}
        if config.hosts_info:
            from ccfarm.scheduler.hostsinfo import parse_hosts_info

            with open(config.hosts_info) as f:
                hosts_info = parse_hosts_info(f.read())
    except (ConfigError, OSError) as exc:
        print(f"ccfarm-scheduler: {exc}", file=sys.stderr)
        return 101
    handler: logging.Handler = (
        logging.FileHandler(config.log_file)
        if config.log_file
        else logging.StreamHandler(sys.stderr)
    )
    logging.basicConfig(
        level=config.log_level.upper(),
        handlers=[handler],
        format="%(asctime)s ccfarm-scheduler %(levelname)s %(message)s",
    )
    return asyncio.run(_run(config, hosts_info))


async def _run(config: SchedulerConfig, hosts_info: dict) -> int:  # type: ignore[type-arg]
    import signal

    from ccfarm.scheduler.service import SchedulerService

    service = SchedulerService(config, hosts_info)
    try:
        await service.start()
    except OSError as exc:
        logging.getLogger("ccfarm-scheduler").error("cannot listen: %s", exc)
        return 102
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
