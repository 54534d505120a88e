"""Hostile or broken requests: a clear refusal (a close), no crash, no leftovers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ccfarm.protocol import PLAIN, JobHeader, encode_request
from tests.conftest import job_dirs, wait_for


def _exchange(address: str, port: int, data: bytes, *, eof: bool = False) -> bytes:
    with socket.create_connection((address, port), timeout=20) as sock:
        try:
            sock.sendall(data)
            if eof:
                sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            return b"<reset>"
    return reply


def _request(argv: list[str], source: bytes = b"int x;\n") -> bytes:
    return encode_request(JobHeader(PLAIN, tuple(a.encode() for a in argv)), source=source)


GOOD = _request(["gcc", "-c", "x.c", "-o", "x.o"])

BAD_REQUESTS = {
    "garbage": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "binary-noise": bytes(range(256)) * 4,
    "bad-version": b"DIST00000004ARGC00000001",
    "truncated": GOOD[: len(GOOD) // 2],
    "absurd-length": b"DIST00000001ARGC00000001ARGVfffffff0",
    "absurd-argc": b"DIST00000001ARGCffffffff",
    "compiler-not-allowed": _request(["/bin/sh", "-c", "x.c", "-o", "x.o"]),
    "compiler-unknown": _request(["evilcc", "-c", "x.c", "-o", "x.o"]),
    "compiler-path": _request(["/tmp/gcc", "-c", "x.c", "-o", "x.o"]),
    "fplugin": _request(["gcc", "-fplugin=/tmp/evil.so", "-c", "x.c", "-o", "x.o"]),
    "specs": _request(["gcc", "-specs=/tmp/evil.specs", "-c", "x.c", "-o", "x.o"]),
    "B-prefix": _request(["gcc", "-B/tmp/evil/", "-c", "x.c", "-o", "x.o"]),
    "wrapper": _request(["gcc", "-wrapper", "/bin/sh", "-c", "x.c", "-o", "x.o"]),
    "response-file": _request(["gcc", "@/etc/passwd", "-c", "x.c", "-o", "x.o"]),
    "link-not-compile": _request(["gcc", "x.c", "-o", "x"]),
    "two-sources": _request(["gcc", "-c", "x.c", "y.c"]),
    "bad-lzo": b"DIST00000002ARGC00000003ARGV00000003gccARGV00000002-cARGV00000003x.c"
    b"DOTI00000008\xff\xff\xff\xff\xff\xff\xff\xff",
    "pump-path-escape": b"DIST00000003CDIR00000004/tmpARGC00000003ARGV00000003gcc"
    b"ARGV00000002-cARGV00000003x.cNFIL00000001NAME0000000f/tmp/../etc/pw"
    b"FILE00000000",
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_refused_and_daemon_keeps_serving(name: str, daemon_dir: Path, ccfarmd) -> None:
    work = daemon_dir
    daemon = ccfarmd(extra=("--tmpdir", str(work), "--io-timeout", "3"))
    reply = _exchange(daemon.address, daemon.port, BAD_REQUESTS[name], eof=True)
    assert reply in (b"", b"<reset>"), reply[:80]
    good = _exchange(daemon.address, daemon.port, GOOD)
    assert good.startswith(b"DONE00000001STAT00000000")
    wait_for(lambda: not job_dirs(work))
    log = Path(daemon.log_path).read_text()
    assert "Traceback" not in log and "internal error" not in log


def test_silent_client_times_out(daemon_dir: Path, ccfarmd) -> None:
    work = daemon_dir
    daemon = ccfarmd(extra=("--tmpdir", str(work), "--io-timeout", "1"))
    with socket.create_connection((daemon.address, daemon.port), timeout=20) as sock:
        sock.sendall(GOOD[:20])
        assert sock.recv(100) == b""  # closed by the daemon after its I/O timeout
    assert _exchange(daemon.address, daemon.port, GOOD).startswith(b"DONE00000001")
    wait_for(lambda: not job_dirs(work))


def test_client_outside_allow_list(tmp_path: Path, ccfarmd) -> None:
    daemon = ccfarmd(allow=("10.99.0.0/16",))
    assert _exchange(daemon.address, daemon.port, GOOD) in (b"", b"<reset>")
    wait_for(lambda: "denied by access list" in Path(daemon.log_path).read_text())


def test_no_allow_means_nobody(tmp_path: Path, ccfarmd) -> None:
    daemon = ccfarmd(allow=())
    assert _exchange(daemon.address, daemon.port, GOOD) in (b"", b"<reset>")
