"""Requests that try to freeze or exhaust a real ccfarmd or ccfarm-scheduler:
an LZO bomb, half-sent big bodies, no file descriptors, a SIGKILL, a flood
of lease requests. Each is bounded and the service keeps serving others."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.control import messages as m
from ccfarm.control.codec import MessageParser, encode, hello
from ccfarm.demo.farm import start_daemon, stop_daemon
from ccfarm.model import HostReport, LeaseRequest
from ccfarm.protocol import LZO, PUMP, FileEntry, JobHeader, encode_request
from ccfarm.protocol.compression import compress
from ccfarm.protocol.tokens import encode_blob
from tests.conftest import daemon_account, free_port, job_dirs, next_address, wait_for

MiB = 1 << 20
ARGV = (b"gcc", b"-c", b"x.c", b"-o", b"x.o")
SMALL = encode_request(JobHeader(LZO, ARGV), source=b"int x;\n")


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _exchange(address: str, port: int, data: bytes, timeout: float = 60) -> bytes:
    with socket.create_connection((address, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)  # (no shutdown: the daemon takes that for a client gone)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            return b"<reset>"
    return reply


# -- the daemon ------------------------------------------------------------------------


def _jobs(tmp_path: Path) -> Path:
    """The daemon's --tmpdir (its log goes beside it, in tmp_path): one its user
    may use once it gave up root (pytest's tmp_path is private to root)."""
    if tmp_path in _made:
        return _made[tmp_path]
    path = Path(tempfile.mkdtemp(prefix="ccfarm-test-jobs-"))
    account = daemon_account()
    if account is not None:
        os.chown(path, *account)
    _made[tmp_path] = path
    return path


_made: dict[Path, Path] = {}


@pytest.fixture(autouse=True)
def _remove_job_dirs() -> Iterator[None]:
    yield
    for path in _made.values():
        shutil.rmtree(path, ignore_errors=True)
    _made.clear()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """160 MiB of zeros in 0.75 MB of LZO: beyond the default --max-body (128)."""
    return _lzo_request(compress(b"\0" * (160 * MiB)))


def _lzo_request(packed: bytes) -> bytes:
    """A protocol-2 job whose DOTI body is `packed` as given (LZO or not)."""
    head = encode_request(JobHeader(LZO, ARGV), source=b"")[:-12]  # all but the empty DOTI
    return head + encode_blob(b"DOTI", packed)


def test_an_lzo_bomb_is_refused_while_other_jobs_are_answered(
    tmp_path: Path, ccfarmd, bomb: bytes
) -> None:
    daemon = ccfarmd(jobs=2, extra=("--tmpdir", str(_jobs(tmp_path))))
    outcome: dict[str, bytes] = {}
    bombs = [
        threading.Thread(
            target=lambda i=i: outcome.__setitem__(
                f"bomb{i}", _exchange(daemon.address, daemon.port, bomb)
            )
        )
        for i in range(3)
    ]
    for thread in bombs:
        thread.start()
    # the decompression threads start with the first bomb
    wait_for(lambda: len(os.listdir(f"/proc/{daemon.process.pid}/task")) > 1)
    answered_during = 0
    slowest = 0.0
    began = time.monotonic()
    while any(t.is_alive() for t in bombs):
        asked = time.monotonic()
        reply = _exchange(daemon.address, daemon.port, SMALL)
        slowest = max(slowest, time.monotonic() - asked)
        assert reply.startswith(b"DONE00000002STAT00000000"), reply[:60]
        if any(t.is_alive() for t in bombs):
            answered_during += 1
    for thread in bombs:
        thread.join()
    took = time.monotonic() - began
    print(
        f"{answered_during} small jobs answered in {took:.1f} s of bombs, slowest {slowest:.2f} s"
    )
    # the event loop went on while the bombs were handled (one froze it 7.9 s):
    # a small job is answered during them, or they are refused before one is done
    assert answered_during >= 1 or took < slowest + 1.0
    assert slowest < 5.0
    assert [outcome[f"bomb{i}"] for i in range(3)] == [b""] * 3  # each refused (closed)
    log = Path(daemon.log_path).read_text()
    assert log.count("LZO body expands beyond 134217728 bytes") == 3, log[-2000:]
    assert not job_dirs(_jobs(tmp_path))


def test_half_sent_big_bodies_stay_within_the_memory_budget(tmp_path: Path, ccfarmd) -> None:
    """Three clients declare 150 MiB bodies and send 100 MiB of each, then
    stall: the daemon reads one of them (its 150 MiB are reserved), the
    others wait for room; all are closed at the I/O timeout and the memory
    is given back."""
    daemon = ccfarmd(
        jobs=2,
        extra=("--tmpdir", str(_jobs(tmp_path)), "--max-body", "200", "--body-memory", "256")
        + ("--io-timeout", "4"),
    )
    pid = daemon.process.pid
    base = rss(pid)
    head = _lzo_request(b"")[:-12] + b"DOTI%08x" % (150 * MiB)
    chunk = b"z" * MiB
    peak = [0]
    socks = []
    for _ in range(3):
        sock = socket.create_connection((daemon.address, daemon.port), timeout=30)
        sock.settimeout(0.5)
        sock.sendall(head)
        socks.append(sock)

    def feed(sock: socket.socket) -> None:
        for _ in range(100):
            try:
                sock.sendall(chunk)
            except (TimeoutError, OSError):
                return  # the daemon reads no more (it waits for room): stalled

    feeders = [threading.Thread(target=feed, args=(s,)) for s in socks]
    for thread in feeders:
        thread.start()
    while any(t.is_alive() for t in feeders):
        peak[0] = max(peak[0], rss(pid))
        time.sleep(0.05)
    for _ in range(20):
        peak[0] = max(peak[0], rss(pid))
        time.sleep(0.05)
    assert peak[0] - base < 256 * MiB, (base, peak)
    for sock in socks:  # the daemon closes each (io timeout, or no room in time)
        sock.settimeout(30)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        sock.close()
    print("rss MiB: base", base >> 20, "peak", peak[0] >> 20, "now", rss(pid) >> 20)
    wait_for(lambda: rss(pid) - base < 64 * MiB, timeout=20)
    assert _exchange(daemon.address, daemon.port, SMALL).startswith(b"DONE00000002STAT00000000")


def _pump_request(files: int) -> bytes:
    header = JobHeader(PUMP, (b"gcc", b"-c", b"/src/x.c", b"-o", b"x.o"), b"/src")
    entries = [FileEntry(b"/src/x.c", b"int x;\n")]
    entries += [FileEntry(f"/src/h{i}.h".encode(), b"/* h */\n") for i in range(files)]
    return encode_request(header, files=entries)


def test_out_of_file_descriptors_no_workspace_leaks_and_the_log_stays_small(
    tmp_path: Path, ccfarmd
) -> None:
    # an explicit cap far above what the descriptors allow: EMFILE does happen
    # (the limit is set before it starts: a daemon that gave up root is not
    # this test's to change, without CAP_SYS_RESOURCE)
    daemon = ccfarmd(
        jobs=2,
        extra=("--tmpdir", str(_jobs(tmp_path)), "--max-connections", "2000"),
        limit_files=48,
    )
    request = _pump_request(20)
    stop = time.monotonic() + 6

    def hammer() -> None:
        while time.monotonic() < stop:
            socks = []
            for _ in range(40):
                try:
                    sock = socket.create_connection((daemon.address, daemon.port), timeout=5)
                    sock.setblocking(False)
                    with contextlib.suppress(OSError):
                        sock.send(request)
                    socks.append(sock)
                except OSError:
                    break
            time.sleep(0.2)
            for sock in socks:
                sock.close()

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    wait_for(lambda: not job_dirs(_jobs(tmp_path)), timeout=30)
    log_size = os.path.getsize(daemon.log_path)
    assert log_size < 256 * 1024, log_size  # 6 s of flood: not megabytes
    # once the flood's connections are gone, jobs are served again
    wait_for(
        lambda: _exchange(daemon.address, daemon.port, SMALL).startswith(b"DONE00000002STAT0"),
        timeout=60,
    )
    assert daemon.process.poll() is None


def test_workspaces_left_by_sigkill_are_removed_by_the_next_daemon(tmp_path: Path) -> None:
    address = next_address()
    port = free_port(address)
    extra = ("--tmpdir", str(_jobs(tmp_path)), "--io-timeout", "60")
    daemon = start_daemon(address, port, 1, str(tmp_path), extra=extra)
    try:
        request = _pump_request(5)
        root = _jobs(tmp_path) / f"ccfarmd-{address}-{port}"
        with socket.create_connection((address, port), timeout=10) as sock:
            sock.sendall(request[: len(request) - 20])  # the files are being written
            # the root is claimed once the daemon runs as its own user, maybe
            # only after it answers connections
            # (and its warm pool's workspaces are linked there too, as ready.NAME)
            wait_for(
                lambda: (
                    root.is_dir() and any(not e.name.startswith("ready.") for e in root.iterdir())
                )
            )
            assert daemon.process is not None
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(10)
        assert any(root.iterdir())  # left behind
        again = start_daemon(address, port, 1, str(tmp_path), extra=extra)
        try:
            # (it listens first, then claims the root as its own user)
            log = Path(again.log_path)
            wait_for(lambda: "removed 1 job director" in log.read_text())
            # the workspace and its link (a ready one is made, then linked: wait)
            wait_for(lambda: not job_dirs(_jobs(tmp_path)))
        finally:
            stop_daemon(again)
        assert not root.exists()  # a clean exit removes its directory
    finally:
        stop_daemon(daemon)


# -- the scheduler ---------------------------------------------------------------------


def _scheduler_pid(address: str, port: int) -> int:
    out = subprocess.run(
        ["ss", "-Htlpn", f"src {address}:{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split("pid=")[1].split(",")[0])


def _control(
    address: str, port: int, *messages: bytes, read: int = 1, source: str = "127.0.0.77"
) -> list[str]:
    """Send a hello and messages on a fresh connection (from `source`); the
    kinds of the first `read` answers."""
    with socket.create_connection((address, port), 30, (source, 0)) as sock:
        sock.sendall(hello() + b"".join(messages))
        parser = MessageParser(expect_hello=False)
        got: list[object] = []
        while len(got) < read:
            data = sock.recv(65536)
            assert data, f"closed after {got}"
            parser.receive_data(data)
            got += parser.messages()
        return [msg.kind if msg.kind != m.LEASE_REFUSED else repr(msg) for msg in got]


def test_200000_lease_requests_on_one_connection_are_bounded(scheduler) -> None:
    address, port_text = scheduler("--max-wait", "600", "--host-timeout", "3600").rsplit(":", 1)
    port = int(port_text)
    pid = _scheduler_pid(address, port)
    host = socket.create_connection((address, port), timeout=30)
    report = HostReport("h1", "10.0.0.1", 3632, 1, 1, 1.0, 0.0)
    host.sendall(hello() + m.encode_host_report(report))
    holder = socket.create_connection((address, port), timeout=30)
    holder.sendall(hello() + m.encode_lease_request(LeaseRequest(1, "a/a", None, 600)))
    assert holder.recv(12).startswith(b"LGNT")
    base = rss(pid)

    flood = socket.create_connection((address, port), timeout=30)
    one = m.encode_lease_request(LeaseRequest(1, "f/f", None, 600))
    answers = {"LQUE": 0, "LREF": 0}
    parser = MessageParser(expect_hello=False)

    def read_answers() -> None:
        while sum(answers.values()) < 200_000:
            data = flood.recv(1 << 20)
            if not data:
                return
            parser.receive_data(data)
            for msg in parser.messages():
                answers[msg.kind] = answers.get(msg.kind, 0) + 1

    reader = threading.Thread(target=read_answers)
    reader.start()
    flood.sendall(hello() + one * 200_000)
    # while the flood is answered, others are served
    assert _control(address, port, encode(m.QUERY_HOSTS)) == [m.HOST_LIST]
    reader.join(120)
    assert answers == {"LQUE": 256, "LREF": 200_000 - 256}
    assert _control(address, port, m.encode_lease_request(LeaseRequest(7, "b/b", None, 60))) == [
        m.LEASE_QUEUED
    ]
    assert rss(pid) - base < 64 * MiB
    for sock in (flood, holder, host):
        sock.close()


def test_idle_connections_do_not_keep_others_waiting(scheduler) -> None:
    """1,100 connections that say nothing (the issue: every wrapper job then
    waited 62 s); a client from another address is answered at once, and the
    silent ones are closed after --idle-timeout."""
    address, port_text = scheduler("--idle-timeout", "3").rsplit(":", 1)
    port = int(port_text)
    pid = _scheduler_pid(address, port)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # this test holds 1,100 sockets itself
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle = []
    for _ in range(1100):
        idle.append(socket.create_connection((address, port), timeout=30))
    started = time.monotonic()
    assert _control(address, port, encode(m.QUERY_HOSTS)) == [m.HOST_LIST]
    assert time.monotonic() - started < 5  # no stall (it was 62 s)
    for sock in idle:
        sock.settimeout(30)
        assert sock.recv(10) == b""  # closed by the scheduler
        sock.close()
    wait_for(lambda: open_fds(pid) < 100)
