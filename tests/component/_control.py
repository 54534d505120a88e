"""A scheduler under test and the peers on its control connections.

`SchedulerRig` runs a real `SchedulerService` (its clock loop on the
virtual loop's time, a seeded random source) with no listening socket;
`rig.peer()` opens an in-memory control connection to its
`handle_connection`, as a host agent, a wrapper or `ccfarm-ctl` would.
Each peer reads in the background: `receive()` is the next message,
`inbox_empty()` after `idle()` proves nothing was sent, `closed()` waits for
the service to close the connection. Closing the rig closes every peer and
fails the test if a connection handler died of an exception.

`SchedulerRig(secret=S)` gives the scheduler a farm secret, and its peers
prove it (another with `peer(secret=...)`, none with `secret=None`): a
peer runs the handshake first and holds what the test sends until it is
through; `auth_error` says why it failed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
from typing import Any

from ccfarm.control import messages as m
from ccfarm.control.codec import Message, MessageParser, encode, hello
from ccfarm.errors import RemoteProtocolError
from ccfarm.model import CompilerIdentity, HostReport, LeaseRequest
from ccfarm.protocol import auth
from ccfarm.scheduler.config import SchedulerConfig
from ccfarm.scheduler.hostsinfo import HostInfo
from ccfarm.scheduler.policy import Policy
from ccfarm.scheduler.service import SchedulerService
from tests.component._loop import idle
from tests.component._streams import connect

GCC = CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu")
_EOF = object()


def host_report(name: str = "h1", slots: int = 2, speed: float = 1.0, **fields: Any) -> HostReport:
    number = int(name.lstrip("h") or 0) % 250 + 1
    values: dict[str, Any] = {
        "host": name,
        "address": f"198.51.100.{number}",
        "port": 3632,
        "slots": slots,
        "cpus": slots,
        "speed": speed,
        "load": 0.0,
        "compilers": (GCC,),
    }
    values.update(fields)
    return HostReport(**values)


def lease_request(
    client: str = "alice-laptop/alice",
    ident: int = 1,
    timeout: float = 60.0,
    compiler: CompilerIdentity | None = None,
) -> bytes:
    return m.encode_lease_request(LeaseRequest(ident, client, compiler, timeout))


class ControlPeer:
    def __init__(
        self, rig: SchedulerRig, address: tuple[str, int], secret: bytes | None = None
    ) -> None:
        self.reader, self.writer, self.server = connect(
            rig.service.handle_connection, client=address
        )
        self.inbox: asyncio.Queue[Message | object] = asyncio.Queue()
        self.queued: list[int] = []  # LQUE ids (kept out of the inbox: "it waits", said at once)
        self.eof = False
        self.auth_error = ""
        self.handshake = (
            None
            if secret is None
            else auth.Handshake(auth.CLIENT, secret, os.urandom(32), auth.CONTROL)
        )
        self._held: list[bytes] = []  # sent by the test before the handshake was through
        self._pump = asyncio.ensure_future(self._read())

    async def _authenticate(self, parser: MessageParser) -> bool:
        assert self.handshake is not None
        held, self._held = self._held, []
        self.writer.write(b"".join(held[:1]) + self.handshake.start())  # the hello first
        try:
            while not self.handshake.done:
                data = await self.reader.read(65536)
                if not data:
                    self.handshake.receive_eof()
                proof = self.handshake.receive_data(data)
                if self.handshake.done:
                    self.writer.write(proof + b"".join(held[1:] + self._held))
        except RemoteProtocolError as exc:
            self.auth_error = str(exc)
            return False
        parser.receive_data(self.handshake.rest)
        return True

    async def _read(self) -> None:
        parser = MessageParser(expect_hello=False)
        if self.handshake is not None and not await self._authenticate(parser):
            self.writer.close()
            self.inbox.put_nowait(_EOF)
            return
        for message in parser.messages():
            self.inbox.put_nowait(message)
        while data := await self.reader.read(65536):
            parser.receive_data(data)
            for message in parser.messages():
                if message.kind == m.LEASE_QUEUED:
                    self.queued.append(m.decode_queued(message))
                else:
                    self.inbox.put_nowait(message)
        parser.receive_eof()
        assert parser.next_message() is None  # raises if it closed mid-message
        self.eof = True
        self.inbox.put_nowait(_EOF)

    def send(self, *parts: bytes) -> None:
        if self.handshake is not None and not self.handshake.done:
            self._held.append(b"".join(parts))
        else:
            self.writer.write(b"".join(parts))

    async def receive(self, kind: str | None = None) -> Message:
        """The next message the service sent (of `kind`, if given)."""
        message = await self.inbox.get()
        assert isinstance(message, Message), "the service closed the connection"
        if kind is not None:
            assert message.kind == kind, message
        return message

    async def ask(self, *parts: bytes, kind: str) -> Message:
        self.send(*parts)
        return await self.receive(kind)

    async def inbox_empty(self) -> bool:
        """Nothing was sent, now that every task waits."""
        await idle()
        return self.inbox.empty()

    async def closed(self) -> bool:
        """Wait for the service to close; True if it sent nothing before."""
        item = await self.inbox.get()
        return item is _EOF

    async def refused(self) -> str:
        """Wait for the service's FAIL and then its close; the reason given."""
        message = await self.receive(m.FAILED)
        assert await self.closed(), "more than a FAIL before the close"
        return message.first()["reason"]

    async def close(self) -> None:
        self.writer.close()
        await self.server  # re-raises what killed the connection's handler
        if self._pump.done():
            self._pump.result()
        self._pump.cancel()


class SchedulerRig:
    def __init__(
        self,
        hosts_info: dict[str, HostInfo] | None = None,
        secret: bytes | None = None,
        **config: Any,
    ) -> None:
        """`config`: SchedulerConfig's fields and the Policy's, by name;
        `secret`: the farm secret, the scheduler's and its peers'."""
        self.secret = secret
        loop = asyncio.get_running_loop()
        # the rig's operator keeps one connection between queries
        config.setdefault("idle_timeout", 3600.0)
        knobs = {f.name for f in dataclasses.fields(Policy)}
        policy = Policy(**{k: v for k, v in config.items() if k in knobs})
        shell = {k: v for k, v in config.items() if k not in knobs}
        self.service = SchedulerService(
            SchedulerConfig(policy=policy, **shell),
            hosts_info,
            clock=loop.time,
            rng=random.Random(7),
            secret=secret,
        )
        self._clock = self.service.start_clock()
        self.peers: list[ControlPeer] = []
        self.extra_tasks: list[asyncio.Task[None]] = []  # handlers of other connections
        self._next_port = 40000

    async def __aenter__(self) -> SchedulerRig:
        return self

    async def __aexit__(self, failed: type[BaseException] | None, *_: object) -> None:
        if failed is not None:  # the test's own error tells; nothing more to wait for
            for task in (self._clock, *self.extra_tasks, *(p.server for p in self.peers)):
                task.cancel()
            for peer in self.peers:
                peer.writer.close()
            return
        for peer in self.peers:
            await peer.close()
        await asyncio.gather(*self.extra_tasks)
        assert not self._clock.done(), "the clock loop died"
        self._clock.cancel()

    def peer(
        self, *, greet: bool = True, address: str = "192.0.2.10", secret: object = "rig's"
    ) -> ControlPeer:
        """`secret`: the rig's by default, or another (bytes), or None."""
        self._next_port += 1
        key = self.secret if secret == "rig's" else secret
        assert key is None or isinstance(key, bytes)
        peer = ControlPeer(self, (address, self._next_port), key)
        if greet:
            peer.send(hello())
        self.peers.append(peer)
        return peer

    async def host(self, report: HostReport | None = None) -> ControlPeer:
        """A host agent that has registered (and is listed)."""
        report = report or host_report()
        agent = self.peer()
        agent.send(m.encode_host_report(report))
        await idle()
        assert report.host in await self.hosts()
        return agent

    async def hosts(self) -> dict[str, dict[str, str]]:
        """QHST from an operator's connection: host name -> its record."""
        reply = await self._operator().ask(encode(m.QUERY_HOSTS), kind=m.HOST_LIST)
        return {dict(r)["host"]: dict(r) for r in reply.records}

    async def jobs(self) -> list[dict[str, str]]:
        reply = await self._operator().ask(encode(m.QUERY_JOBS), kind=m.JOB_LIST)
        return [dict(r) for r in reply.records]

    def _operator(self) -> ControlPeer:
        if not hasattr(self, "_op"):
            self._op = self.peer(address="192.0.2.99")
        return self._op
