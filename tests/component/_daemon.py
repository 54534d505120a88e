"""A daemon under test, its fake compiler and the clients of its job port.

`DaemonRig` runs a real `DaemonService` with no listening socket; its
compiles go to `FakeCompiler` (the service's `spawn` seam), which starts
nothing: a job "compiles" after `duration` virtual seconds (or when the
test calls `finish()` on it, with `hold`), writing an object made of its
input and, for pump jobs, a dependency file naming the mirrored files.
Every record the service logs is kept in `rig.logs`; closing the rig
fails the test if the service logged an internal error or left a job
directory behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from ccfarm._record import record
from ccfarm.daemon.compilers import CompilerAllowList
from ccfarm.daemon.config import DaemonConfig
from ccfarm.daemon.job import CompilePlan
from ccfarm.daemon.service import DaemonService
from ccfarm.protocol import (
    NEED_DATA,
    PLAIN,
    CompileStatus,
    DepsFile,
    JobHeader,
    ObjectFile,
    ReplyComplete,
    ReplyParser,
    Stderr,
    Stdout,
    encode_request,
)
from tests.component._streams import CLIENT, connect

ALLOWED = ("192.0.2.0/24",)


def plain_request(argv: str = "gcc -O2 -c x.c -o x.o", source: bytes = b"int x;\n") -> bytes:
    header = JobHeader(PLAIN, tuple(a.encode() for a in argv.split()))
    return encode_request(header, source=source)


@record
class Reply:
    wait_status: int
    stderr: bytes
    stdout: bytes
    obj: bytes
    deps: bytes | None


def parse_reply(data: bytes, version: int) -> Reply:
    parser = ReplyParser(version)
    parser.receive_data(data)
    parser.receive_eof()
    fields: dict[str, Any] = {"deps": None}
    names = {Stderr: "stderr", Stdout: "stdout", ObjectFile: "obj", DepsFile: "deps"}
    while not isinstance(event := parser.next_event(), ReplyComplete):
        assert event is not NEED_DATA, "the reply is incomplete"
        if isinstance(event, CompileStatus):
            fields["wait_status"] = event.wait_status
        elif isinstance(event, Stderr | Stdout | ObjectFile | DepsFile):
            fields[names[type(event)]] = event.data
    return Reply(**fields)


class FakeCompile:
    """One started compile: what it was asked, and what happened to it."""

    def __init__(self, plan: CompilePlan, nice: int, compiler: FakeCompiler) -> None:
        self.plan = plan
        self.nice = nice
        self.niced_to = nice
        self.killed = False
        self._code: int | None = None
        self._result = (b"", b"")
        self._done = asyncio.Event()
        self.inputs = {a: Path(plan.cwd, a).read_bytes() for a in plan.argv[1:] if _file(plan, a)}
        #: the client's files as mirrored when it started (pump jobs): path -> content
        self.mirrored = {
            "/" + str(p.relative_to(plan.root)): p.read_bytes()
            for p in (Path(plan.root).rglob("*") if plan.root else ())
            if p.is_file()
        }
        if not compiler.hold:
            loop = asyncio.get_running_loop()
            loop.call_later(compiler.duration, self.finish, *compiler.result)

    @property
    def returncode(self) -> int | None:
        return self._code

    def option(self, flag: str) -> str:
        return self.plan.argv[self.plan.argv.index(flag) + 1]

    def finish(self, returncode: int = 0, stdout: bytes = b"", stderr: bytes = b"") -> None:
        if self._done.is_set():
            return
        if returncode == 0:
            Path(self.plan.cwd, self.option("-o")).write_bytes(
                b"OBJ\n" + b"".join(self.inputs.values())
            )
            if "-MF" in self.plan.argv:
                deps = " ".join(os.path.join(self.plan.cwd, a) for a in self.inputs)
                Path(self.option("-MF")).write_text(f"{self.option('-o')}: {deps}\n")
        self._code, self._result = returncode, (stdout, stderr)
        self._done.set()

    async def communicate(self) -> tuple[bytes, bytes]:
        await self._done.wait()
        return self._result

    def kill(self) -> None:
        self.killed = True
        if not self._done.is_set():
            self._code = -9
            self._done.set()

    def renice(self, nice: int) -> None:
        self.niced_to = max(self.niced_to, nice)


def _file(plan: CompilePlan, arg: str) -> bool:
    return not arg.startswith("-") and os.path.isfile(os.path.join(plan.cwd, arg))


class FakeCompiler:
    """The service's `spawn`: records each compile, starts no process."""

    def __init__(self) -> None:
        self.started: list[FakeCompile] = []
        self.hold = False  # compiles wait for the test's finish()
        self.duration = 0.5  # virtual seconds a compile takes otherwise
        self.result: tuple[int, bytes, bytes] = (0, b"", b"")

    async def __call__(self, plan: CompilePlan, nice: int) -> FakeCompile:
        job = FakeCompile(plan, nice, self)
        self.started.append(job)
        return job


class JobClient:
    """A distcc client's connection to the rig's daemon."""

    def __init__(self, rig: DaemonRig, address: tuple[str, int] | None, limit: int) -> None:
        self.reader, self.writer, self.server = connect(
            rig.service.handle_connection, client=address, limit=limit
        )

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def received(self) -> bytes:
        """Everything the daemon sent, once it has closed the connection."""
        data = await self.reader.read()
        await self.server
        return data

    async def reply(self, version: int = PLAIN) -> Reply:
        data = await self.received()
        assert data, "the daemon closed the connection without a reply"
        return parse_reply(data, version)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class DaemonRig:
    def __init__(
        self,
        tmp_path: Path,
        env: dict[str, str] | None = None,
        secret: bytes | None = None,
        cpus: int | None = None,
        **config: Any,
    ) -> None:
        """`config`: DaemonConfig's fields; `secret`: the farm secret; `cpus`:
        the host's (default: this machine's)."""
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for name in ("gcc", "cc"):  # never run: the allow-list only checks they exist
            (bindir / name).write_text("#!/bin/false\n")
            (bindir / name).chmod(0o755)
        self.jobs_dir = tmp_path / "jobs"
        self.jobs_dir.mkdir()
        values: dict[str, Any] = {"allow": ALLOWED, "jobs": 2, "io_timeout": 60.0}
        values.update(config, tmpdir=str(self.jobs_dir))
        compilers = CompilerAllowList(frozenset({"gcc", "cc", "clang"}), (str(bindir),))
        self.compiler = FakeCompiler()
        self.service = DaemonService(
            DaemonConfig(**values),
            compilers,
            env={"PATH": "/usr/bin:/bin", "LANG": "C"} if env is None else env,
            spawn=self.compiler,
            secret=secret,
            cpus=cpus,
        )
        self.clients: list[JobClient] = []
        self._log = logging.getLogger("ccfarmd")
        self._records = _Records()

    async def __aenter__(self) -> DaemonRig:
        self._level = self._log.level
        self._log.setLevel(logging.DEBUG)
        self._log.addHandler(self._records)
        return self

    async def __aexit__(self, failed: type[BaseException] | None, *_: object) -> None:
        try:
            if failed is not None:  # the test's own error tells; nothing more to wait for
                for client in self.clients:
                    client.server.cancel()
                    client.writer.close()
                return
            for client in self.clients:
                client.writer.close()
                await client.server
            errors = [r for r in self._records.records if r.levelno >= logging.ERROR]
            assert not errors, [r.getMessage() for r in errors]
            assert os.listdir(self.jobs_dir) == [], "a job directory was left behind"
        finally:
            self._log.removeHandler(self._records)
            self._log.setLevel(self._level)

    def client(self, address: tuple[str, int] | None = CLIENT, *, limit: int = 2**16) -> JobClient:
        client = JobClient(self, address, limit)
        self.clients.append(client)
        return client

    async def job(self, request: bytes, version: int = PLAIN) -> Reply:
        client = self.client()
        client.send(request)
        return await client.reply(version)

    def logs(self, level: int = logging.INFO) -> list[str]:
        return [r.getMessage() for r in self._records.records if r.levelno == level]
