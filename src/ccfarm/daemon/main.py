"""`ccfarmd`: command line of the compile daemon (a drop-in for distccd)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from ccfarm.config import command_line, load
from ccfarm.daemon.compilers import CompilerAllowList
from ccfarm.daemon.config import DaemonConfig
from ccfarm.errors import ConfigError

if TYPE_CHECKING:
    from ccfarm.daemon.agent import HostAgent
    from ccfarm.daemon.service import DaemonService

EXIT_BAD_ARGUMENTS = 101
EXIT_BIND_FAILED = 102
#: seconds the host agents get to say BYEE, and then to close their connections, at exit
AGENT_GOODBYE = 2.0


def parser() -> argparse.ArgumentParser:
    p = command_line(DaemonConfig, "ccfarmd", "ccfarm compile daemon (speaks the distcc protocol)")
    # distccd's choice between inetd and standalone; ccfarmd is always standalone
    p.add_argument("--daemon", action="store_true", help="run as a standalone daemon (always)")
    return p


def load_config(argv: Sequence[str] | None = None) -> DaemonConfig:
    config = load(DaemonConfig, parser(), argv)
    if not 1 <= config.jobs <= 1000:
        raise ConfigError("--jobs must be between 1 and 1000")
    return config


def _setup_logging(config: DaemonConfig) -> None:
    level = {"notice": "INFO"}.get(config.log_level, config.log_level.upper())
    handlers: list[logging.Handler] = []
    if config.log_file:
        handlers.append(logging.FileHandler(config.log_file))
    if config.log_stderr or not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    fmt = "%(asctime)s ccfarmd[%(process)d] %(levelname)s %(message)s"
    from ccfarm.limits import LogRateFilter

    for handler in handlers:  # a flood of one kind of line is cut (and counted)
        handler.addFilter(LogRateFilter())
    logging.basicConfig(level=level, handlers=handlers, format=fmt)


def _detach() -> None:
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"ccfarmd: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    search = config.compiler_path or os.environ.get("DISTCCD_PATH") or os.environ.get("PATH", "")
    compilers = CompilerAllowList.discover(
        [d for d in search.split(":") if d],
        extra=config.allow_compiler,
        only=config.compilers or None,
    )
    if config.detach:
        _detach()
    _setup_logging(config)
    if not config.allow:
        logging.getLogger("ccfarmd").warning("no --allow given: every client will be refused")
    return asyncio.run(_run(config, compilers))


async def _run(config: DaemonConfig, compilers: CompilerAllowList) -> int:
    from ccfarm.daemon.service import DaemonService

    service = DaemonService(config, compilers)
    try:
        await service.start()
    except OSError as exc:
        logging.getLogger("ccfarmd").error(
            "cannot listen on %s:%d: %s", config.listen, config.port, exc
        )
        return EXIT_BIND_FAILED
    agent, runs = await _agent_tasks(config, compilers, service)
    agents = [asyncio.ensure_future(run) for run in runs]
    if config.pid_file:
        tmp = f"{config.pid_file}.{os.getpid()}"
        with open(tmp, "w") as f:  # written whole, then renamed: never seen empty
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, config.pid_file)
    try:
        await service.serve_until_drained()
    finally:
        service.drain()  # (done already, unless something failed)
        # each agent says BYEE when the drain begins; its connection closing
        # now is the host leaving its scheduler
        if agent is not None:
            await agent.said_goodbye(AGENT_GOODBYE)
        for task in agents:
            task.cancel()
        if agents:
            await asyncio.wait(agents, timeout=AGENT_GOODBYE)
        if config.pid_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(config.pid_file)
    return 0


async def _agent_tasks(
    config: DaemonConfig, compilers: CompilerAllowList, service: DaemonService
) -> tuple[HostAgent | None, list[Coroutine[Any, Any, None]]]:
    """The host agent and one reporting task per --scheduler (after probing
    speed and compilers)."""
    if not config.scheduler:
        return None, []
    from ccfarm.addresses import SCHEDULER_PORT, parse_addresses
    from ccfarm.daemon.activity import desktop_in_use, parse_source
    from ccfarm.daemon.agent import HostAgent, RefinedSpeed
    from ccfarm.daemon.probe import children_cpu, compiler_identities, effective_cpus, measure_speed

    loop = asyncio.get_running_loop()
    idents = await loop.run_in_executor(None, compiler_identities, compilers)
    if config.speed:
        pinned = config.speed

        def speed() -> float:
            return pinned

    else:  # measured at start, then refined from the jobs this host runs
        estimate = await loop.run_in_executor(None, measure_speed)
        speed = RefinedSpeed(estimate, lambda: service.compile_seconds, children_cpu)
    source = parse_source(config.desktop_activity)
    agent = HostAgent(
        port=service.port,
        listen=config.listen,
        advertise=config.advertise,
        slots=config.jobs,
        cpus=effective_cpus(),
        speed=speed,
        compilers=tuple(idents),
        running=lambda: service.running,
        desktop=lambda: desktop_in_use(source, config.desktop_idle),
        heartbeat=config.heartbeat,
        leaving=service.draining,
    )
    logging.getLogger("ccfarmd").info(
        "host agent: speed %.3g%s, %d compiler(s), schedulers %s",
        speed(),
        " (pinned)" if config.speed else "",
        len(idents),
        ", ".join(config.scheduler),
    )
    return agent, [agent.run(s) for s in parse_addresses(config.scheduler, SCHEDULER_PORT)]


if __name__ == "__main__":
    sys.exit(main())
