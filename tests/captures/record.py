"""Re-record the distcc captures in this directory, byte for byte.

    python tests/captures/record.py [NAME ...]     # all of them by default

Each capture is one TCP connection between a distcc client and a distcc
server, passed through `Relay` (below), which writes every byte the client
sent to `NAME.client.bin` and every byte the server sent back to
`NAME.server.bin`; a half-close or a reset is passed on as it came. The
files a client ended up with (`NAME.o`, `.s`, `.d`) are kept beside them.
Most exchanges are real `distcc` (or `distcc-pump`) against real `distccd`
(Debian's packages); the others put ccfarm or a small peer of this script
on one side (see README.md). The client runs in a private mount namespace
(`bwrap`) where its directory is `/src`, so the bytes name no directory of
the recording machine.

Needs: distcc, distccd, distcc-pump, gcc, bwrap, and ccfarm importable (run
it with the project's venv). As root, distccd drops to its own user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))
from ccfarm.protocol.compression import store  # noqa: E402

ADDRESS = "127.0.0.1"
ARGV0 = b"x86_64-linux-gnu-gcc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection((ADDRESS, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Relay:
    """One recorded connection: client -> this port -> `upstream`."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.listener = socket.create_server((ADDRESS, 0))
        self.port = self.listener.getsockname()[1]
        self.sent = {"client": bytearray(), "server": bytearray()}
        self.reset = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(60)
        client, _ = self.listener.accept()
        self.listener.close()
        server = socket.create_connection((ADDRESS, self.upstream))
        ends = [
            threading.Thread(target=self._pump, args=(client, server, "client")),
            threading.Thread(target=self._pump, args=(server, client, "server")),
        ]
        for t in ends:
            t.start()
        for t in ends:
            t.join(120)
        if self.reset:  # close with a reset, as the server did
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        client.close()
        server.close()

    def _pump(self, src: socket.socket, dst: socket.socket, side: str) -> None:
        """Copy one direction. A server's reset is passed on as a reset, but the
        client's bytes are still recorded while it keeps sending (a real client
        writes its whole request before it reads): what it sent is the capture."""
        src.settimeout(0.5)
        sending = True
        while True:
            try:
                data = src.recv(65536)
            except TimeoutError:
                if self.reset:
                    return  # the client has said all it will before reading
                continue
            except OSError:  # reset
                self.reset = True
                return
            if not data:
                if sending:
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)
                return
            self.sent[side] += data
            if sending:
                try:
                    dst.sendall(data)
                except OSError:
                    sending = False

    def save(self, name: str) -> None:
        self.thread.join(120)
        for side, data in self.sent.items():
            (HERE / f"{name}.{side}.bin").write_bytes(bytes(data))


class Distccd:
    def __init__(
        self, *extra: str, allow: str = "127.0.0.1", env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        argv = ["distccd", "--daemon", "--no-detach", "--log-stderr", "--listen", ADDRESS]
        argv += ["--port", str(self.port), "--allow", allow, "--jobs", "2", *extra]
        environ = {**os.environ, "TMPDIR": "/tmp", **(env or {})}
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environ
        )
        wait_listening(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def in_src(work: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` with `work` mounted at /src as its working directory."""
    wrapped = ["bwrap", "--dev-bind", "/", "/", "--bind", str(work), "/src", "--chdir", "/src"]
    return subprocess.run(wrapped + argv, env=env, capture_output=True, timeout=120, check=False)


def client_env(work: Path, hosts: str) -> dict[str, str]:
    state = work.parent / f"state-{time.monotonic_ns()}"
    state.mkdir()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC_", "CCFARM_"))}
    return {
        **keep,
        "DISTCC_HOSTS": hosts,
        "DISTCC_DIR": str(state),
        "CCFARM_DIR": str(state),
        "DISTCC_SKIP_LOCAL_RETRY": "1",
        "CCFARM_HELPER": "0",
        "CCFARM_FALLBACK": "0",
    }


def keep(work: Path, name: str, *files: str) -> None:
    for f in files:
        shutil.copyfile(work / f, HERE / f"{name}{Path(f).suffix}")


def token(name: bytes, value: int) -> bytes:
    return b"%s%08x" % (name, value)


def request(version: int, argv: list[bytes], body: bytes) -> bytes:
    out = [token(b"DIST", version), token(b"ARGC", len(argv))]
    out += [token(b"ARGV", len(a)) + a for a in argv]
    return b"".join(out) + token(b"DOTI", len(body)) + body


def raw_client(port: int, data: bytes, half_close: bool = False) -> bytes:
    with socket.create_connection((ADDRESS, port), timeout=30) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
        return got


def preprocessed(work: Path, source: str) -> bytes:
    return in_src(work, ["gcc", "-E", source], dict(os.environ)).stdout


# -- the scenarios ------------------------------------------------------------------


def distcc_job(
    name: str, option: str, argv: list[str], outputs: tuple[str, ...] = ()
) -> Callable[[Path], None]:
    def scenario(work: Path) -> None:
        daemon = Distccd()
        try:
            relay = Relay(daemon.port)
            env = client_env(work, f"{ADDRESS}:{relay.port}{option}")
            in_src(work, ["distcc", *argv], env)
            relay.save(name)
        finally:
            daemon.stop()
        keep(work, name, *outputs)

    return scenario


def pump_job(name: str, argv: list[str], outputs: tuple[str, ...]) -> Callable[[Path], None]:
    def scenario(work: Path) -> None:
        import lzallright

        daemon = Distccd()
        try:
            relay = Relay(daemon.port)
            env = client_env(work, f"{ADDRESS}:{relay.port},cpp,lzo")
            env["DISTCC_TESTING_INCLUDE_SERVER"] = "1"  # fail rather than fall back to v2
            shim = [
                str(REPO / "tests" / "interop" / "pump_shim"),
                str(Path(lzallright.__file__).parents[1]),
            ]
            env["PYTHONPATH"] = os.pathsep.join(shim)
            proc = in_src(work, ["distcc-pump", "distcc", *argv], env)
            assert proc.returncode == 0, proc.stderr.decode()
            relay.save(name)
        finally:
            daemon.stop()
        keep(work, name, *outputs)

    return scenario


def ccfarm_job(name: str, option: str) -> Callable[[Path], None]:
    """The ccfarm wrapper against real distccd."""

    def scenario(work: Path) -> None:
        daemon = Distccd()
        try:
            relay = Relay(daemon.port)
            env = client_env(work, f"{ADDRESS}:{relay.port}{option}")
            cmd = [
                sys.executable,
                "-m",
                "ccfarm.client.main",
                "gcc",
                "-c",
                "hello.c",
                "-o",
                "hello.o",
            ]
            proc = in_src(work, cmd, env)
            assert proc.returncode == 0, proc.stderr.decode()
            relay.save(name)
        finally:
            daemon.stop()
        keep(work, name, "hello.o")

    return scenario


def rejected_compiler(work: Path) -> None:
    (work / "bin").mkdir()
    os.symlink(shutil.which("gcc") or "gcc", work / "bin" / "mycc")
    daemon = Distccd()
    try:
        relay = Relay(daemon.port)
        env = client_env(work, f"{ADDRESS}:{relay.port}")
        env["PATH"] = f"/src/bin:{env['PATH']}"
        in_src(work, ["distcc", "mycc", "-c", "hello.c", "-o", "hello.o"], env)
        relay.save("f-rejected-compiler")
    finally:
        daemon.stop()


def access_denied(work: Path) -> None:
    daemon = Distccd(allow="10.99.0.0/16")
    try:
        relay = Relay(daemon.port)
        env = client_env(work, f"{ADDRESS}:{relay.port}")
        in_src(work, ["distcc", "gcc", "-c", "hello.c", "-o", "hello.o"], env)
        relay.save("g-access-denied")
    finally:
        daemon.stop()


def store_client(work: Path) -> None:
    """A minimal Python client: protocol 2 with a literal-only LZO body."""
    daemon = Distccd()
    try:
        relay = Relay(daemon.port)
        body = store(preprocessed(work, "hello.c"))
        raw_client(relay.port, request(2, [ARGV0, b"-c", b"hello.i", b"-o", b"store.o"], body))
        relay.save("j2-py-p2-store")
    finally:
        daemon.stop()


def ccfarmd_server(work: Path) -> None:
    """Real distcc against ccfarmd, protocol 2."""
    port = free_port()
    argv = [sys.executable, "-m", "ccfarm.daemon.main", "--no-detach", "--listen", ADDRESS]
    argv += ["--port", str(port), "--allow", "127.0.0.0/8", "--jobs", "2"]
    argv += ["--log-file", str(work.parent / "ccfarmd.log")]
    daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        wait_listening(port)
        relay = Relay(port)
        env = client_env(work, f"{ADDRESS}:{relay.port},lzo")
        proc = in_src(work, ["distcc", "gcc", "-c", "hello.c", "-o", "hello.o"], env)
        assert proc.returncode == 0, proc.stderr.decode()
        relay.save("k-ccfarmd-p2")
    finally:
        daemon.terminate()
        daemon.wait(10)
    keep(work, "k-ccfarmd-p2", "hello.o")


def store_server(work: Path) -> None:
    """Real distcc against a minimal Python server answering with literal-only LZO."""
    from ccfarm.protocol import (
        NEED_DATA,
        JobHeader,
        PreprocessedSource,
        RequestComplete,
        RequestParser,
    )

    listener = socket.create_server((ADDRESS, 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        parser = RequestParser()
        header = source = None
        while True:
            event = parser.next_event()
            if event is NEED_DATA:
                parser.receive_data(conn.recv(65536))
                continue
            if isinstance(event, JobHeader):
                header = event
            elif isinstance(event, PreprocessedSource):
                source = event.data
            elif isinstance(event, RequestComplete):
                break
        assert header is not None and source is not None
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "job.i").write_bytes(source)
            done = subprocess.run(
                ["gcc", "-c", "job.i", "-o", "job.o"], cwd=tmp, capture_output=True
            )
            obj = Path(tmp, "job.o").read_bytes()
        reply = token(b"DONE", 2) + token(b"STAT", done.returncode << 8)
        for name, data in ((b"SERR", done.stderr), (b"SOUT", done.stdout), (b"DOTO", obj)):
            body = store(data)
            reply += token(name, len(body)) + body
        conn.sendall(reply)
        conn.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    relay = Relay(port)
    env = client_env(work, f"{ADDRESS}:{relay.port},lzo")
    proc = in_src(work, ["distcc", "gcc", "-c", "hello.c", "-o", "hello.o"], env)
    assert proc.returncode == 0, proc.stderr.decode()
    relay.save("k2-pyserver-p2-store")
    thread.join(30)
    keep(work, "k2-pyserver-p2-store", "hello.o")


def raw(name: str, data: bytes) -> Callable[[Path], None]:
    def scenario(work: Path) -> None:
        daemon = Distccd()
        try:
            relay = Relay(daemon.port)
            raw_client(relay.port, data)
            relay.save(name)
        finally:
            daemon.stop()

    return scenario


def job_lifetime(work: Path) -> None:
    """distccd --job-lifetime 1 with a compiler that takes 4 s (the allow-list checks names)."""
    slow = work.parent / "slow-bin"
    slow.mkdir()
    script = slow / ARGV0.decode()
    script.write_text('#!/bin/sh\nsleep 4\nexec /usr/bin/x86_64-linux-gnu-gcc "$@"\n')
    script.chmod(0o755)
    for d in (work.parent, slow):
        d.chmod(d.stat().st_mode | stat.S_IRWXU | stat.S_IXOTH | stat.S_IROTH)
    daemon = Distccd("--job-lifetime", "1", env={"DISTCCD_PATH": f"{slow}:/usr/bin"})
    try:
        relay = Relay(daemon.port)
        data = request(1, [ARGV0, b"-c", b"hello.i", b"-o", b"lt.o"], preprocessed(work, "hello.c"))
        raw_client(relay.port, data)
        relay.save("n-job-lifetime")
    finally:
        daemon.stop()


def half_close(work: Path) -> None:
    daemon = Distccd()
    try:
        relay = Relay(daemon.port)
        data = request(1, [ARGV0, b"-c", b"hello.i", b"-o", b"hc.o"], preprocessed(work, "hello.c"))
        raw_client(relay.port, data, half_close=True)
        relay.save("n2-half-close")
    finally:
        daemon.stop()


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "a-p1-plain": distcc_job(
        "a-p1-plain", "", ["gcc", "-c", "hello.c", "-o", "hello.o"], ("hello.o",)
    ),
    "b-p2-lzo": distcc_job(
        "b-p2-lzo", ",lzo", ["gcc", "-c", "hello.c", "-o", "hello.o"], ("hello.o",)
    ),
    "c-p1-error": distcc_job("c-p1-error", "", ["gcc", "-c", "syntax_error.c", "-o", "e.o"]),
    "c2-p2-error": distcc_job("c2-p2-error", ",lzo", ["gcc", "-c", "syntax_error.c", "-o", "e.o"]),
    "d-p1-warning": distcc_job(
        "d-p1-warning", "", ["gcc", "-Wall", "-c", "warning.c", "-o", "warning.o"], ("warning.o",)
    ),
    "d2-p2-warning": distcc_job(
        "d2-p2-warning",
        ",lzo",
        ["gcc", "-Wall", "-c", "warning.c", "-o", "warning.o"],
        ("warning.o",),
    ),
    "e-p3-pump": pump_job(
        "e-p3-pump", ["gcc", "-c", "pump_hello.c", "-o", "pump_hello.o"], ("pump_hello.o",)
    ),
    "e2-p3-pump-md": pump_job(
        "e2-p3-pump-md",
        ["gcc", "-MD", "-c", "pump_hello.c", "-o", "pump_hello.o"],
        ("pump_hello.o", "pump_hello.d"),
    ),
    "f-rejected-compiler": rejected_compiler,
    "g-access-denied": access_denied,
    "h-p1-cpp-fail": distcc_job(
        "h-p1-cpp-fail", "", ["gcc", "-c", "cpp_fail.c", "-o", "cpp_fail.o"]
    ),
    "i-p1-debug": distcc_job(
        "i-p1-debug", "", ["gcc", "-g", "-c", "hello.c", "-o", "hello.o"], ("hello.o",)
    ),
    "j-ccfarm-p2": ccfarm_job("j-ccfarm-p2", ",lzo"),
    "j2-py-p2-store": store_client,
    "j3-ccfarm-p3": ccfarm_job("j3-ccfarm-p3", ",cpp,lzo"),
    "k-ccfarmd-p2": ccfarmd_server,
    "k2-pyserver-p2-store": store_server,
    "l-raw-bad-version": raw("l-raw-bad-version", token(b"DIST", 4) + token(b"ARGC", 0)),
    "l2-raw-garbage": raw("l2-raw-garbage", b"GET / HTTP/1.0\r\n\r\n"),
    "m-p1-strip-args": distcc_job(
        "m-p1-strip-args",
        "",
        [
            "gcc",
            "-O2",
            "-DNAME=1",
            "-I.",
            "-include",
            "pump_hello.h",
            "-MD",
            "-MF",
            "hello.d",
            "-c",
            "hello.c",
        ],
        ("hello.o",),
    ),
    "n-job-lifetime": job_lifetime,
    "n2-half-close": half_close,
    "o-p1-dash-S": distcc_job(
        "o-p1-dash-S", "", ["gcc", "-S", "hello.c", "-o", "hello.s"], ("hello.s",)
    ),
}


def main(names: list[str]) -> int:
    for tool in ("distcc", "distccd", "distcc-pump", "gcc", "bwrap"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    for name in names or list(SCENARIOS):
        with tempfile.TemporaryDirectory(prefix="ccfarm-capture-") as tmp:
            top = Path(tmp)
            top.chmod(0o755)
            work = top / "src"
            shutil.copytree(HERE / "sources", work)
            work.chmod(0o777)  # distccd's own user writes nothing here, the client does
            SCENARIOS[name](work)
        sizes = [(HERE / f"{name}.{s}.bin").stat().st_size for s in ("client", "server")]
        print(f"{name}: client {sizes[0]} bytes, server {sizes[1]} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
