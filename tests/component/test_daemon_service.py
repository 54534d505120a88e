"""The daemon's asyncio shell over in-memory job connections, on virtual time.

The compiler is a fake (the service's `spawn` seam), so these cover the
distcc protocol side: what is asked of the compiler, what is answered, the
limits, the access checks and the error paths. Real compiles are the
integration tier's.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from ccfarm.daemon.service import EXIT_TIMEOUT, EXPRESS_NICE
from ccfarm.protocol import (
    CCFARM,
    CCFARM_CPP,
    LZO,
    PLAIN,
    PUMP,
    FileEntry,
    JobHeader,
    LinkEntry,
    encode_request,
)
from ccfarm.protocol.compression import is_stored
from tests.component._daemon import DaemonRig, parse_reply, plain_request
from tests.component._loop import idle, now
from tests.unit.conftest import walk_tokens

ARGV = tuple(b"gcc -O2 -c x.c -o x.o".split())
SOURCE = b"int x = 1;\n"


def pump_request(version: int = PUMP, env: tuple[bytes, ...] = ()) -> bytes:
    header = JobHeader(version, tuple(b"gcc -c x.c -o x.o".split()), b"/home/u/src", env)
    files = [
        FileEntry(b"/home/u/src/x.c", b'#include "x.h"\nint x;\n'),
        FileEntry(b"/home/u/src/x.h", b"extern int x;\n"),
    ]
    return encode_request(header, files=files)


# -- jobs that compile -------------------------------------------------------------------


@pytest.mark.parametrize("version", [PLAIN, LZO])
async def test_a_preprocessed_job_is_compiled_and_answered(tmp_path: Path, version: int) -> None:
    async with DaemonRig(tmp_path) as rig:
        reply = await rig.job(encode_request(JobHeader(version, ARGV), source=SOURCE), version)
        assert (reply.wait_status, reply.obj, reply.deps) == (0, b"OBJ\n" + SOURCE, None)
        (compile_,) = rig.compiler.started
        plan = compile_.plan
        assert plan.program == str(tmp_path / "bin" / "gcc")  # the host's gcc, by name
        assert plan.argv[:3] == ("gcc", "-O2", "-c")
        assert compile_.option("-o").startswith(str(rig.jobs_dir))
        assert plan.env["TMPDIR"] == plan.cwd  # its private directory
        assert compile_.nice == 0
        assert rig.service.jobs_done == 1 and rig.service.running == 0


@pytest.mark.parametrize("stored", [True, False])
async def test_the_reply_comes_stored_when_the_request_came_stored(
    tmp_path: Path, stored: bool
) -> None:
    """A client that sends its bodies stored (ccfarm's default, as fast as the
    link) is answered stored; one that packs them (a real distcc) packed."""
    source = b"int table[] = {" + b"1, 2, 3, " * 2000 + b"};\n"  # (packs well)
    async with DaemonRig(tmp_path) as rig:
        request = encode_request(JobHeader(LZO, ARGV), source=source, stored=stored)
        client = rig.client()
        client.send(request)
        data = await client.received()
    reply = parse_reply(data, LZO)
    assert reply.wait_status == 0 and reply.obj == b"OBJ\n" + source
    (obj,) = [p for n, _, p in walk_tokens(data) if n == b"DOTO"]
    assert is_stored(obj) == stored
    assert len(obj) > len(source) if stored else len(obj) < len(source) // 10


async def test_a_big_packed_reply_is_packed_off_the_event_loop(tmp_path: Path) -> None:
    """The packer runs at 10-40 MB/s: a big object would hold every other
    connection for tens of milliseconds."""
    source = b"int big[] = {" + b"7, " * 100_000 + b"};\n"
    async with DaemonRig(tmp_path) as rig:
        bounds = rig.service.bounds
        calls: list[object] = []

        async def spy(work: Any, *args: object) -> Any:  # (virtual time: no threads)
            calls.append(work)
            return work(*args)

        bounds.off_loop = spy  # type: ignore[method-assign]
        small = encode_request(JobHeader(LZO, ARGV), source=SOURCE)
        assert (await rig.job(small, LZO)).obj == b"OBJ\n" + SOURCE
        assert not calls  # a small reply: packed at once
        big = encode_request(JobHeader(LZO, ARGV), source=source)
        assert (await rig.job(big, LZO)).obj == b"OBJ\n" + source
        assert len(calls) == 1  # the reply (the request's body: inflated at once)
        stored = encode_request(JobHeader(LZO, ARGV), source=source, stored=True)
        assert (await rig.job(stored, LZO)).obj == b"OBJ\n" + source
        assert len(calls) == 1  # (stored bodies: a copy, done at once)


async def test_a_pump_job_mirrors_the_files_and_answers_in_the_clients_paths(
    tmp_path: Path,
) -> None:
    async with DaemonRig(tmp_path) as rig:
        reply = await rig.job(pump_request(), PUMP)
        (compile_,) = rig.compiler.started
        root = compile_.plan.root
        assert root is not None and compile_.plan.cwd == root + "/home/u/src"
        assert compile_.plan.argv[1] == f"-ffile-prefix-map={root}="
        assert compile_.inputs == {"x.c": b'#include "x.h"\nint x;\n'}
        assert compile_.mirrored == {
            "/home/u/src/x.c": b'#include "x.h"\nint x;\n',
            "/home/u/src/x.h": b"extern int x;\n",
        }
        assert reply.wait_status == 0
        assert reply.obj == b'OBJ\n#include "x.h"\nint x;\n'
        assert reply.deps == b"x.o: /home/u/src/x.c\n"  # the root is gone, the target is x.o


async def test_compiler_messages_name_the_clients_paths(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        rig.compiler.hold = True
        client = rig.client()
        client.send(pump_request())
        await idle()
        (compile_,) = rig.compiler.started
        warning = f"{compile_.plan.cwd}/x.c:2:5: warning: unused\n".encode()
        compile_.finish(0, stdout=b"out\n", stderr=warning)
        reply = await client.reply(PUMP)
        assert reply.stderr == b"/home/u/src/x.c:2:5: warning: unused\n"
        assert reply.stdout == b"out\n"


async def test_only_the_client_variables_that_matter_reach_the_compiler(tmp_path: Path) -> None:
    env = (b"LANG=de_DE.UTF-8", b"SOURCE_DATE_EPOCH=1", b"LD_PRELOAD=/tmp/evil.so")
    async with DaemonRig(tmp_path, env={"PATH": "/usr/bin", "LANG": "C", "LC_ALL": "C"}) as rig:
        reply = await rig.job(pump_request(CCFARM, env), CCFARM)
        assert reply.wait_status == 0
        plan_env = rig.compiler.started[0].plan.env
        assert plan_env["LANG"] == "de_DE.UTF-8" and plan_env["SOURCE_DATE_EPOCH"] == "1"
        assert "LC_ALL" not in plan_env  # the client's locale, not a mix with the host's
        assert "LD_PRELOAD" not in plan_env
        assert plan_env["PATH"] == "/usr/bin"


async def test_a_failed_compile_answers_its_status_and_no_object(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        rig.compiler.result = (1, b"", b"x.c:1: error: oops\n")
        reply = await rig.job(plain_request())
        assert reply.wait_status == 1 << 8
        assert reply.stderr == b"x.c:1: error: oops\n"
        assert reply.obj == b""


async def test_a_compiler_killed_by_a_signal_answers_that_signal(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        rig.compiler.result = (-11, b"", b"")
        reply = await rig.job(plain_request())
        assert reply.wait_status == 11


async def test_compile_time_is_counted_for_the_speed_estimate(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        rig.compiler.duration = 3.0
        await rig.job(plain_request())
        await rig.job(plain_request())
        assert rig.service.compile_seconds == pytest.approx(6.0)


@pytest.mark.parametrize(("cpus", "counted"), [(1, 3.0), (2, 6.0)])
async def test_compiles_beyond_the_cpus_count_the_share_of_a_cpu_they_could_have(
    tmp_path: Path, cpus: int, counted: float
) -> None:
    # two slots: on one CPU each of two 3 s compiles could have had half of
    # it, so 3 CPU seconds were due in all (the refined speed divides the
    # compilers' CPU time by this, and so does not halve for our own contention)
    async with DaemonRig(tmp_path, cpus=cpus, jobs=2) as rig:
        rig.compiler.duration = 3.0
        await asyncio.gather(rig.job(plain_request()), rig.job(plain_request()))
        assert rig.service.compile_seconds == pytest.approx(counted)


async def test_a_request_arriving_byte_by_byte_is_understood(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        client = rig.client()
        for byte in plain_request():
            client.send(bytes([byte]))
            await idle()
        assert (await client.reply()).wait_status == 0


# -- limits ------------------------------------------------------------------------------


async def test_jobs_beyond_the_slots_wait_for_one(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, jobs=1) as rig:
        rig.compiler.hold = True
        first, second = rig.client(), rig.client()
        first.send(plain_request())
        second.send(plain_request())
        await idle()
        assert len(rig.compiler.started) == 1 and rig.service.running == 1
        rig.compiler.started[0].finish()
        assert (await first.reply()).wait_status == 0
        await idle()
        assert len(rig.compiler.started) == 2
        rig.compiler.started[1].finish()
        assert (await second.reply()).wait_status == 0


async def test_a_full_queue_refuses_new_jobs_at_once(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, jobs=1, queue=1) as rig:
        rig.compiler.hold = True
        running, queued, refused = rig.client(), rig.client(), rig.client()
        running.send(plain_request())
        queued.send(plain_request())
        await idle()
        refused.send(plain_request())
        assert await refused.received() == b""
        assert any("too many jobs waiting" in line for line in rig.logs(30))
        for i, client in enumerate((running, queued)):
            await idle()
            rig.compiler.started[i].finish()
            assert (await client.reply()).wait_status == 0
        assert len(rig.compiler.started) == 2


async def test_a_job_past_its_lifetime_is_killed_and_answered(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, jobs=1, job_lifetime=30.0) as rig:
        rig.compiler.hold = True  # a compiler that never ends
        client = rig.client()
        sent = now()
        client.send(plain_request())
        reply = await client.reply()
        assert now() - sent == pytest.approx(30.0)
        assert rig.compiler.started[0].killed
        assert reply.wait_status == EXIT_TIMEOUT << 8
        assert b"took too long" in reply.stderr and reply.obj == b""
        assert rig.service.running == 0
        rig.compiler.hold = False  # the slot is free again
        assert (await rig.job(plain_request())).wait_status == 0


async def test_an_express_job_starts_at_once_and_the_others_go_nicer(tmp_path: Path) -> None:
    express_env = (b"CCFARM_PRIORITY=express",)
    express = encode_request(JobHeader(CCFARM_CPP, ARGV, None, express_env), source=SOURCE)
    async with DaemonRig(tmp_path, jobs=1) as rig:
        rig.compiler.hold = True
        plain, fast, later = rig.client(), rig.client(), rig.client()
        plain.send(plain_request())
        await idle()
        fast.send(express)
        await idle()
        assert len(rig.compiler.started) == 2  # beyond the one slot
        niced = os.getpriority(os.PRIO_PROCESS, 0) + EXPRESS_NICE
        assert rig.compiler.started[0].niced_to == min(19, niced)
        assert rig.compiler.started[1].nice == 0

        later.send(plain_request())  # waits for the slot; starts nicer while express runs
        await idle()
        rig.compiler.started[0].finish()
        assert (await plain.reply()).wait_status == 0
        await idle()
        assert rig.compiler.started[2].nice == EXPRESS_NICE
        rig.compiler.started[1].finish()
        rig.compiler.started[2].finish()
        assert (await fast.reply(CCFARM_CPP)).wait_status == 0
        assert (await later.reply()).wait_status == 0


# -- who may connect -----------------------------------------------------------------------


@pytest.mark.parametrize("address", [("203.0.113.5", 40000), None], ids=["outside", "unknown"])
async def test_a_client_not_on_the_allow_list_is_closed_unanswered(
    tmp_path: Path, address: tuple[str, int] | None
) -> None:
    async with DaemonRig(tmp_path) as rig:
        client = rig.client(address)
        client.send(plain_request())
        assert await client.received() == b""
        assert rig.compiler.started == []
        assert any("denied by access list" in line for line in rig.logs(30))


async def test_a_draining_daemon_refuses_new_jobs_and_finishes_running_ones(
    tmp_path: Path,
) -> None:
    async with DaemonRig(tmp_path) as rig:
        rig.compiler.hold = True
        running = rig.client()
        running.send(plain_request())
        await idle()
        rig.service.drain()
        late = rig.client()
        late.send(plain_request())
        assert await late.received() == b""
        stopped = asyncio.ensure_future(rig.service.serve_until_drained())
        await idle()
        assert not stopped.done()  # waits for the running job
        rig.compiler.started[0].finish()
        assert (await running.reply()).wait_status == 0
        await stopped
        assert len(rig.compiler.started) == 1


# -- bad requests ----------------------------------------------------------------------------


def _pump(argv: bytes, *entries: FileEntry | LinkEntry) -> bytes:
    return encode_request(JobHeader(PUMP, tuple(argv.split()), b"/src"), files=entries)


BAD_REQUESTS = {
    "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "noise": bytes(range(256)),
    "bad-version": b"DIST00000004ARGC00000001",
    "absurd-length": b"DIST00000001ARGC00000001ARGVfffffff0",
    "compiler-not-allowed": plain_request("sh -c x.c -o x.o"),
    "compiler-path": plain_request("/tmp/gcc -c x.c -o x.o"),
    "compiler-not-installed": plain_request("clang -c x.c -o x.o"),
    "fplugin": plain_request("gcc -fplugin=/tmp/evil.so -c x.c -o x.o"),
    "link-not-compile": plain_request("gcc x.c -o x"),
    "bad-lzo": b"DIST00000002ARGC00000003ARGV00000003gccARGV00000002-cARGV00000003x.c"
    b"DOTI00000008\xff\xff\xff\xff\xff\xff\xff\xff",
    "path-escape": _pump(b"gcc -c x.c", FileEntry(b"/src/../etc/passwd", b"")),
    "duplicate-file": _pump(
        b"gcc -c x.c", FileEntry(b"/src/x.c", b""), FileEntry(b"/src/x.c", b"")
    ),
    "write-through-link": _pump(
        b"gcc -c x.c", LinkEntry(b"/src/d", b"/etc"), FileEntry(b"/src/d/passwd", b"")
    ),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
async def test_a_bad_request_is_closed_unanswered_and_leaves_nothing(
    tmp_path: Path, name: str
) -> None:
    async with DaemonRig(tmp_path) as rig:
        client = rig.client()
        client.send(BAD_REQUESTS[name])
        client.writer.write_eof()
        assert await client.received() == b""
        assert rig.compiler.started == []
        warnings = rig.logs(30)
        assert len(warnings) == 1 and warnings[0].startswith("job from 192.0.2.10:40000 failed")
        assert (await rig.job(plain_request())).wait_status == 0  # and it keeps serving


async def test_a_client_closing_before_a_request_is_not_an_error(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        client = rig.client()
        client.writer.write_eof()
        assert await client.received() == b""
        assert rig.logs(30) == []


async def test_an_idle_client_is_closed_after_idle_timeout(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, io_timeout=60.0, idle_timeout=10.0) as rig:
        opened = now()
        client = rig.client()
        assert await client.received() == b""
        assert now() - opened == pytest.approx(10.0)
        assert rig.logs(30) == ["job from 192.0.2.10:40000 failed: TimeoutError"]


async def test_a_half_sent_request_is_closed_after_io_timeout(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, io_timeout=60.0) as rig:
        request = pump_request()
        client = rig.client()
        client.send(request[: len(request) - 10])
        await asyncio.sleep(30)
        assert os.listdir(rig.jobs_dir) != []  # its files were being received
        client.send(request[-10:-5])  # a trickle resets the timeout
        stalled = now()
        assert await client.received() == b""
        assert now() - stalled == pytest.approx(60.0)
        assert rig.compiler.started == []


async def test_a_client_closing_mid_request_leaves_nothing(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        request = pump_request()
        client = rig.client()
        client.send(request[: len(request) // 2])
        client.writer.close()
        await client.server
        assert rig.compiler.started == []
        assert any("failed" in line for line in rig.logs(30))


async def test_a_client_gone_during_the_compile_gets_it_killed(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, jobs=1) as rig:
        rig.compiler.hold = True
        client = rig.client()
        client.send(plain_request())
        await idle()
        client.writer.close()  # make was interrupted
        await client.server
        assert rig.compiler.started[0].killed
        assert rig.service.running == 0 and rig.service.jobs_done == 0
        assert any("client disconnected" in line for line in rig.logs(30))
        rig.compiler.hold = False
        assert (await rig.job(plain_request())).wait_status == 0  # the slot came back


async def test_a_client_that_does_not_read_the_reply_times_out(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, io_timeout=60.0) as rig:
        client = rig.client(limit=1024)  # pauses the daemon's writes at 2 KiB unread
        big = bytes(range(256)) * 256
        client.send(plain_request(source=big))
        await idle()
        finished = now()
        await client.server  # the daemon gives up on it
        assert now() - finished == pytest.approx(60.5)  # compile (0.5 s), then io_timeout
        assert rig.service.jobs_done == 0
        assert rig.logs(30) == ["job from 192.0.2.10:40000 failed: TimeoutError"]
