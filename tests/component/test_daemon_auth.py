"""ccfarmd with a farm secret: who may run a job, over in-memory connections.

A ccfarm client proves the secret before its request (`AUTH` first, the
daemon's challenge, the client's proof, then the distcc request); a plain
distcc client cannot, and is still served from `--allow` networks unless
`--no-distcc-clients`; ccfarm's own protocols, and express jobs, need the
handshake.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import (
    CCFARM,
    CCFARM_CPP,
    LZO,
    PLAIN,
    PUMP,
    FileEntry,
    JobHeader,
    auth,
    encode_request,
)
from ccfarm.protocol.tokens import encode_blob
from tests.component._daemon import DaemonRig, JobClient, plain_request
from tests.component._loop import idle, now

SECRET = b"the farm's own secret, 32 bytes."
WRONG = b"a guess at the farm's secret....."
ARGV = tuple(b"gcc -O2 -c x.c -o x.o".split())


def pump_request_bytes(version: int, env: tuple[bytes, ...] = ()) -> bytes:
    header = JobHeader(version, tuple(b"gcc -c x.c -o x.o".split()), b"/home/u/src", env)
    return encode_request(header, files=[FileEntry(b"/home/u/src/x.c", b"int x;\n")])


def cpp_request(env: tuple[bytes, ...] = ()) -> bytes:
    return encode_request(JobHeader(CCFARM_CPP, ARGV, None, env), source=b"int x = 1;\n")


async def authenticate(client: JobClient, secret: bytes) -> bytes:
    """The client's side of the handshake; its proof (to send ahead of the request)."""
    handshake = auth.Handshake(auth.CLIENT, secret, os.urandom(32), auth.COMPILE)
    client.send(handshake.start())
    proof = handshake.receive_data(await client.reader.readexactly(12 + 64))
    assert handshake.done
    return proof


async def test_an_authenticated_ccfarm_job_runs(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, secret=SECRET) as rig:
        client = rig.client()
        client.send(await authenticate(client, SECRET) + cpp_request())
        assert (await client.reply(CCFARM_CPP)).wait_status == 0
        assert len(rig.compiler.started) == 1


@pytest.mark.parametrize("version", [PLAIN, LZO, PUMP])
async def test_a_plain_distcc_client_in_allow_still_runs(tmp_path: Path, version: int) -> None:
    async with DaemonRig(tmp_path, secret=SECRET) as rig:
        request = pump_request_bytes(version) if version == PUMP else plain_request()
        if version == LZO:
            request = encode_request(JobHeader(LZO, ARGV), source=b"int x;\n")
        reply = await rig.job(request, version)
        assert reply.wait_status == 0


async def test_no_distcc_clients_refuses_plain_distcc_too(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, secret=SECRET, distcc_clients=False) as rig:
        client = rig.client()
        client.send(plain_request())
        assert await client.received() == b""
        assert rig.compiler.started == []
        assert any("--no-distcc-clients" in line for line in rig.logs(30))
        authed = rig.client()  # a ccfarm client with the secret may still send protocol 1
        authed.send(await authenticate(authed, SECRET) + plain_request())
        assert (await authed.reply()).wait_status == 0


@pytest.mark.parametrize("version", [CCFARM, CCFARM_CPP])
async def test_ccfarm_protocols_need_the_handshake(tmp_path: Path, version: int) -> None:
    async with DaemonRig(tmp_path, secret=SECRET) as rig:
        express = (b"CCFARM_PRIORITY=express",)
        request = (
            pump_request_bytes(version, express) if version == CCFARM else cpp_request(express)
        )
        client = rig.client()
        client.send(request)
        assert await client.received() == b""
        assert rig.compiler.started == []
        assert any("without the farm secret's handshake" in line for line in rig.logs(30))


async def test_express_is_honoured_only_after_the_handshake(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, secret=SECRET, jobs=1) as rig:
        rig.compiler.hold = True
        plain = rig.client()
        plain.send(plain_request())
        await idle()
        fast = rig.client()
        fast.send(await authenticate(fast, SECRET) + cpp_request((b"CCFARM_PRIORITY=express",)))
        await idle()
        assert len(rig.compiler.started) == 2  # beyond the one slot, at once
        for job in rig.compiler.started:
            job.finish()
        assert (await fast.reply(CCFARM_CPP)).wait_status == 0
        assert (await plain.reply()).wait_status == 0


async def test_a_client_with_the_wrong_secret_refuses_the_daemon_first(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, secret=SECRET) as rig:
        client = rig.client()
        with pytest.raises(RemoteProtocolError, match="server does not know the farm secret"):
            await authenticate(client, WRONG)
        client.writer.close()  # it sends nothing of its job to an unproven daemon
        assert await client.received() == b""
        assert rig.compiler.started == []


async def test_a_forged_or_replayed_proof_is_closed_unanswered(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, secret=SECRET) as rig:
        nonce = os.urandom(32)
        client = rig.client()
        client.send(encode_blob(b"AUTH", nonce))
        challenge = await client.reader.readexactly(12 + 64)
        good = auth.proof(SECRET, auth.CLIENT, auth.COMPILE, nonce, challenge[12:44])
        client.send(encode_blob(b"APRF", good) + cpp_request())
        assert (await client.reply(CCFARM_CPP)).wait_status == 0
        replay = rig.client()  # the same AUTH and proof on a new connection
        replay.send(encode_blob(b"AUTH", nonce))
        await replay.reader.readexactly(12 + 64)
        replay.send(encode_blob(b"APRF", good) + cpp_request())
        assert await replay.received() == b""
        control = rig.client()  # a proof made for a control connection
        control.send(encode_blob(b"AUTH", nonce))
        challenge = await control.reader.readexactly(12 + 64)
        wrong = auth.proof(SECRET, auth.CLIENT, auth.CONTROL, nonce, challenge[12:44])
        control.send(encode_blob(b"APRF", wrong) + cpp_request())
        assert await control.received() == b""
        assert len(rig.compiler.started) == 1
        assert sum("client does not know the farm secret" in x for x in rig.logs(30)) == 2


@pytest.mark.parametrize(
    "data",
    [b"AUTH0000", b"AUTH00000020" + b"\0" * 10, b"AUTH99999999", b"AUTHxxxxxxxx", b"AU"],
    ids=["short-token", "short-nonce", "oversized", "garbage", "two-bytes"],
)
async def test_broken_handshakes_are_closed_unanswered(tmp_path: Path, data: bytes) -> None:
    async with DaemonRig(tmp_path, secret=SECRET, io_timeout=5.0) as rig:
        started = now()
        client = rig.client()
        client.send(data)
        assert await client.received() == b""
        assert now() - started <= 5.0 + 1e-6  # at most io_timeout (virtual seconds)
        assert rig.compiler.started == []


async def test_the_handshake_does_not_open_the_allow_list(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path, secret=SECRET) as rig:
        client = rig.client(("203.0.113.5", 40000))
        client.send(encode_blob(b"AUTH", os.urandom(32)))
        assert await client.received() == b""  # not even a challenge
        assert any("denied by access list" in line for line in rig.logs(30))


async def test_a_daemon_without_a_secret_refuses_a_client_that_has_one(tmp_path: Path) -> None:
    async with DaemonRig(tmp_path) as rig:
        client = rig.client()
        handshake = auth.Handshake(auth.CLIENT, SECRET, os.urandom(32), auth.COMPILE)
        client.send(handshake.start())
        assert await client.received() == b""
        with pytest.raises(RemoteProtocolError, match="closed during authentication"):
            handshake.receive_eof()
