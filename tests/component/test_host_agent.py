"""The host agent against a real scheduler service, over in-memory connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from ccfarm.control import messages as m
from ccfarm.daemon.agent import HostAgent
from tests.component._control import GCC, SchedulerRig, lease_request
from tests.component._loop import idle
from tests.component._streams import connect


def _agent(rig: SchedulerRig, leaving: asyncio.Event) -> HostAgent:
    async def open_connection(
        address: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer, task = connect(rig.service.handle_connection, client=("192.0.2.7", 40500))
        rig.extra_tasks.append(task)
        return reader, writer

    return HostAgent(
        port=3632,
        listen="192.0.2.7",
        advertise="",
        slots=2,
        cpus=2,
        speed=lambda: 1.0,
        compilers=(GCC,),
        running=lambda: 0,
        desktop=lambda: False,
        leaving=leaving,
        connect=open_connection,
    )


async def test_a_draining_agent_says_byee_its_jobs_finish_and_its_exit_removes_it() -> None:
    async with SchedulerRig(host_timeout=3600.0, load_high=1e9, load_low=1e9) as rig:
        leaving = asyncio.Event()
        agent = asyncio.ensure_future(_agent(rig, leaving).run(("scheduler", 3634)))
        await asyncio.sleep(0.1)
        assert list(await rig.hosts()) == ["192.0.2.7:3632"]
        wrapper = rig.peer()
        lease = m.decode_granted(await wrapper.ask(lease_request(ident=3), kind=m.LEASE_GRANTED))

        leaving.set()
        await asyncio.sleep(10)  # heartbeats go on while the daemon drains
        record = (await rig.hosts())["192.0.2.7:3632"]
        assert (record["state"], record["offered"]) == ("leaving", "0")
        assert wrapper.inbox.empty()  # its lease runs on
        wrapper.send(m.encode_release(lease.lease))
        agent.cancel()  # the daemon exits
        with contextlib.suppress(asyncio.CancelledError):
            await agent
        await idle()
        assert await rig.hosts() == {}


async def test_an_agent_that_is_leaving_does_not_connect() -> None:
    async with SchedulerRig() as rig:
        leaving = asyncio.Event()
        leaving.set()
        await asyncio.wait_for(_agent(rig, leaving).run(("scheduler", 3634)), 1)
        assert rig.extra_tasks == []


def _secret_agent(rig: SchedulerRig, secret: bytes) -> HostAgent:
    agent = _agent(rig, asyncio.Event())
    agent.secret = secret
    return agent


async def test_an_agent_with_the_farm_secret_registers_with_a_scheduler_that_has_it() -> None:
    secret = b"the farm's own secret, 32 bytes."
    async with SchedulerRig(secret=secret, load_high=1e9, load_low=1e9) as rig:
        agent = asyncio.ensure_future(_secret_agent(rig, secret).run(("scheduler", 3634)))
        await asyncio.sleep(0.1)
        assert list(await rig.hosts()) == ["192.0.2.7:3632"]
        agent.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await agent


async def test_an_agent_does_not_report_to_a_scheduler_with_another_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with SchedulerRig(secret=b"the farm's own secret, 32 bytes.") as rig:
        with caplog.at_level(logging.INFO, "ccfarmd.agent"):
            agent = asyncio.ensure_future(
                _secret_agent(rig, b"another farm's secret, 32 bytes.").run(("scheduler", 3634))
            )
            await asyncio.sleep(0.1)
        assert await rig.hosts() == {}
        assert "not authenticated: authentication failed: the server does not know" in caplog.text
        agent.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await agent


async def test_an_agent_with_a_secret_refuses_a_scheduler_without_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with SchedulerRig() as rig:
        with caplog.at_level(logging.INFO, "ccfarmd.agent"):
            agent = asyncio.ensure_future(
                _secret_agent(rig, b"the farm's own secret, 32 bytes.").run(("scheduler", 3634))
            )
            await asyncio.sleep(0.1)
        assert await rig.hosts() == {}
        assert "this scheduler has no farm secret" in caplog.text
        agent.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await agent
