"""Load against a real 4-slot ccfarmd, in modest sizes (bench/bounds_load.py
has the full ones and the soak): idle connections and many jobs at once.
Every job is answered correctly or refused cleanly, descriptors and memory
stay bounded, and the idle connections are closed after --idle-timeout."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
from pathlib import Path

from ccfarm.protocol import LZO, JobHeader, ReplyParser, encode_request
from ccfarm.protocol.events import NEED_DATA, CompileStatus, ObjectFile
from tests.conftest import job_dirs, wait_for

JOB = encode_request(
    JobHeader(LZO, (b"gcc", b"-c", b"x.c", b"-o", b"x.o")), source=b"int x = 42;\n"
)
MiB = 1 << 20


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def _job(address: str, port: int, source: str) -> str:
    """ "ok" (status 0 and an object), "refused" (closed or reset), else what came."""
    try:
        with socket.create_connection((address, port), 120, (source, 0)) as sock:
            sock.sendall(JOB)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return "refused"
    if not data:
        return "refused"
    parser = ReplyParser(LZO)
    parser.receive_data(data)
    parser.receive_eof()
    status, obj = None, b""
    while (event := parser.next_event()) is not NEED_DATA:
        if isinstance(event, CompileStatus):
            status = event.wait_status
        elif isinstance(event, ObjectFile):
            obj = event.data
    return "ok" if status == 0 and obj.startswith(b"\x7fELF") else repr(data[:80])


def test_idle_connections_and_a_burst_of_jobs_on_a_4_slot_daemon(daemon_dir: Path, ccfarmd) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1024), hard))
    jobs_dir = daemon_dir  # (one the daemon's user may use once it gave up root)
    extra = ("--tmpdir", str(jobs_dir), "--idle-timeout", "3", "--max-connections", "300")
    daemon = ccfarmd(jobs=4, extra=extra)
    pid = daemon.process.pid
    base = _rss(pid)
    idle = []
    # 8 addresses x 50: the total cap (300) is reached; jobs then push out the
    # connections that have not said a word
    for i in range(400):
        with contextlib.suppress(OSError):
            source = (f"127.0.8.{i % 8 + 1}", 0)
            idle.append(socket.create_connection((daemon.address, daemon.port), 10, source))
    wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) >= 250)
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(
                _job(daemon.address, daemon.port, f"127.0.9.{i % 20 + 1}")
            )
        )
        for i in range(60)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) <= {"ok", "refused"}, set(results)
    assert results.count("ok") >= 4
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    assert fds <= 300 + 64, fds  # the connection cap, and the daemon's own
    assert _rss(pid) - base < 100 * MiB
    # the idle ones are closed by the daemon after its idle timeout
    for sock in idle:
        sock.settimeout(30)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
        sock.close()
    wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) < 40)
    assert _job(daemon.address, daemon.port, "127.0.9.99") == "ok"
    wait_for(lambda: not job_dirs(jobs_dir))
    log = Path(daemon.log_path).read_text()
    assert "Traceback" not in log
