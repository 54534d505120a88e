"""What makes `ccfarmd` and `ccfarm-scheduler` behave as services.

* `listening_socket`: the port is bound before anything else happens, so a
  taken port or a bad address is a one-line `StartupError` in the
  operator's terminal, not a silent exit of a detached child.
* `Launch`: detaching (two forks and a new session) with a readiness pipe:
  the command the operator typed exits only when the daemon says it is
  ready (status 0) or failed (its message and exit status), so errors after
  the fork (a pid file that cannot be written) are seen too. The same
  moment is told to systemd (`READY=1` over `$NOTIFY_SOCKET`, sd_notify's
  datagram, for `Type=notify` units), and `STOPPING=1` when the drain begins.
* `setup_logging`: `--log-file` (reopened on SIGHUP, for logrotate), else
  syslog when detached (as distccd: `/dev/log`, facility daemon; stderr when
  there is none), else stderr.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import socket
import sys

#: distcc's exit status for a port that cannot be bound
EXIT_BIND_FAILED = 102
#: what a failed start-up exits with when nothing more precise is known
EXIT_STARTUP_FAILED = 1
SYSLOG_ADDRESS = "/dev/log"


class StartupError(Exception):
    """A daemon cannot start: a one-line message and the exit status."""

    def __init__(self, message: str, status: int = EXIT_STARTUP_FAILED) -> None:
        super().__init__(message)
        self.status = status


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking TCP socket bound to `host`:`port` and listening."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if not 0 <= port <= 65535:  # getaddrinfo would take it modulo 65536
        raise StartupError(f"cannot listen on {shown}: no such port", EXIT_BIND_FAILED)
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise StartupError(f"cannot listen on {shown}: {reason}", EXIT_BIND_FAILED) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {shown}: {exc.strerror}", EXIT_BIND_FAILED) from None
    sock.setblocking(False)
    return sock


class Launch:
    """A daemon's start-up: detaching, and saying when it is ready or failed."""

    def __init__(self, program: str, environ: dict[str, str] | None = None) -> None:
        self.program = program
        env = os.environ if environ is None else environ
        # taken out of the environment: the compilers must not inherit it
        self.notify_socket = env.pop("NOTIFY_SOCKET", "")
        self._pipe: int | None = None

    def detach(self) -> None:
        """Go into the background; the calling process exits once `ready` or
        `failed` is called (or the daemon dies first)."""
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        if os.fork():
            os.close(write_end)
            os._exit(_wait_for_child(self.program, read_end))
        os.close(read_end)
        os.setsid()
        if os.fork():
            os._exit(0)
        self._pipe = write_end
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)

    def ready(self, status: str = "") -> None:
        self._tell_parent(b"0")
        self.notify("READY=1", f"MAINPID={os.getpid()}", *([f"STATUS={status}"] if status else []))

    def failed(self, message: str, status: int) -> None:
        self._tell_parent(f"{status} {message}".encode(errors="replace"))

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def _tell_parent(self, what: bytes) -> None:
        if self._pipe is None:
            return
        with contextlib.suppress(OSError):  # the terminal's process gone: nobody to tell
            os.write(self._pipe, what)
        os.close(self._pipe)
        self._pipe = None

    def notify(self, *states: str) -> bool:
        """Send sd_notify states to `$NOTIFY_SOCKET`, if there was one."""
        address = self.notify_socket
        if not address or address[0] not in "/@":
            return False
        if address[0] == "@":  # the abstract namespace
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(states).encode(), address)
        except OSError as exc:
            logging.getLogger(self.program).warning("cannot notify %s: %s", address, exc)
            return False
        return True


def _wait_for_child(program: str, read_end: int) -> int:
    """The terminal's side of `Launch.detach`: the daemon's word, as an exit status."""
    chunks = []
    while chunk := os.read(read_end, 4096):
        chunks.append(chunk)
    said = b"".join(chunks).decode(errors="replace")
    if said == "0":
        return 0
    status, _, message = said.partition(" ")
    if not status.isdigit():
        message, status = "exited during start-up (see its log)", str(EXIT_STARTUP_FAILED)
    sys.stderr.write(f"{program}: {message}\n")
    return int(status) or EXIT_STARTUP_FAILED


# -- logs ----------------------------------------------------------------------


class ReopeningFileHandler(logging.FileHandler):
    """A log file that `reopen` (SIGHUP) opens again under its name."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def setup_logging(
    program: str,
    level: str,
    *,
    log_file: str = "",
    also_stderr: bool = False,
    detached: bool = False,
    syslog_address: str = SYSLOG_ADDRESS,
) -> None:
    """The program's log: `log_file`, else syslog if detached, else stderr.

    Call it before detaching: a log file that cannot be opened is a
    StartupError the operator sees.
    """
    handlers: list[logging.Handler] = []
    stamp = "%(asctime)s "
    if log_file:
        try:
            handlers.append(ReopeningFileHandler(log_file))
        except OSError as exc:
            raise StartupError(f"cannot open log file {log_file}: {exc.strerror}") from None
    elif detached:
        syslog = _syslog(syslog_address)
        if syslog is not None:
            syslog.setFormatter(logging.Formatter(f"{program}[%(process)d]: %(message)s"))
            handlers.append(syslog)
    if also_stderr or not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    fmt = logging.Formatter(f"{stamp}{program}[%(process)d] %(levelname)s %(message)s")
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    from ccfarm.limits import LogRateFilter

    for handler in handlers:
        if handler.formatter is None:
            handler.setFormatter(fmt)
        handler.addFilter(LogRateFilter())  # a flood of one kind of line is cut (and counted)
        root.addHandler(handler)
    root.setLevel(level)


def _syslog(address: str) -> logging.Handler | None:
    """A syslog handler on the local socket `address`, or None when there is none."""
    if not os.path.exists(address):
        return None
    try:
        return logging.handlers.SysLogHandler(
            address, facility=logging.handlers.SysLogHandler.LOG_DAEMON
        )
    except OSError:
        return None


def reopen_logs() -> None:
    """Open every log file again (SIGHUP: after logrotate moved it away)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ReopeningFileHandler):
            handler.reopen()
    logging.getLogger().info("log reopened")


__all__ = [
    "EXIT_BIND_FAILED",
    "Launch",
    "ReopeningFileHandler",
    "StartupError",
    "listening_socket",
    "reopen_logs",
    "setup_logging",
]
