"""`ccfarmd`: command line of the compile daemon (a drop-in for distccd)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from ccfarm.config import command_line, load
from ccfarm.daemon.compilers import CompilerAllowList
from ccfarm.daemon.config import PRIVATE_NETWORKS, DaemonConfig
from ccfarm.daemonize import (
    EXIT_STARTUP_FAILED,
    Launch,
    StartupError,
    listening_socket,
    reopen_logs,
    setup_logging,
)
from ccfarm.errors import ConfigError

if TYPE_CHECKING:
    import ssl

    from ccfarm.daemon.agent import HostAgent
    from ccfarm.daemon.service import DaemonService
    from ccfarm.daemon.speedmemory import SpeedMemory

EXIT_BAD_ARGUMENTS = 101
EXIT_SETUID_FAILED = 112  # distccd's code when it could not become its user
EXIT_NO_SANDBOX = 100  # --sandbox=require, and no sandbox works here
#: seconds the host agents get to say BYEE, and then to close their connections, at exit
AGENT_GOODBYE = 2.0


class _Refused(argparse.Action):
    """A distccd flag ccfarmd does not implement: one line, distccd's exit status."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parser.exit(EXIT_BAD_ARGUMENTS, f"{parser.prog}: {self.help}\n")


def parser() -> argparse.ArgumentParser:
    p = command_line(DaemonConfig, "ccfarmd", "ccfarm compile daemon (speaks the distcc protocol)")
    # distccd's choice between inetd and standalone; ccfarmd is always standalone
    p.add_argument("--daemon", action="store_true", help="run as a standalone daemon (always)")
    for flag, why in REFUSED_FLAGS.items():
        p.add_argument(flag, nargs=0, action=_Refused, help=why)
    return p


#: distccd's flags ccfarmd refuses, and why (exit status 101, as distccd's
#: own for an option it was built without)
REFUSED_FLAGS = {
    "--zeroconf": "--zeroconf is not supported: ccfarmd hosts join a ccfarm-scheduler"
    " (--scheduler) instead of announcing themselves over mDNS",
    "--inetd": "--inetd is not supported: ccfarmd runs only as a standalone daemon"
    " (under systemd: --no-detach)",
}


def load_config(argv: Sequence[str] | None = None) -> DaemonConfig:
    config = load(DaemonConfig, parser(), argv)
    if not 1 <= config.jobs <= 1000:
        raise ConfigError("--jobs must be between 1 and 1000")
    from ccfarm.addresses import SCHEDULER_PORT, parse_addresses
    from ccfarm.daemon.access import AccessList

    parse_addresses(config.scheduler, SCHEDULER_PORT)  # a bad one is a ConfigError now
    if config.allow_private:
        config = dataclasses.replace(config, allow=config.allow + PRIVATE_NETWORKS)
    AccessList.parse(config.allow)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
        from ccfarm.secretfile import secret_from

        secret = secret_from(config.secret_file)
        from ccfarm import tls

        tls_files = tls.TLSFiles(config.tls_cert, config.tls_key, config.tls_ca)
        # the port's, and the host agent's towards schedulers (with the CA);
        # read now, while the files are readable (before root is given up)
        tls_context = tls.server_from(tls_files, config.tls_require)
        agent_tls = tls.client_context(tls_files) if config.tls_ca else None
    except ConfigError as exc:
        print(f"ccfarmd: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    search = config.compiler_path or os.environ.get("DISTCCD_PATH") or os.environ.get("PATH", "")
    compilers = CompilerAllowList.discover(
        [d for d in search.split(":") if d],
        extra=config.allow_compiler,
        only=config.compilers or None,
    )
    launch = Launch("ccfarmd")
    # listening starts before the event loop's handler: a SIGHUP meanwhile
    # (logrotate) must not end the daemon
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    level = {"notice": "INFO"}.get(config.log_level, config.log_level.upper())
    try:  # everything that can fail is done before detaching, in the operator's sight
        sockets = [listening_socket(config.listen, config.port, 1024)]
        if config.stats:
            sockets.append(listening_socket(config.listen, config.stats_port, 64))
        setup_logging(
            "ccfarmd",
            level,
            log_file=config.log_file,
            also_stderr=config.log_stderr,
            detached=config.detach,
        )
    except StartupError as exc:
        print(f"ccfarmd: {exc}", file=sys.stderr)
        return exc.status
    if not config.allow:
        refused = "no --allow given: every client will be refused"
        if not _logs_to_stderr():  # said where the operator looks, not only in the log
            print(f"ccfarmd: warning: {refused}", file=sys.stderr)
        logging.getLogger("ccfarmd").warning(refused)
    if secret is not None and config.distcc_clients:
        logging.getLogger("ccfarmd").warning(
            "farm secret set, and plain distcc requests from --allow networks still run"
            " unauthenticated (--no-distcc-clients refuses them)"
        )
    if config.detach:
        launch.detach()
    return asyncio.run(_run(config, compilers, sockets, launch, secret, (tls_context, agent_tls)))


def _logs_to_stderr() -> bool:
    return any(getattr(h, "stream", None) is sys.stderr for h in logging.getLogger().handlers)


async def _run(
    config: DaemonConfig,
    compilers: CompilerAllowList,
    sockets: list[socket.socket],
    launch: Launch,
    secret: bytes | None = None,
    contexts: tuple[ssl.SSLContext | None, ssl.SSLContext | None] = (None, None),
) -> int:
    """`contexts`: the port's TLS and the host agent's (None: no TLS)."""
    from ccfarm.daemon.service import DaemonService

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reopen_logs)
    if config.pid_file:  # before anything runs: a failure leaves nothing to undo
        tmp = f"{config.pid_file}.{os.getpid()}"
        try:
            with open(tmp, "w") as f:  # written whole, then renamed: never seen empty
                f.write(f"{os.getpid()}\n")
            os.replace(tmp, config.pid_file)
        except OSError as exc:
            message = f"cannot write pid file {config.pid_file}: {exc.strerror}"
            logging.getLogger("ccfarmd").error("%s", message)
            for sock in sockets:
                sock.close()
            launch.failed(message, EXIT_STARTUP_FAILED)
            return EXIT_STARTUP_FAILED
    service = DaemonService(config, compilers, secret=secret, tls_context=contexts[0])
    await service.start(sock=sockets[0])
    memory = _speed_memory(config)  # opened while root may write the state directory
    # no job is served before this returns: nothing here awaits
    status = _confine(config, service)
    if status:
        _remove_pid_file(config)
        launch.failed("could not start (see the log)", status)
        return status
    stats = await _stats_server(service, sockets[1]) if len(sockets) > 1 else None
    for sig in (signal.SIGTERM, signal.SIGINT):  # from the moment it says ready
        asyncio.get_running_loop().add_signal_handler(sig, service.drain)
    launch.ready(f"{config.jobs} job slots")  # it serves jobs; the agents join as they can
    agent, runs = await _agent_tasks(config, compilers, service, secret, contexts[1], memory)
    agents = [asyncio.ensure_future(run) for run in runs]
    try:
        await service.serve_until_drained(on_drain=launch.stopping)
    finally:
        service.drain()  # (done already, unless something failed)
        if stats is not None:
            stats.close()
        # each agent says BYEE when the drain begins; its connection closing
        # now is the host leaving its scheduler
        if agent is not None:
            await agent.said_goodbye(AGENT_GOODBYE)
        for task in agents:
            task.cancel()
        if agents:
            await asyncio.wait(agents, timeout=AGENT_GOODBYE)
        _remove_pid_file(config)
    return 0


def _speed_memory(config: DaemonConfig) -> SpeedMemory | None:
    """Where the speed probe is kept, when the host agent will probe."""
    if not config.scheduler or config.speed or config.state_dir == "none":
        return None
    from ccfarm.daemon.speedmemory import SpeedMemory, default_state_dir

    return SpeedMemory.open(config.state_dir or default_state_dir(os.environ, os.geteuid()))


def _remove_pid_file(config: DaemonConfig) -> None:
    if config.pid_file:
        # (a daemon that gave up root may not remove it from a root-owned directory)
        with contextlib.suppress(OSError):
            os.unlink(config.pid_file)


#: imported when first used, after root is given up, when a Python whose library
#: only root may read (one under root's home) can no longer import them
_USED_LATER = ("concurrent.futures.thread",)  # asyncio's default executor
_AGENT_MODULES = (
    "ccfarm.addresses",
    "ccfarm.daemon.activity",
    "ccfarm.daemon.agent",
    "ccfarm.daemon.probe",
    "ccfarm.daemon.speedmemory",
)


def _import_before_giving_up_root(config: DaemonConfig) -> None:
    import importlib

    for name in (*_USED_LATER, *(_AGENT_MODULES if config.scheduler else ())):
        importlib.import_module(name)


def _confine(config: DaemonConfig, service: DaemonService) -> int:
    """Give up root, find the job sandbox and run compilers in it; an exit status
    if the daemon cannot start, else 0."""
    from ccfarm.daemon.process import Confined, find_sandbox, job_directories_usable
    from ccfarm.daemon.sandbox import JobLimits
    from ccfarm.daemon.user import drop_root

    log = logging.getLogger("ccfarmd")
    started_as_root = os.geteuid() == 0
    if started_as_root:
        _import_before_giving_up_root(config)
    try:
        user = drop_root(config.user)
    except (ConfigError, OSError) as exc:
        log.error("cannot run as an unprivileged user: %s", exc)
        return EXIT_SETUID_FAILED
    if config.user and not started_as_root and config.user != user:
        log.warning("--user %s ignored: not started as root, running as %s", config.user, user)
    if not job_directories_usable(config.tmpdir):
        where = config.tmpdir or "the temporary directory"
        log.error("user %s cannot make job directories in %s", user, where)
        return EXIT_SETUID_FAILED
    limits = JobLimits(
        cpu_seconds=config.limit_cpu,
        memory_mib=config.limit_memory,
        file_size_mib=config.limit_file_size,
        processes=config.limit_processes,
    )
    if config.sandbox == "off":
        log.warning(
            "job sandbox off (--sandbox=off): compilers run unconfined as %s,"
            " and a client can make them read any file %s can",
            user,
            user,
        )
        service.run_compilers(Confined(limits, None), serves_files=True)
        return 0
    try:
        found = find_sandbox(config.sandbox_path)
    except OSError as exc:  # not even its own directory could be made
        found = f"no directory for the check: {exc}"
    if isinstance(found, str):
        fix = (
            "install bubblewrap and allow unprivileged user namespaces"
            " (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone=1)"
        )
        if config.sandbox == "require":
            log.error("no job sandbox (%s), and --sandbox=require: %s", found, fix)
            return EXIT_NO_SANDBOX
        log.warning(
            "NO JOB SANDBOX (%s): compilers run unconfined and protocol-3 and exact-mode"
            " jobs are refused; to fix, %s (or --sandbox=off to serve every job unconfined)",
            found,
            fix,
        )
        service.run_compilers(Confined(limits, None), serves_files=False)
        return 0
    log.info("running as %s; each compiler in a bubblewrap sandbox", user)
    service.run_compilers(Confined(limits, found), serves_files=True)
    return 0


async def _stats_server(service: DaemonService, sock: socket.socket) -> asyncio.Server:
    """`--stats`: the status page on its own (already bound) socket."""
    from ccfarm.daemon.stats import daemon_figures, stats_handler

    def figures() -> dict[str, object]:
        return daemon_figures(
            service.config.jobs, service.running, service.jobs_done, service.draining.is_set()
        )

    handler = stats_handler(figures, service.access.allows)
    server = await asyncio.start_server(handler, sock=sock)
    logging.getLogger("ccfarmd").info("status page on %s", sock.getsockname())
    return server


async def _agent_tasks(
    config: DaemonConfig,
    compilers: CompilerAllowList,
    service: DaemonService,
    secret: bytes | None = None,
    tls_context: ssl.SSLContext | None = None,
    memory: SpeedMemory | None = None,
) -> tuple[HostAgent | None, list[Coroutine[Any, Any, None]]]:
    """The host agent and one reporting task per --scheduler (after probing
    speed and compilers)."""
    if not config.scheduler:
        return None, []
    from ccfarm.addresses import SCHEDULER_PORT, parse_addresses
    from ccfarm.cgroups import effective_cpus
    from ccfarm.daemon.activity import desktop_in_use, parse_source
    from ccfarm.daemon.agent import HostAgent, RefinedSpeed
    from ccfarm.daemon.probe import children_cpu, compiler_identities
    from ccfarm.daemon.speedmemory import probed_speed

    port = service.port  # (read now: a drain meanwhile closes the listening socket)
    loop = asyncio.get_running_loop()
    idents = await loop.run_in_executor(None, compiler_identities, compilers)
    if config.speed:
        pinned, recalled = config.speed, False

        def speed() -> float:
            return pinned

    else:  # measured at start (or remembered), then refined from the jobs this host runs
        estimate, recalled = await loop.run_in_executor(None, probed_speed, memory)
        speed = RefinedSpeed(estimate, lambda: service.compile_seconds, children_cpu)
    if service.draining.is_set():  # stopped while probing: it does not join any more
        return None, []
    source = parse_source(config.desktop_activity)
    agent = HostAgent(
        port=port,
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
        secret=secret,
        tls_context=tls_context,
    )
    logging.getLogger("ccfarmd").info(
        "host agent: speed %.3g%s, %d compiler(s), schedulers %s",
        speed(),
        " (pinned)" if config.speed else " (remembered)" if recalled else " (probed)",
        len(idents),
        ", ".join(config.scheduler),
    )
    return agent, [agent.run(s) for s in parse_addresses(config.scheduler, SCHEDULER_PORT)]


if __name__ == "__main__":
    sys.exit(main())
