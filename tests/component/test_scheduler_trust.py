"""Whom the scheduler believes: the farm secret, and a host's and a lease's owner.

With a secret, every control connection must pass the handshake before
its first message (hosts, wrappers, operators alike); without one, a
host's name belongs to the connection (and address) that reported it, and
a lease to the connection it was granted on, whoever else speaks.
"""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from ccfarm.control import messages as m
from ccfarm.control.codec import MessageParser, encode, hello
from ccfarm.protocol import auth
from ccfarm.protocol.tokens import encode_blob
from tests.component._control import SchedulerRig, host_report, lease_request
from tests.component._loop import idle
from tests.component._streams import connect

SECRET = b"the farm's own secret, 32 bytes."
WRONG = b"a guess at the farm's secret....."


def _connection(
    rig: SchedulerRig, address: str = "192.0.2.66"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A bare connection to the scheduler: the test reads and writes its bytes."""
    reader, writer, server = connect(rig.service.handle_connection, client=(address, 41000))
    rig.extra_tasks.append(server)
    return reader, writer


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    chunks = b""
    while chunk := await reader.read(65536):
        chunks += chunk
    return chunks


async def _raw(rig: SchedulerRig, data: bytes, address: str = "192.0.2.66") -> bytes:
    """Everything the scheduler answers `data` with, until it closes."""
    reader, writer = _connection(rig, address)
    writer.write(data)
    answer = await _until_closed(reader)
    writer.close()
    return answer


def _failure(answer: bytes) -> str:
    parser = MessageParser(expect_hello=False)
    parser.receive_data(answer)
    message = parser.next_message()
    assert message is not None and message.kind == m.FAILED, answer
    return message.first()["reason"]


# -- with a secret -----------------------------------------------------------------


async def test_with_the_secret_hosts_wrappers_and_operators_work_as_before() -> None:
    async with SchedulerRig(secret=SECRET) as rig:
        agent = await rig.host(host_report("h1", slots=2))
        wrapper = rig.peer()
        grant = m.decode_granted(await wrapper.ask(lease_request(ident=3), kind=m.LEASE_GRANTED))
        assert grant.host == "h1"
        assert [j["client"] for j in await rig.jobs()] == ["alice-laptop/alice"]
        wrapper.send(m.encode_release(grant.lease))
        await idle()
        assert await rig.jobs() == []
        assert not agent.auth_error and not wrapper.auth_error


async def test_a_fake_daemon_with_the_wrong_secret_cannot_register() -> None:
    async with SchedulerRig(secret=SECRET) as rig:
        fake = rig.peer(secret=WRONG, address="203.0.113.66")
        fake.send(m.encode_host_report(host_report("h66", slots=30, speed=1000.0)))
        assert await fake.closed()
        # it saw the scheduler's proof fail, so it never sent its report (or a proof)
        assert "server does not know the farm secret" in fake.auth_error
        assert await rig.hosts() == {}


async def test_a_fake_daemon_that_forges_a_proof_is_refused_and_told() -> None:
    async with SchedulerRig(secret=SECRET) as rig:
        reader, writer = _connection(rig)
        writer.write(hello() + encode_blob(b"AUTH", os.urandom(32)))
        challenge = await reader.readexactly(12 + 64)
        assert challenge[:12] == b"ACHL00000040"  # the scheduler proves itself first
        report = m.encode_host_report(host_report("h66", slots=30, speed=1000.0))
        writer.write(encode_blob(b"APRF", os.urandom(32)) + report)
        assert "client does not know the farm secret" in _failure(await _until_closed(reader))
        writer.close()
        assert await rig.hosts() == {}


@pytest.mark.parametrize(
    "message",
    [
        m.encode_host_report(host_report("h66", slots=30, speed=1000.0)),
        lease_request(ident=1),
        encode(m.QUERY_JOBS),
        m.encode_host_name(m.DISABLE, "h1"),
    ],
    ids=["HOST", "LREQ", "QJOB", "DSBL"],
)
async def test_nothing_unauthenticated_is_taken(message: bytes) -> None:
    async with SchedulerRig(secret=SECRET, host_timeout=3600.0) as rig:
        await rig.host(host_report("h1"))
        reason = _failure(await _raw(rig, hello() + message))
        assert reason.startswith("authentication required: expected AUTH")
        record = (await rig.hosts())["h1"]
        assert (record["state"], record["used"]) == ("up", "0")
        assert list(await rig.hosts()) == ["h1"]


async def test_ctl_disable_needs_the_secret_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with SchedulerRig(secret=SECRET, host_timeout=3600.0) as rig:
        await rig.host(host_report("h1"))
        stranger = await _raw(rig, hello() + m.encode_host_name(m.DISABLE, "h1"))
        assert "authentication required" in _failure(stranger)
        assert (await rig.hosts())["h1"]["state"] == "up"
        operator = rig.peer(address="192.0.2.99")
        with caplog.at_level(logging.WARNING, "ccfarm-scheduler"):
            await operator.ask(m.encode_host_name(m.DISABLE, "h1"), kind=m.OK)
        assert (await rig.hosts())["h1"]["state"] == "disabled"
        assert "192.0.2.99" in caplog.text and "host h1 disabled (authenticated)" in caplog.text


async def test_a_replayed_handshake_is_refused() -> None:
    """A recorded agent's bytes (hello, AUTH, APRF, HOST), replayed on a new connection."""
    async with SchedulerRig(secret=SECRET) as rig:
        nonce = os.urandom(32)
        client = auth.Handshake(auth.CLIENT, SECRET, nonce, auth.CONTROL)
        reader, writer = _connection(rig, "192.0.2.10")
        writer.write(hello() + client.start())
        proof = client.receive_data(await reader.readexactly(12 + 64))
        report = m.encode_host_report(host_report("h1"))
        writer.write(proof + report)
        await idle()
        assert list(await rig.hosts()) == ["h1"]
        replayer, replaying = _connection(rig, "203.0.113.66")
        replaying.write(hello() + encode_blob(b"AUTH", nonce))
        assert (await replayer.readexactly(12 + 64))[:12] == b"ACHL00000040"
        replaying.write(proof + report)
        assert "client does not know the farm secret" in _failure(await _until_closed(replayer))
        replaying.close()
        writer.close()
        await idle()
        assert await rig.hosts() == {}  # only the real agent's connection held it


async def test_a_proof_made_for_a_compile_connection_does_not_open_a_control_one() -> None:
    async with SchedulerRig(secret=SECRET) as rig:
        nonce = os.urandom(32)
        reader, writer = _connection(rig)
        writer.write(hello() + encode_blob(b"AUTH", nonce))
        challenge = await reader.readexactly(12 + 64)
        wrong = auth.proof(SECRET, auth.CLIENT, auth.COMPILE, nonce, challenge[12:44])
        writer.write(encode_blob(b"APRF", wrong))
        assert "client does not know" in _failure(await _until_closed(reader))
        writer.close()


async def test_a_peer_that_stalls_in_the_handshake_is_cut_after_io_timeout() -> None:
    async with SchedulerRig(secret=SECRET, io_timeout=5.0) as rig:
        reader, writer = _connection(rig)
        writer.write(hello() + b"AUTH0000")  # and nothing more
        started = asyncio.get_running_loop().time()
        answer = await _until_closed(reader)
        assert asyncio.get_running_loop().time() - started == pytest.approx(5.0)  # virtual
        assert answer == b""  # (a timeout is no refusal worth a word)
        writer.close()


async def test_a_scheduler_without_a_secret_tells_a_client_that_has_one() -> None:
    async with SchedulerRig() as rig:
        client = rig.peer(secret=SECRET)
        client.send(lease_request(ident=1))
        assert await client.closed()
        assert "authentication refused: 'this scheduler has no farm secret'" in client.auth_error
        assert await rig.jobs() == []


# -- a host's name, a lease: bound to their connection ------------------------------------


async def test_a_host_name_from_another_address_does_not_take_the_host_over() -> None:
    """The attack that took 29 of 30 leases: a real host's name, another address."""
    async with SchedulerRig(host_timeout=3600.0) as rig:
        real = host_report("h1", slots=1)
        await rig.host(real)
        fake = rig.peer(address="203.0.113.66")
        fake.send(
            m.encode_host_report(host_report("h1", slots=30, speed=1000.0, address="203.0.113.66"))
        )
        await idle()
        assert (await rig.hosts())["h1"]["slots"] == "1"
        wrapper = rig.peer()
        grant = m.decode_granted(await wrapper.ask(lease_request(ident=1), kind=m.LEASE_GRANTED))
        assert grant.address == real.address
        wrapper.send(lease_request(ident=2, timeout=5.0))
        await idle()
        assert (await rig.hosts())["h1"]["used"] == "1"  # no 2nd slot from the fake's report
        fake.writer.close()  # its close does not remove the real host either
        await idle()
        assert list(await rig.hosts()) == ["h1"]


async def test_a_forged_zero_slot_report_revokes_nothing() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        await rig.host(host_report("h1", slots=2))
        wrapper = rig.peer()
        await wrapper.ask(lease_request(ident=1), kind=m.LEASE_GRANTED)
        forger = rig.peer(address="203.0.113.66")
        forger.send(m.encode_host_report(host_report("h1", slots=0)))
        forger.send(m.encode_host_name(m.HOST_LEAVING, "h1"))
        await idle()
        assert await wrapper.inbox_empty()  # no LREV
        record = (await rig.hosts())["h1"]
        assert (record["slots"], record["state"], record["used"]) == ("2", "up", "1")


async def test_a_name_is_free_again_once_its_connection_closed() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        first = await rig.host(host_report("h1", slots=1))
        first.writer.close()
        await idle()
        newcomer = rig.peer(address="198.51.100.77")
        newcomer.send(m.encode_host_report(host_report("h1", slots=3)))
        await idle()
        assert (await rig.hosts())["h1"]["slots"] == "3"


async def test_a_client_cannot_release_or_report_another_clients_lease() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        await rig.host(host_report("h1", slots=1))
        alice = rig.peer()
        lease = m.decode_granted(await alice.ask(lease_request(ident=1), kind=m.LEASE_GRANTED))
        mallory = rig.peer(address="203.0.113.66")
        mallory.send(m.encode_release(lease.lease))
        mallory.send(m.encode_host_failed(lease.lease, "connection refused"))
        await idle()
        jobs = await rig.jobs()
        assert [(j["state"], j["lease"]) for j in jobs] == [("running", str(lease.lease))]
        assert (await rig.hosts())["h1"]["state"] not in ("quarantined", "probation")
        assert await alice.inbox_empty()
        alice.send(m.encode_release(lease.lease))  # the owner still can
        await idle()
        assert await rig.jobs() == []
