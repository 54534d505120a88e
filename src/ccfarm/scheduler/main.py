"""`ccfarm-scheduler`: the host-server, on one TCP port (default 3634)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ccfarm.config import command_line, load
from ccfarm.daemonize import (
    EXIT_STARTUP_FAILED,
    Launch,
    StartupError,
    listening_socket,
    reopen_logs,
    setup_logging,
)
from ccfarm.errors import ConfigError
from ccfarm.scheduler.config import SchedulerConfig
from ccfarm.scheduler.hostsinfo import HostInfo

if TYPE_CHECKING:
    import ssl

EXIT_BAD_ARGUMENTS = 101
log = logging.getLogger("ccfarm-scheduler")


def parser() -> argparse.ArgumentParser:
    return command_line(
        SchedulerConfig, "ccfarm-scheduler", "ccfarm host-server: gives each compile job a host"
    )


def load_config(argv: Sequence[str] | None = None) -> SchedulerConfig:
    return load(SchedulerConfig, parser(), argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
        from ccfarm.secretfile import secret_from

        secret = secret_from(config.secret_file)
        from ccfarm.tls import TLSFiles, server_from

        tls_files = TLSFiles(config.tls_cert, config.tls_key, config.tls_ca)
        tls_context = server_from(tls_files, config.tls_require)
        hosts_info = {}
        if config.hosts_info:
            from ccfarm.scheduler.hostsinfo import parse_hosts_info

            with open(config.hosts_info) as f:
                hosts_info = parse_hosts_info(f.read())
    except ConfigError as exc:
        print(f"ccfarm-scheduler: {exc}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        print(f"ccfarm-scheduler: cannot read {config.hosts_info}: {reason}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    launch = Launch("ccfarm-scheduler")
    # listening starts before the event loop's handler: a SIGHUP meanwhile
    # (logrotate) must not end the daemon
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:  # everything that can fail is done before detaching, in the operator's sight
        sock = listening_socket(config.listen, config.port, 4096)
        setup_logging(
            "ccfarm-scheduler",
            config.log_level.upper(),
            log_file=config.log_file,
            detached=config.detach,
        )
    except StartupError as exc:
        print(f"ccfarm-scheduler: {exc}", file=sys.stderr)
        return exc.status
    if secret is None:
        log.warning(
            "no --secret-file: anyone who reaches this port can register hosts, take leases"
            " and disable hosts (docs/security.md)"
        )
    if config.detach:
        launch.detach()
    return asyncio.run(_run(config, hosts_info, sock, launch, secret, tls_context))


async def _run(
    config: SchedulerConfig,
    hosts_info: dict[str, HostInfo],
    sock: socket.socket,
    launch: Launch,
    secret: bytes | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> int:
    from ccfarm.scheduler.service import SchedulerService

    _raise_fd_limit()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reopen_logs)
    if config.pid_file:  # before anything runs: a failure leaves nothing to undo
        try:
            _write_pid(config.pid_file)
        except OSError as exc:
            message = f"cannot write pid file {config.pid_file}: {exc.strerror}"
            log.error("%s", message)
            sock.close()
            launch.failed(message, EXIT_STARTUP_FAILED)
            return EXIT_STARTUP_FAILED
    service = SchedulerService(config, hosts_info, secret=secret, tls_context=tls_context)
    await service.start(sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    launch.ready(f"listening on port {service.port}")
    await stop.wait()
    launch.stopping()
    log.info("stopping (signal)")
    await service.stop()
    if config.pid_file:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(config.pid_file)
    return 0


def _write_pid(path: str) -> None:
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:  # written whole, then renamed: never seen empty
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


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
