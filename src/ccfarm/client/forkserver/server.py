"""The fork server: one per user (and state directory, Python, cgroup), started
by the first `ccfarm` job that finds none, gone after `CCFARM_HELPER_IDLE`
seconds without work (default 600).

A CPython wrapper pays ~7 ms to start and ~5 ms to import its modules, on
every compile job, on the build machine's CPU. The fork server pays that once:
forwarded jobs run in workers, `fork()`s of it that already have everything
imported, and a worker runs job after job, so that a job pays no fork, no
copy-on-write faults of a fresh process and no teardown either (~5 ms). For
each job the worker takes the job's stdin/stdout/stderr (passed over the
socket), working directory, umask and environment, runs exactly the code a
wrapper process runs (`ccfarm.client.job.command.run_job`), then gives them
back (/dev/null, /) and tells the fork server the exit code, which tells
the job's process. A job that compiles locally `execve`s its worker, as a
wrapper would; a job that leaves its worker changed in any way it checks
(descriptors, threads, children, niceness, signals) ends it; either way the
fork server tells the job's process how the worker ended. A worker serves
`MAX_JOBS` jobs; the fork server keeps up to `KEEP_WAITING` idle.

If the job's process goes away (make interrupted), its worker's process
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
MAX_JOBS = 200  # a worker's jobs before it makes way for a fresh one
KEEP_WAITING = 16  # idle workers kept for the next jobs
_STATUS_SIZE = 4
_TAKEN = b"+"  # a worker's word that it has read its job (its status follows)
_FDS_SPACE = socket.CMSG_SPACE(3 * 4)


class _Worker:
    """A forked child that runs jobs one after another.

    Between jobs it waits on `chan` (its end of a socket pair) for the next
    request and its descriptors; it says `_TAKEN` once it has read one, and
    answers a job it can run another after with the job's exit code there,
    and otherwise exits with it (a local compile `execve`s it, a job was
    stopped, or the job left it changed). A worker that dies before it took
    its job (killed while it waited) has run none of it: the job's process
    runs it itself.
    """

    def __init__(self, pid: int, pidfd: int, chan: socket.socket) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.chan = chan
        self.busy = False
        self.took = False  # said `_TAKEN` for the running job
        self.conn: socket.socket | None = None  # the running job's process
        self.doomed = False  # never given another job
        self.watched = True  # `chan` is in the selector
        self.kill_at: float | None = None


class ForkServer:
    def __init__(
        self, listener: socket.socket, idle: float, stamps: dict[str, tuple[int, int]]
    ) -> None:
        self.listener: socket.socket | None = listener
        self.idle = idle
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)
        self.workers: dict[int, _Worker] = {}
        self.waiting: list[_Worker] = []  # idle; the last to finish goes first (warmest)
        self.last_active = time.monotonic()
        self.stamps = stamps  # the code as it was before it was imported
        self.stopping = False

    # -- the loop ---------------------------------------------------------

    def serve(self) -> None:
        while (running := self._running()) or not self.stopping:
            now = time.monotonic()
            if not running and now - self.last_active >= self.idle:
                break
            timeout = 1.0 if running else min(1.0, self.idle - (now - self.last_active))
            for key, _ in self.selector.select(max(timeout, 0.0)):
                if key.data is None:
                    self._accept()
                    continue
                kind, pid = key.data
                if pid not in self.workers:
                    continue  # reaped earlier in this round
                if kind == "exited":
                    self._reap(pid)
                elif kind == "done":
                    self._done(pid)
                else:
                    self._peer_event(pid, key.fileobj)
            self._kill_overdue(time.monotonic())
            if self.stopping:
                self._stop_listening()
        for worker in self.waiting:
            worker.chan.close()  # each exits when it sees that

    def _running(self) -> bool:
        return any(worker.busy for worker in self.workers.values())

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
            raw, request, fds = _read_request(conn)
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
        self._start_job(conn, raw, request, fds)

    def _code_changed(self) -> bool:
        """Has ccfarm's code changed since this server imported it (~0.6 ms)?"""
        return module_stamps() != self.stamps

    def _start_job(
        self, conn: socket.socket, raw: bytes, request: wire.Request, fds: list[int]
    ) -> None:
        if "ssl" not in sys.modules and _wants_tls(request):
            _warm_tls()  # once, here, for the workers forked from now on
        worker = self.waiting.pop() if self.waiting else self._fork_worker(fds)
        try:
            if worker is None:
                raise OSError("no worker")
            wire.send_with_fds(worker.chan, raw, fds)
        except OSError:
            if worker is not None:
                self._dismiss(worker)  # gone while idle: its exit is reaped
            with contextlib.suppress(OSError):
                conn.sendall(wire.FALLBACK)
            conn.close()
            return
        finally:
            _close_all(fds)
        worker.busy = True
        worker.conn = conn
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, ("peer", worker.pid))

    def _fork_worker(self, held: list[int]) -> _Worker | None:
        """A new worker; `held`: descriptors of a job that it must not keep."""
        try:
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:
            return None
        try:
            pid = os.fork()
        except OSError:
            mine.close()
            theirs.close()
            return None
        if pid == 0:
            status = 1
            try:
                mine.close()
                _close_all(held)  # (its job's come again over `theirs`)
                self._close_in_child()
                status = _work(theirs)
            except SystemExit as exc:  # a signal while it waited, or before a job's handling
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                with contextlib.suppress(BaseException):
                    import traceback

                    traceback.print_exc()
                    sys.stderr.flush()
            finally:
                os._exit(status)
        theirs.close()
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done by the child: whichever runs first
        pidfd = os.pidfd_open(pid)
        worker = _Worker(pid, pidfd, mine)
        self.workers[pid] = worker
        self.selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
        self.selector.register(mine, selectors.EVENT_READ, ("done", pid))
        return worker

    def _done(self, pid: int) -> None:
        """A worker finished its job and can take another (or its channel closed)."""
        worker = self.workers[pid]
        try:
            data = worker.chan.recv(_STATUS_SIZE if worker.took else len(_TAKEN))
        except OSError:
            data = b""
        if worker.busy and not worker.took and data == _TAKEN:
            worker.took = True  # its status comes next
            return
        if len(data) != _STATUS_SIZE or not worker.busy:
            # it is leaving (or talking nonsense): its exit is reaped
            if worker.watched:
                self.selector.unregister(worker.chan)
                worker.watched = False
            self._dismiss(worker)
            return
        # as an exit's wait status
        self._reply(worker, wire.encode_reply(int.from_bytes(data, "big") << 8))
        if worker.doomed or self.stopping or len(self.waiting) >= KEEP_WAITING:
            self._dismiss(worker)
        else:
            self.waiting.append(worker)

    def _reap(self, pid: int) -> None:
        worker = self.workers.pop(pid)
        self.selector.unregister(worker.pidfd)
        os.close(worker.pidfd)
        if worker.busy and not worker.took:
            with contextlib.suppress(OSError):  # (what it wrote stays readable)
                worker.took = worker.chan.recv(len(_TAKEN), socket.MSG_DONTWAIT) == _TAKEN
        if worker.watched:
            self.selector.unregister(worker.chan)
        worker.chan.close()
        _, status = os.waitpid(pid, 0)
        if worker.busy:
            # killed before it took the job: no answer, and its process runs it
            self._reply(worker, wire.encode_reply(status) if worker.took else b"")
        if worker in self.waiting:
            self.waiting.remove(worker)

    def _reply(self, worker: _Worker, reply: bytes) -> None:
        """Tell the job's process how its job ended (b"": close the connection
        unanswered, so that the process runs the job itself)."""
        worker.busy = worker.took = False
        conn, worker.conn = worker.conn, None
        if conn is not None:
            self.selector.unregister(conn)
            with contextlib.suppress(OSError):
                conn.setblocking(True)
                if reply:
                    conn.sendall(reply)
            conn.close()
        self.last_active = time.monotonic()

    def _dismiss(self, worker: _Worker) -> None:
        """No more jobs for it: it exits when it sees its channel close."""
        worker.doomed = True
        with contextlib.suppress(OSError):
            worker.chan.shutdown(socket.SHUT_WR)

    def _peer_event(self, pid: int, conn: object) -> None:
        """The job's process on `conn` went away (or sent something): stop the job."""
        worker = self.workers[pid]
        if worker.conn is None or worker.conn is not conn:
            return  # that job was answered earlier in this round
        try:
            if worker.conn.recv(1):
                return  # nothing is expected; ignore
        except BlockingIOError:
            return
        except OSError:
            pass  # reset: gone
        self.selector.unregister(worker.conn)
        worker.conn.close()
        worker.conn = None
        worker.doomed = True
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGTERM)
        worker.kill_at = time.monotonic() + KILL_GRACE

    def _kill_overdue(self, now: float) -> None:
        for worker in self.workers.values():
            if worker.kill_at is not None and now >= worker.kill_at:
                with contextlib.suppress(OSError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.kill_at = None

    def _stop_listening(self) -> None:
        if self.listener is not None:
            self.selector.unregister(self.listener)
            self.listener.close()  # frees the name: the next job starts a new fork server
            self.listener = None
            for worker in self.waiting:
                self._dismiss(worker)
            self.waiting.clear()

    def _close_in_child(self) -> None:
        """In a forked child: let go of everything that belongs to the fork server."""
        self.selector.close()
        if self.listener is not None:
            self.listener.close()
        for worker in self.workers.values():
            os.close(worker.pidfd)
            worker.chan.close()
            if worker.conn is not None:
                worker.conn.close()


def _wants_tls(request: wire.Request) -> bool:
    """Does this job talk TLS (CCFARM_TLS_CA set in its environment)?"""
    return any(item.startswith(b"CCFARM_TLS_CA=") and len(item) > 14 for item in request[3])


def _warm_tls() -> None:
    """`ssl` (about 25 ms to import): loaded by the fork server once the first
    job that uses TLS comes, not for builds that never do."""
    import ssl  # noqa: F401

    import ccfarm.tls  # noqa: F401


# -- the child ----------------------------------------------------------------


def _work(chan: socket.socket) -> int:
    """A worker's life: run the jobs that come over `chan` until one leaves it
    changed; the exit status (that job's, or 0 when told to stop)."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _terminated)
    _stdio_to_null()  # not the fork server's (a test's, when a test started it)
    clean = _state()
    for served in range(1, MAX_JOBS + 1):
        try:
            _, request, fds = _read_request(chan)
        except (OSError, wire.WireError):
            return 0  # dismissed (or the fork server is gone)
        try:
            chan.sendall(_TAKEN)
        except OSError:
            _close_all(fds)
            return 0
        status = _run_child(request, fds)
        if served == MAX_JOBS or _state() != clean or not _no_children():
            return status
        try:
            chan.sendall(status.to_bytes(_STATUS_SIZE, "big"))
        except OSError:
            return status
    return 0  # not reached


def _run_child(request: wire.Request, fds: list[int]) -> int:
    """Run the job as its wrapper process would; its exit status. It has the
    job's stdin, stdout and stderr, working directory, umask and environment,
    and gives them back (/dev/null, /) when it returns."""
    argv_b, cwd, umask, env_b = request
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    _close_all(fd for fd in fds if fd > 2)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the fork server ignores it; a job must not
    os.umask(umask)
    environ = os.environ
    environ.clear()
    for item in env_b:
        name, _, value = item.partition(b"=")
        environ[os.fsdecode(name)] = os.fsdecode(value)
    argv = [os.fsdecode(a) for a in argv_b]
    sys.argv = argv
    from ccfarm.client.job.command import run_job

    try:
        os.chdir(cwd)
        status = run_job(argv, environ)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except OSError as exc:  # the directory went away
        sys.stderr.write(f"ccfarm: {os.fsdecode(cwd)}: {exc.strerror}\n")
        status = 1
    finally:
        # make waits for every writer of its pipes to close them: none may stay here
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        _stdio_to_null()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.chdir("/")
    return status


def _stdio_to_null() -> None:
    """Descriptors 0, 1 and 2 on /dev/null (open whether or not they were)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)


_signalled = False


def _terminated(signum: int, _frame: object) -> None:
    global _signalled
    _signalled = True  # the worker runs no other job
    raise SystemExit(128 + signum)  # unwinds: temporary files are removed on the way


def _state() -> tuple[object, ...]:
    """What a job may leave changed in its worker (~0.1 ms): then it takes no other."""
    return (
        sorted(os.listdir("/proc/self/fd")),
        os.getpriority(os.PRIO_PROCESS, 0),
        signal.getsignal(signal.SIGPIPE),
        len(sys._current_frames()),  # threads
        _signalled,
    )


def _no_children() -> bool:
    """Has the job left nothing running (reaping what it left behind)?"""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False


# -- fork servers --------------------------------------------------------------------


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[4:8], sys.byteorder)


def _read_request(
    conn: socket.socket,
) -> tuple[bytes, wire.Request, list[int]]:
    """The request (as it came, and decoded) and the three descriptors that came with it."""
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
        return data, wire.decode_payload(data[wire.HEADER_SIZE :]), fds
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
    # scandir, not os.walk: half the cost (0.47 against 0.86 ms for ccfarm's
    # 114 files), paid by the build machine's CPU on every job
    todo = [wire.package_dir()]
    while todo:
        try:
            entries = os.scandir(todo.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    stamps[entry.path] = (st.st_mtime_ns, st.st_size)
                elif entry.name != "__pycache__" and entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
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
