"""The fork server: one per user (and state directory, Python, cgroup), started
by the first `ccfarm` job that finds none, gone after `CCFARM_HELPER_IDLE`
seconds without work (default 600).

A CPython wrapper pays ~7 ms to start and ~5 ms to import its modules, on
every compile job, on the build machine's CPU. The fork server pays that once:
each forwarded job runs in a `fork()` of it, which already has everything
imported. The child takes the job's stdin/stdout/stderr (passed over the
socket), working directory, umask and environment, and runs exactly the
code a wrapper process runs (`ccfarm.client.job.command.run_job`), compiling
locally by `execve` as a wrapper would. The fork server waits for the child and
tells the job's process how it ended.

If the job's process goes away (make interrupted), the child's process
group (wrapper code, preprocessor, compiler) gets SIGTERM, then SIGKILL.
If ccfarm's code on disk changes, the fork server declines the job (the process
runs it itself), stops listening, finishes the jobs it has and exits; the
next job starts a fresh fork server.

    python -m ccfarm.client.forkserver.server NAME    (NAME: the socket, see wire)
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import sys
import time

from ccfarm.client.forkserver import wire

KILL_GRACE = 5.0
REQUEST_TIMEOUT = 10.0
_FDS_SPACE = socket.CMSG_SPACE(3 * 4)


class _Job:
    def __init__(self, pid: int, pidfd: int, conn: socket.socket) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.conn: socket.socket | None = conn
        self.kill_at: float | None = None


class ForkServer:
    def __init__(
        self, listener: socket.socket, idle: float, stamps: dict[str, tuple[int, int]]
    ) -> None:
        self.listener: socket.socket | None = listener
        self.idle = idle
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.jobs: dict[int, _Job] = {}
        self.last_active = time.monotonic()
        self.stamps = stamps  # the code as it was before it was imported
        self.stopping = False

    # -- the loop ---------------------------------------------------------

    def serve(self) -> None:
        while self.jobs or not self.stopping:
            now = time.monotonic()
            if not self.jobs and now - self.last_active >= self.idle:
                break
            timeout = 1.0 if self.jobs else min(1.0, self.idle - (now - self.last_active))
            for key, _ in self.selector.select(max(timeout, 0.0)):
                if key.data is None:
                    self._accept()
                else:
                    kind, pid = key.data
                    if kind == "exited":
                        self._reap(pid)
                    else:
                        self._peer_event(pid)
            self._kill_overdue(time.monotonic())
            if self.stopping:
                self._stop_listening()

    def stop(self, *_: object) -> None:
        """SIGTERM: take no more jobs, finish the running ones."""
        self.stopping = True

    # -- events -------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        self.last_active = time.monotonic()
        fds: list[int] = []
        try:
            if _peer_uid(conn) != os.getuid():
                conn.close()
                return
            conn.settimeout(REQUEST_TIMEOUT)
            request, fds = _read_request(conn)
            if self._code_changed():
                conn.sendall(wire.FALLBACK)  # our code changed: a fresh fork server takes over
                self.stopping = True
                conn.close()
                _close_all(fds)
                return
        except (OSError, wire.WireError):
            conn.close()
            _close_all(fds)
            return
        self._start_job(conn, request, fds)

    def _code_changed(self) -> bool:
        """Has ccfarm's code changed since this server imported it (~0.6 ms)?"""
        return module_stamps() != self.stamps

    def _start_job(self, conn: socket.socket, request: wire.Request, fds: list[int]) -> None:
        if "ssl" not in sys.modules and _wants_tls(request):
            _warm_tls()  # once, here, for this job and every later one
        try:
            pid = os.fork()
        except OSError:
            with contextlib.suppress(OSError):
                conn.sendall(wire.FALLBACK)
            conn.close()
            _close_all(fds)
            return
        if pid == 0:
            status = 1
            try:
                self._close_in_child(conn)
                status = _run_child(request, fds)
            except SystemExit as exc:  # a signal before the job's own handling
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                with contextlib.suppress(BaseException):
                    import traceback

                    traceback.print_exc()
                    sys.stderr.flush()
            finally:
                os._exit(status)
        _close_all(fds)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done by the child: whichever runs first
        pidfd = os.pidfd_open(pid)
        job = _Job(pid, pidfd, conn)
        self.jobs[pid] = job
        conn.setblocking(False)
        self.selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
        self.selector.register(conn, selectors.EVENT_READ, ("peer", pid))

    def _reap(self, pid: int) -> None:
        job = self.jobs.pop(pid)
        self.selector.unregister(job.pidfd)
        os.close(job.pidfd)
        _, status = os.waitpid(pid, 0)
        if job.conn is not None:
            self.selector.unregister(job.conn)
            with contextlib.suppress(OSError):
                job.conn.setblocking(True)
                job.conn.sendall(wire.encode_reply(status))
            job.conn.close()
        self.last_active = time.monotonic()

    def _peer_event(self, pid: int) -> None:
        """The job's process sent something or went away: either way, stop the job."""
        job = self.jobs[pid]
        assert job.conn is not None
        with contextlib.suppress(OSError):
            if job.conn.recv(1):
                return  # nothing is expected; ignore
        self.selector.unregister(job.conn)
        job.conn.close()
        job.conn = None
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)
        job.kill_at = time.monotonic() + KILL_GRACE

    def _kill_overdue(self, now: float) -> None:
        for job in self.jobs.values():
            if job.kill_at is not None and now >= job.kill_at:
                with contextlib.suppress(OSError):
                    os.killpg(job.pid, signal.SIGKILL)
                job.kill_at = None

    def _stop_listening(self) -> None:
        if self.listener is not None:
            self.selector.unregister(self.listener)
            self.listener.close()  # frees the name: the next job starts a new fork server
            self.listener = None

    def _close_in_child(self, conn: socket.socket) -> None:
        """In a forked child: let go of everything that belongs to the fork server."""
        self.selector.close()
        if self.listener is not None:
            self.listener.close()
        for job in self.jobs.values():
            os.close(job.pidfd)
            if job.conn is not None:
                job.conn.close()
        conn.close()


def _wants_tls(request: wire.Request) -> bool:
    """Does this job talk TLS (CCFARM_TLS_CA set in its environment)?"""
    return any(item.startswith(b"CCFARM_TLS_CA=") and len(item) > 14 for item in request[3])


def _warm_tls() -> None:
    """`ssl` (about 25 ms to import): loaded by the fork server once the first
    job that uses TLS comes, not for builds that never do."""
    import ssl  # noqa: F401

    import ccfarm.tls  # noqa: F401


# -- the child ----------------------------------------------------------------


def _run_child(request: wire.Request, fds: list[int]) -> int:
    """Become the job's wrapper process and run it; the exit status."""
    argv_b, cwd, umask, env_b = request
    os.setpgid(0, 0)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_all(fd for fd in fds if fd > 2)
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the fork server ignores it; a job must not
    os.umask(umask)
    os.chdir(cwd)
    environ = os.environ
    environ.clear()
    for item in env_b:
        name, _, value = item.partition(b"=")
        environ[os.fsdecode(name)] = os.fsdecode(value)
    argv = [os.fsdecode(a) for a in argv_b]
    sys.argv = argv
    from ccfarm.client.job.command import run_job

    try:
        status = run_job(argv, environ)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    return status


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: temporary files are removed on the way


# -- fork servers --------------------------------------------------------------------


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder)


def _read_request(
    conn: socket.socket,
) -> tuple[wire.Request, list[int]]:
    """The request and the three descriptors that came with it."""
    fds: list[int] = []
    data = b""
    need = wire.HEADER_SIZE
    length: int | None = None
    try:
        while True:
            chunk, ancdata, flags, _ = conn.recvmsg(max(need - len(data), 1), _FDS_SPACE)
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(payload) - len(payload) % 4
                    fds.extend(
                        int.from_bytes(payload[i : i + 4], sys.byteorder)
                        for i in range(0, usable, 4)
                    )
            if flags & socket.MSG_CTRUNC:
                raise wire.WireError("descriptors truncated")
            if not chunk:
                raise wire.WireError("request cut short")
            data += chunk
            if length is None and len(data) >= wire.HEADER_SIZE:
                length = wire.payload_length(data[: wire.HEADER_SIZE])
                need = wire.HEADER_SIZE + length
            if length is not None and len(data) >= need:
                break
        if len(data) != need or len(fds) != 3:
            raise wire.WireError("bad request")
        return wire.decode_payload(data[wire.HEADER_SIZE :]), fds
    except BaseException:
        _close_all(fds)
        raise


def _close_all(fds: object) -> None:
    for fd in fds:  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            os.close(fd)


def module_stamps() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every source file of ccfarm's package.

    Taken before the fork server imports anything, so that a change made while it
    starts is seen at its first job (the package directory, not the loaded
    modules: those are only known after importing).
    """
    stamps = {}
    for directory, _, files in os.walk(wire.package_dir()):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                stamps[path] = (st.st_mtime_ns, st.st_size)
    return stamps


def _warm_imports() -> None:
    """Everything a job may import, loaded once here (fork shares it)."""
    import ccfarm.cgroups
    import ccfarm.client.hosts.hostlist
    import ccfarm.client.hosts.slots
    import ccfarm.client.job.command
    import ccfarm.client.job.compilerinfo
    import ccfarm.client.job.lease
    import ccfarm.client.job.outputs
    import ccfarm.client.job.run
    import ccfarm.client.job.sources
    import ccfarm.client.job.transport
    import ccfarm.compiler.args
    import ccfarm.compiler.commands
    import ccfarm.model
    import ccfarm.protocol.auth  # (hashlib, hmac: a job with CCFARM_SECRET_FILE)
    import ccfarm.secretfile  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m ccfarm.client.forkserver.server NAME\n")
        return 2
    # before binding: a change made once jobs can find this server is seen
    stamps = module_stamps()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(b"\0" + os.fsencode(args[0]))
    except OSError:
        return 0  # another job's fork server got there first
    listener.listen(128)
    listener.setblocking(False)
    os.chdir("/")
    try:
        idle = float(os.environ.get("CCFARM_HELPER_IDLE", "600"))
    except ValueError:
        idle = 600.0
    _warm_imports()
    # what is loaded now stays as it is: no collection ever walks it, in here
    # or in a job's fork, whose pages then stay shared (copy-on-write)
    gc.collect()
    gc.freeze()
    server = ForkServer(listener, idle, stamps)
    signal.signal(signal.SIGTERM, server.stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
