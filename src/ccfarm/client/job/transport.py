"""Send one job to a daemon and read its reply, with blocking sockets.

The wrapper handles one job per process, so a plain socket with timeouts is
simpler and starts faster than an event loop.
"""

from __future__ import annotations

import _socket

from ccfarm._record import record
from ccfarm.errors import CcfarmError, HostFailure, LeaseLost
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

MYPY = False
if MYPY:
    import ssl
    from collections.abc import Callable

    from ccfarm.client.job.lease import Lease


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
    lease: Lease | None = None,
    secret: bytes | None = None,
    tls: ssl.SSLContext | None = None,
) -> JobResult:
    """Connect, send the whole request, read the whole reply.

    The sending side is never shut down before the reply is read: distccd
    (and ccfarmd) take EOF from the client as "client gone" and kill the job.
    With a `lease`, its connection is watched meanwhile: the scheduler
    revoking it ends the attempt at once (LeaseLost). With the farm
    `secret` (ccfarmd hosts), the host must prove it knows it, within
    `connect_timeout`, before anything of the job is sent. With `tls`
    (ccfarmd hosts, CCFARM_TLS_CA), the job goes over TLS, the host's
    certificate checked against `host` (the handshake within `connect_timeout`).
    """
    from ccfarm.client.job.net import connect

    try:
        sock = connect(host, port, connect_timeout)
    except OSError as exc:
        raise HostFailure(f"cannot connect: {exc.strerror or exc}") from None
    try:
        if tls is not None:
            from ccfarm.client.job.net import secure

            sock = secure(sock, tls, host)
        if secret is not None:
            from ccfarm.client.job.net import authenticate
            from ccfarm.protocol.auth import COMPILE

            try:
                proof, _ = authenticate(sock, secret, COMPILE)  # (a host says nothing more first)
            except CcfarmError as exc:
                raise HostFailure(str(exc)) from None
            request = proof + request
        sock.settimeout(io_timeout)
        if lease is None:
            sock.sendall(request)
            return _read_reply(sock.recv, version)
        watch = _Watch(sock, lease, io_timeout)
        watch.sendall(request)
        return _read_reply(watch.recv, version)
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


class _Watch:
    """The job's connection, with the lease's watched at every wait (poll on both)."""

    def __init__(self, sock: _socket.socket, lease: Lease, timeout: float) -> None:
        import select

        self.sock = sock
        self.lease = lease
        self.timeout_ms = max(1, int(timeout * 1000))
        self.poll = select.poll()
        self.poll.register(lease.sock.fileno(), select.POLLIN)
        self.job_fd = sock.fileno()
        self.readable = select.POLLIN | select.POLLHUP | select.POLLERR
        self.writable = select.POLLOUT | select.POLLHUP | select.POLLERR

    def _wait(self, events: int) -> None:
        """Until the job's connection has `events`; LeaseLost or TimeoutError first."""
        self.poll.register(self.job_fd, events)
        try:
            while True:
                ready = dict(self.poll.poll(self.timeout_ms))
                if not ready:
                    raise TimeoutError("timed out")
                if self.lease.sock.fileno() in ready:
                    reason = self.lease.lost()
                    if reason:
                        raise LeaseLost(reason)
                if ready.get(self.job_fd, 0) & events:
                    return
        finally:
            self.poll.unregister(self.job_fd)

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._wait(self.writable)
            view = view[self.sock.send(view) :]

    def recv(self, size: int) -> bytes:
        pending = getattr(self.sock, "pending", None)  # TLS: bytes decrypted already
        if pending is None or not pending():
            self._wait(self.readable)
        return self.sock.recv(size)


def _read_reply(recv: Callable[[int], bytes], version: int) -> JobResult:
    parser = ReplyParser(version)
    status = -1
    stderr = stdout = obj = b""
    deps: bytes | None = None
    while True:
        event = parser.next_event()
        if event is NEED_DATA:
            data = recv(1 << 18)
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
