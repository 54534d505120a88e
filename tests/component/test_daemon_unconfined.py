"""A daemon without its job sandbox (`serves_files=False`): preprocessed jobs
are served, jobs that ship files are closed after their header, before any
file is written, and the daemon keeps serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccfarm.protocol import (
    CCFARM,
    CCFARM_CPP,
    LZO,
    PLAIN,
    PUMP,
    FileEntry,
    JobHeader,
    encode_request,
)
from tests.component._daemon import DaemonRig

ARGV = tuple(b"gcc -O2 -c x.c -o x.o".split())


def _files_request(version: int) -> bytes:
    header = JobHeader(version, ARGV, b"/home/u/src", ())
    return encode_request(header, files=[FileEntry(b"/home/u/src/x.c", b"int x;\n")])


def _unconfined(rig: DaemonRig) -> None:
    rig.service.run_compilers(rig.compiler, serves_files=False)


@pytest.mark.parametrize("version", [PUMP, CCFARM])
async def test_jobs_that_ship_files_are_refused(tmp_path: Path, version: int) -> None:
    async with DaemonRig(tmp_path) as rig:
        _unconfined(rig)
        client = rig.client()
        client.send(_files_request(version))
        assert await client.received() == b""  # closed: the client tries elsewhere
        assert rig.compiler.started == []
        (warning,) = rig.logs(30)
        assert "no job sandbox" in warning
        plain = encode_request(JobHeader(PLAIN, ARGV), source=b"int y;\n")
        assert (await rig.job(plain)).wait_status == 0  # and it keeps serving


@pytest.mark.parametrize("version", [PLAIN, LZO, CCFARM_CPP])
async def test_preprocessed_jobs_are_served(tmp_path: Path, version: int) -> None:
    async with DaemonRig(tmp_path) as rig:
        _unconfined(rig)
        request = encode_request(JobHeader(version, ARGV, None, ()), source=b"int z;\n")
        reply = await rig.job(request, version)
        assert reply.wait_status == 0 and reply.obj == b"OBJ\nint z;\n"


async def test_a_daemon_told_to_serve_files_serves_them(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        rig.service.run_compilers(rig.compiler, serves_files=True)
        reply = await rig.job(_files_request(CCFARM), CCFARM)
        assert reply.wait_status == 0
