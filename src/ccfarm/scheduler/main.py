"""`ccfarm-scheduler`: the host-server, on one TCP port (default 3634)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from ccfarm.config import command_line, load
from ccfarm.errors import ConfigError
from ccfarm.scheduler.config import SchedulerConfig


def parser() -> argparse.ArgumentParser:
    return command_line(
        SchedulerConfig, "ccfarm-scheduler", "ccfarm host-server: gives each compile job a host"
    )


def load_config(argv: Sequence[str] | None = None) -> SchedulerConfig:
    return load(SchedulerConfig, parser(), argv)


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
    from ccfarm.limits import LogRateFilter

    handler.addFilter(LogRateFilter())  # a flood of one kind of line is cut (and counted)
    logging.basicConfig(
        level=config.log_level.upper(),
        handlers=[handler],
        format="%(asctime)s ccfarm-scheduler %(levelname)s %(message)s",
    )
    return asyncio.run(_run(config, hosts_info))


async def _run(config: SchedulerConfig, hosts_info: dict) -> int:  # type: ignore[type-arg]
    import signal

    from ccfarm.scheduler.service import SchedulerService

    _raise_fd_limit()
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


def _raise_fd_limit(most: int = 1 << 16) -> None:
    """Every wrapper job holds a connection while it runs: take the file
    descriptors the hard limit allows (up to `most`); the connection caps
    are set within what there is."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = most if hard == resource.RLIM_INFINITY else min(hard, most)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


if __name__ == "__main__":
    sys.exit(main())
