"""Send one job to a daemon and read its reply, with blocking sockets.

The wrapper handles one job per process, so a plain socket with timeouts is
simpler and starts faster than an event loop.
"""

from __future__ import annotations

import _socket

from ccfarm._record import record
from ccfarm.errors import CcfarmError, HostFailure
from ccfarm.protocol import (
    NEED_DATA,
    CompileStatus,
    DepsFile,
    ObjectFile,
    ReplyComplete,
    ReplyParser,
    Stderr,
    Stdout,
)


@record
class JobResult:
    wait_status: int
    stderr: bytes
    stdout: bytes
    obj: bytes
    deps: bytes | None


def run_remote(
    host: str,
    port: int,
    request: bytes,
    version: int,
    *,
    connect_timeout: float,
    io_timeout: float,
) -> JobResult:
    """Connect, send the whole request, read the whole reply.

    The sending side is never shut down before the reply is read: distccd
    (and ccfarmd) take EOF from the client as "client gone" and kill the job.
    """
    from ccfarm.client.job.net import connect

    try:
        sock = connect(host, port, connect_timeout)
    except OSError as exc:
        raise HostFailure(f"cannot connect: {exc.strerror or exc}") from None
    try:
        sock.settimeout(io_timeout)
        sock.sendall(request)
        return _read_reply(sock, version)
    except TimeoutError:
        raise HostFailure("timed out") from None
    except OSError as exc:
        raise HostFailure(f"connection failed: {exc.strerror or exc}") from None
    except CcfarmError as exc:
        if isinstance(exc, HostFailure):
            raise
        raise HostFailure(f"bad reply: {exc}") from None
    finally:
        sock.close()


def _read_reply(sock: _socket.socket, version: int) -> JobResult:
    parser = ReplyParser(version)
    status = -1
    stderr = stdout = obj = b""
    deps: bytes | None = None
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            data = sock.recv(1 << 18)
            if data:
                parser.receive_data(data)
            else:
                parser.receive_eof()
        elif isinstance(event, CompileStatus):
            status = event.wait_status
        elif isinstance(event, Stderr):
            stderr = event.data
        elif isinstance(event, Stdout):
            stdout = event.data
        elif isinstance(event, ObjectFile):
            obj = event.data
        elif isinstance(event, DepsFile):
            deps = event.data
        elif isinstance(event, ReplyComplete):
            if status < 0:
                raise HostFailure("reply ended early")
            return JobResult(status, stderr, stdout, obj, deps)
