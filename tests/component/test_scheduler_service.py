"""The scheduler's asyncio shell over in-memory control connections, on virtual time.

What each test checks is what a peer sees (the messages sent back, the
connection closing) and the farm as operators see it (QHST, QJOB).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ccfarm.control import messages as m
from ccfarm.control.codec import encode, hello
from ccfarm.scheduler.hostsinfo import HostInfo
from tests.component._control import SchedulerRig, host_report, lease_request
from tests.component._loop import idle, now

# -- happy paths -----------------------------------------------------------------------


async def test_a_host_registers_and_is_listed() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=3, speed=2.0))
        hosts = await rig.hosts()
        assert list(hosts) == ["h1"]
        assert hosts["h1"]["slots"] == "3"
        assert hosts["h1"]["offered"] == "3"
        assert hosts["h1"]["used"] == "0"
        assert hosts["h1"]["state"] == "up"
        assert hosts["h1"]["compiler"] == "gcc 12.2.0 x86_64-linux-gnu"


async def test_a_wrapper_gets_a_grant_and_releases_it() -> None:
    async with SchedulerRig() as rig:
        report = host_report("h1", slots=2)
        await rig.host(report)
        wrapper = rig.peer()
        grant = await wrapper.ask(lease_request("alice/a", ident=7), kind=m.LEASE_GRANTED)
        granted = m.decode_granted(grant)
        assert granted.request == 7  # the wrapper's own id comes back
        assert (granted.host, granted.address, granted.port) == ("h1", report.address, 3632)
        jobs = await rig.jobs()
        assert [(j["state"], j["host"], j["client"]) for j in jobs] == [
            ("running", "h1", "alice/a")
        ]
        assert (await rig.hosts())["h1"]["used"] == "1"

        wrapper.send(m.encode_release(granted.lease))
        await idle()
        assert await rig.jobs() == []
        assert (await rig.hosts())["h1"]["used"] == "0"
        assert rig.service.stats == {"granted": 1, "refused": 0, "revoked": 0}


async def test_a_request_nobody_can_serve_is_refused_at_once() -> None:
    async with SchedulerRig() as rig:
        wrapper = rig.peer()
        refused = await wrapper.ask(lease_request(ident=3), kind=m.LEASE_REFUSED)
        assert m.decode_refused(refused).request == 3
        assert "no host" in m.decode_refused(refused).reason
        assert wrapper.queued == []


async def test_a_waiting_request_gets_the_slot_a_release_frees() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        alice, bob = rig.peer(), rig.peer()
        lease = m.decode_granted(await alice.ask(lease_request("alice/a"), kind=m.LEASE_GRANTED))
        bob.send(lease_request("bob/b", ident=9))
        assert await bob.inbox_empty()
        assert bob.queued == [9] and alice.queued == []  # "it waits", said at once
        assert [j["state"] for j in await rig.jobs()] == ["running", "waiting"]

        alice.send(m.encode_release(lease.lease))
        grant = m.decode_granted(await bob.receive(m.LEASE_GRANTED))
        assert (grant.request, grant.host) == (9, "h1")


async def test_operators_disable_and_enable_a_host() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        operator, wrapper = rig.peer(), rig.peer()
        ok = await operator.ask(m.encode_host_name(m.DISABLE, "h1"), kind=m.OK)
        assert ok.first() == {"host": "h1"}
        assert (await rig.hosts())["h1"]["state"] == "disabled"
        assert (await rig.hosts())["h1"]["offered"] == "0"

        wrapper.send(lease_request())
        assert await wrapper.inbox_empty()  # it waits: the only host is drained

        await operator.ask(m.encode_host_name(m.ENABLE, "h1"), kind=m.OK)
        assert m.decode_granted(await wrapper.receive(m.LEASE_GRANTED)).host == "h1"


async def test_disabling_an_unknown_host_fails_with_a_reason() -> None:
    async with SchedulerRig() as rig:
        operator = rig.peer()
        failed = await operator.ask(m.encode_host_name(m.DISABLE, "nowhere"), kind=m.FAILED)
        assert failed.first() == {"reason": "unknown host nowhere"}
        # the connection stays usable
        await operator.ask(encode(m.QUERY_HOSTS), kind=m.HOST_LIST)


async def test_hosts_info_pins_speed_and_cpus() -> None:
    pinned = {"h1": HostInfo("h1", cpus=16, power=8.0)}
    async with SchedulerRig(hosts_info=pinned) as rig:
        await rig.host(host_report("h1", slots=2, speed=1.0))
        record = (await rig.hosts())["h1"]
        assert (record["speed"], record["cpus"], record["slots"]) == ("8", "16", "2")


async def test_a_host_leaving_takes_no_new_leases_and_finishes_its_own() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        agent = await rig.host(host_report("h1", slots=2))
        wrapper = rig.peer()
        lease = m.decode_granted(await wrapper.ask(lease_request(ident=4), kind=m.LEASE_GRANTED))
        agent.send(m.encode_host_name(m.HOST_LEAVING, "h1"))
        await idle()
        record = (await rig.hosts())["h1"]
        assert (record["state"], record["offered"], record["used"]) == ("leaving", "0", "1")
        other = rig.peer()
        other.send(lease_request(ident=5, timeout=5.0))
        await idle()
        assert wrapper.inbox.empty() and other.inbox.empty()  # no revocation, no new grant
        agent.send(m.encode_host_report(host_report("h1", slots=2)))  # heartbeats go on
        await idle()
        assert (await rig.hosts())["h1"]["offered"] == "0"
        wrapper.send(m.encode_release(lease.lease))  # its job finished
        agent.writer.close()  # the daemon exits: the host is gone
        await idle()
        assert await rig.hosts() == {}
        refused = m.decode_refused(await other.receive(m.LEASE_REFUSED))
        assert refused.request == 5


async def test_a_byee_for_another_connections_host_is_ignored() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1"))
        forger = rig.peer()
        forger.send(m.encode_host_name(m.HOST_LEAVING, "h1"))
        await idle()
        assert (await rig.hosts())["h1"]["state"] == "up"


async def test_a_host_whose_connection_closes_is_removed_at_once() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        agent = await rig.host(host_report("h1"))
        wrapper = rig.peer()
        lease = m.decode_granted(await wrapper.ask(lease_request(ident=5), kind=m.LEASE_GRANTED))
        closed_at = now()
        agent.writer.close()
        revoked = m.decode_revoked(await wrapper.receive(m.LEASE_REVOKED))
        assert now() == closed_at
        assert (revoked.lease, revoked.request) == (lease.lease, 5)
        assert revoked.reason == "host's connection closed"
        assert await rig.hosts() == {}


async def test_a_reconnected_host_outlives_its_old_connection() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        old = await rig.host(host_report("h1"))
        new = await rig.host(host_report("h1"))  # restarted: a new connection, same name
        wrapper = rig.peer()
        wrapper.send(lease_request(ident=6))
        assert m.decode_granted(await wrapper.receive(m.LEASE_GRANTED)).host == "h1"
        old.writer.close()  # the old connection's late close
        assert await wrapper.inbox_empty()
        assert list(await rig.hosts()) == ["h1"]
        new.writer.close()
        assert m.decode_revoked(await wrapper.receive(m.LEASE_REVOKED)).lease > 0
        assert await rig.hosts() == {}


async def test_a_host_connection_dying_of_a_protocol_error_removes_the_host() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        agent = await rig.host(host_report("h1"))
        agent.send(encode("ZZZZ", {}))
        assert await agent.refused()
        assert await rig.hosts() == {}


async def test_a_reported_host_is_quarantined_then_on_probation_then_healthy() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        await rig.host(host_report("h1", slots=2))
        alice = rig.peer()
        lease = m.decode_granted(await alice.ask(lease_request(ident=1), kind=m.LEASE_GRANTED))
        reported_at = now()
        alice.send(m.encode_host_failed(lease.lease, "connection refused"))
        alice.send(m.encode_host_failed(lease.lease, "connection refused"))  # counts once
        await idle()
        record = (await rig.hosts())["h1"]
        assert (record["state"], record["offered"]) == ("quarantined", "0")
        alice.send(m.encode_release(lease.lease))

        bob, carol = rig.peer(), rig.peer()
        bob.send(lease_request("bob/b", ident=2))
        carol.send(lease_request("carol/c", ident=3))
        probe = m.decode_granted(await bob.receive(m.LEASE_GRANTED))  # after the backoff
        assert now() - reported_at == pytest.approx(10.0, abs=0.1)
        record = (await rig.hosts())["h1"]
        assert (record["state"], record["offered"]) == ("probation", "1")
        assert await carol.inbox_empty()  # one lease at a time on probation

        bob.send(m.encode_release(probe.lease))  # the probe went well
        assert m.decode_granted(await carol.receive(m.LEASE_GRANTED)).host == "h1"
        record = (await rig.hosts())["h1"]
        assert (record["state"], record["offered"]) == ("up", "2")


async def test_a_client_reports_only_leases_it_holds() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        await rig.host(host_report("h1", slots=2))
        alice, mallory = rig.peer(), rig.peer()
        lease = m.decode_granted(await alice.ask(lease_request(ident=1), kind=m.LEASE_GRANTED))
        mallory.send(m.encode_host_failed(lease.lease, "lies"))
        mallory.send(m.encode_host_failed(12345, "no such lease"))
        await idle()
        assert (await rig.hosts())["h1"]["state"] == "up"
        assert await mallory.inbox_empty()


async def test_a_malformed_host_failed_report_closes_the_connection() -> None:
    async with SchedulerRig(host_timeout=3600.0) as rig:
        wrapper = rig.peer()
        wrapper.send(encode(m.HOST_FAILED, {"lease": "x", "reason": "r"}))
        assert await wrapper.refused()


# -- the clock -------------------------------------------------------------------------


async def test_a_host_whose_heartbeat_stops_is_dropped_and_its_leases_revoked() -> None:
    async with SchedulerRig(host_timeout=15.0) as rig:
        await rig.host(host_report("h1"))
        registered = now()
        wrapper = rig.peer()
        lease = m.decode_granted(await wrapper.ask(lease_request(ident=2), kind=m.LEASE_GRANTED))

        revoked = m.decode_revoked(await wrapper.receive(m.LEASE_REVOKED))
        assert now() - registered == pytest.approx(15.0, abs=1.0)
        assert (revoked.lease, revoked.request) == (lease.lease, 2)
        assert revoked.reason == "host stopped sending heartbeats"
        assert await rig.hosts() == {}
        assert rig.service.stats["revoked"] == 1


async def test_heartbeats_keep_a_host_in_the_farm() -> None:
    async with SchedulerRig(host_timeout=15.0) as rig:
        report = host_report("h1")
        agent = await rig.host(report)
        for _ in range(12):  # a minute of heartbeats, every 5 s
            await asyncio.sleep(5)
            agent.send(m.encode_host_report(report))
        await idle()
        assert list(await rig.hosts()) == ["h1"]
        await asyncio.sleep(16)
        assert await rig.hosts() == {}


async def test_a_lease_held_too_long_is_revoked() -> None:
    async with SchedulerRig(host_timeout=3600.0, lease_timeout=100.0) as rig:
        await rig.host(host_report("h1"))
        wrapper = rig.peer()
        granted_at = now()
        lease = m.decode_granted(await wrapper.ask(lease_request(), kind=m.LEASE_GRANTED))
        revoked = m.decode_revoked(await wrapper.receive(m.LEASE_REVOKED))
        assert now() - granted_at == pytest.approx(100.0, abs=1.0)
        assert (revoked.lease, revoked.reason) == (lease.lease, "lease timed out")
        assert await rig.jobs() == []
        assert (await rig.hosts())["h1"]["used"] == "0"


async def test_a_request_waits_no_longer_than_max_wait() -> None:
    async with SchedulerRig(host_timeout=3600.0, max_wait=30.0) as rig:
        await rig.host(host_report("h1", slots=1))
        alice, bob = rig.peer(), rig.peer()
        await alice.ask(lease_request("alice/a"), kind=m.LEASE_GRANTED)
        asked = now()
        refused = m.decode_refused(
            await bob.ask(lease_request("bob/b", ident=5), kind=m.LEASE_REFUSED)
        )
        assert now() - asked == pytest.approx(30.0, abs=1.0)
        assert (refused.request, refused.reason) == (5, "no free host in time")
        assert [j["state"] for j in await rig.jobs()] == ["running"]


async def test_a_request_waits_no_longer_than_its_own_timeout() -> None:
    async with SchedulerRig(host_timeout=3600.0, max_wait=60.0) as rig:
        await rig.host(host_report("h1", slots=1))
        alice, bob = rig.peer(), rig.peer()
        await alice.ask(lease_request("alice/a"), kind=m.LEASE_GRANTED)
        asked = now()
        await bob.ask(lease_request("bob/b", timeout=10.0), kind=m.LEASE_REFUSED)
        assert now() - asked == pytest.approx(10.0, abs=1.0)


# -- clients that go away --------------------------------------------------------------


async def test_a_client_vanishing_with_a_lease_releases_it() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        alice, bob = rig.peer(), rig.peer()
        await alice.ask(lease_request("alice/a"), kind=m.LEASE_GRANTED)
        bob.send(lease_request("bob/b"))
        assert await bob.inbox_empty()
        await alice.close()  # make killed: its connection closes, no LREL
        assert m.decode_granted(await bob.receive(m.LEASE_GRANTED)).host == "h1"
        assert [j["client"] for j in await rig.jobs()] == ["bob/b"]


async def test_a_client_vanishing_while_waiting_gets_nothing_granted() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        alice, bob, carol = rig.peer(), rig.peer(), rig.peer()
        lease = m.decode_granted(await alice.ask(lease_request("alice/a"), kind=m.LEASE_GRANTED))
        bob.send(lease_request("bob/b"))
        assert await bob.inbox_empty()
        await bob.close()
        await idle()
        assert [j["state"] for j in await rig.jobs()] == ["running"]  # bob no longer waits

        # the freed slot is not granted to the client that left: it stays free
        alice.send(m.encode_release(lease.lease))
        await idle()
        assert await rig.jobs() == []
        assert (await rig.hosts())["h1"]["used"] == "0"
        await carol.ask(lease_request("carol/c"), kind=m.LEASE_GRANTED)
        assert rig.service.stats["granted"] == 2


async def test_a_client_cannot_release_another_clients_lease() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1"))
        alice, mallory = rig.peer(), rig.peer()
        lease = m.decode_granted(await alice.ask(lease_request("alice/a"), kind=m.LEASE_GRANTED))
        mallory.send(m.encode_release(lease.lease))
        await idle()
        assert [j["client"] for j in await rig.jobs()] == ["alice/a"]


# -- bad input and timeouts --------------------------------------------------------------


async def test_a_connection_that_sends_nothing_is_closed_after_idle_timeout() -> None:
    async with SchedulerRig(io_timeout=60.0, idle_timeout=10.0) as rig:
        opened = now()
        silent = rig.peer(greet=False)
        assert await silent.closed()
        assert now() - opened == pytest.approx(10.0)


async def test_a_half_sent_hello_is_closed_after_idle_timeout() -> None:
    async with SchedulerRig(io_timeout=60.0, idle_timeout=10.0) as rig:
        opened = now()
        peer = rig.peer(greet=False)
        peer.send(b"CC")
        assert await peer.closed()
        assert now() - opened == pytest.approx(10.0)


@pytest.mark.parametrize(
    "first",
    [b"GET / HTTP/1.1\r\n\r\n", b"DIST00000001ARGC00000001", bytes(range(32))],
    ids=["http", "distcc", "noise"],
)
async def test_other_connection_kinds_are_closed_unanswered(first: bytes) -> None:
    async with SchedulerRig() as rig:
        peer = rig.peer(greet=False)
        opened = now()
        peer.send(first)
        assert await peer.closed()
        assert now() == opened


BAD_MESSAGES = {
    "host-without-port": encode(
        m.HOST_REPORT, {"host": "h9", "address": "198.51.100.9", "slots": 2, "cpus": 2}
    ),
    "host-bad-slots": encode(m.HOST_REPORT, {"port": 3632, "slots": "-1", "cpus": 2}),
    "host-nan-speed": encode(m.HOST_REPORT, {"port": 3632, "slots": 2, "cpus": 2, "speed": "nan"}),
    "host-bad-compiler": encode(
        m.HOST_REPORT, {"port": 3632, "slots": 2, "cpus": 2, "compiler": "gcc"}
    ),
    "request-without-id": encode(m.LEASE_REQUEST, {"client": "x/y"}),
    "request-bad-timeout": encode(m.LEASE_REQUEST, {"id": 1, "timeout": "inf"}),
    "release-without-lease": encode(m.LEASE_RELEASE, {}),
    "disable-without-host": encode(m.DISABLE, {}),
    "unknown-kind": encode("ZZZZ", {"x": 1}),
    "not-utf8": b"HOST00000002\xff\xfe",
    "bad-line": b"HOST00000005nokey",
    "lowercase-kind": b"host00000000",
    "too-large": b"HOST01000001",
}


@pytest.mark.parametrize("name", list(BAD_MESSAGES))
async def test_a_bad_message_closes_the_connection_and_frees_what_it_held(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ccfarm-scheduler")
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        wrapper, waiting = rig.peer(), rig.peer()
        await wrapper.ask(lease_request("bad/client"), kind=m.LEASE_GRANTED)
        waiting.send(lease_request("next/client"))
        assert await waiting.inbox_empty()

        wrapper.send(BAD_MESSAGES[name])
        assert await wrapper.refused()
        # the lease it held went to the next client; the farm is otherwise intact
        assert m.decode_granted(await waiting.receive(m.LEASE_GRANTED)).host == "h1"
        assert list(await rig.hosts()) == ["h1"]
        assert [j["client"] for j in await rig.jobs()] == ["next/client"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("192.0.2.10:"), warnings


async def test_a_bad_hello_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    async with SchedulerRig() as rig:
        peer = rig.peer(greet=False)
        peer.send(hello(version=2) + lease_request())
        assert await peer.refused()
    assert "unsupported control version 2" in caplog.text


async def test_a_peer_closing_mid_message_loses_its_lease_and_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        wrapper, other = rig.peer(), rig.peer()
        await wrapper.ask(lease_request("a/a"), kind=m.LEASE_GRANTED)
        request = lease_request("a/a", ident=2)
        wrapper.send(request[: len(request) // 2])
        wrapper.writer.write_eof()
        assert await wrapper.closed()
        assert await rig.jobs() == []
        await other.ask(lease_request("b/b"), kind=m.LEASE_GRANTED)
    assert "closed mid-message" in caplog.text


async def test_messages_split_byte_by_byte_are_understood() -> None:
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1"))
        wrapper = rig.peer(greet=False)
        for byte in hello() + lease_request(ident=11):
            wrapper.send(bytes([byte]))
            await idle()
        assert m.decode_granted(await wrapper.receive(m.LEASE_GRANTED)).request == 11


async def test_a_half_sent_message_is_not_waited_for_for_ever() -> None:
    async with SchedulerRig(io_timeout=60.0) as rig:
        await rig.host(host_report("h1", slots=1))
        wrapper = rig.peer()
        request = lease_request()
        sent = now()
        wrapper.send(request[:10])  # then the wrapper hangs (SIGSTOP, a dead link)
        assert await wrapper.closed()
        assert now() - sent == pytest.approx(60.0)
