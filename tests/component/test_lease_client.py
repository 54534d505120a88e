"""The wrapper's blocking lease client against scripted schedulers and the real one.

`request_lease(connect=...)` gets one end of a socketpair whose other end
already holds the scheduler's answer (or a fake socket that times out), so
every test runs at once and the same way. The last tests put the real
`SchedulerService` on the other end, with the clock frozen while the
blocking client runs in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.client.job.fallback import UseHostLists
from ccfarm.client.job.lease import (
    Lease,
    NoLease,
    SchedulerMarks,
    client_name,
    parse_schedulers,
    request_lease,
)
from ccfarm.control import messages as m
from ccfarm.control.codec import MAGIC, MessageParser, encode
from ccfarm.control.codec import Message as ControlMessage
from ccfarm.model import LOCAL, LeaseGranted, LeaseRefused, LeaseRevoked
from tests.component._control import GCC, SchedulerRig, host_report, lease_request
from tests.component._loop import idle

GRANT = LeaseGranted(1, 42, "h1", "198.51.100.1", 3632)


class Scheduler:
    """One scripted scheduler: its answer is waiting before the client connects."""

    def __init__(self, answer: bytes = b"", *, close: bool = True) -> None:
        self.client_end, self.end = socket.socketpair()
        self.end.sendall(answer)
        if close:
            self.end.shutdown(socket.SHUT_WR)
        self.dialled: list[tuple[str, int, float]] = []
        self._parser = MessageParser(expect_hello=True)

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        self.dialled.append((address, port, timeout))
        return self.client_end

    def sent(self) -> list[ControlMessage]:
        """What the client sent since the last call (after the hello, checked)."""
        self.end.setblocking(False)
        data = b""
        try:
            while chunk := self.end.recv(65536):
                data += chunk
        except BlockingIOError:
            pass
        self._parser.receive_data(data)
        return list(self._parser.messages())

    def client_closed(self) -> bool:
        return self.client_end.fileno() == -1

    def close(self) -> None:
        self.client_end.close()
        self.end.close()


class SilentSocket:
    """A scheduler that accepted the connection and then never answers."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []
        self.sent = b""
        self.closed = False

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def recv(self, size: int) -> bytes:
        raise TimeoutError("timed out")

    def close(self) -> None:
        self.closed = True


class Dialler:
    """connect() for several scripted schedulers, by address; others refuse."""

    def __init__(self, **schedulers: Scheduler | SilentSocket) -> None:
        self.schedulers = schedulers
        self.dialled: list[str] = []

    def __call__(self, address: str, port: int, timeout: float) -> object:
        self.dialled.append(address)
        if address not in self.schedulers:
            raise ConnectionRefusedError(111, "Connection refused")
        found = self.schedulers[address]
        return found.client_end if isinstance(found, Scheduler) else found


@pytest.fixture
def scheduler() -> Iterator[type[Scheduler]]:
    made: list[Scheduler] = []

    def make(*args: object, **kwargs: object) -> Scheduler:
        made.append(Scheduler(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make  # type: ignore[misc]
    for s in made:
        s.close()


# -- answers -------------------------------------------------------------------------------


def test_a_grant_is_a_lease_and_release_gives_it_back(scheduler: type[Scheduler]) -> None:
    s = scheduler(m.encode_granted(1, GRANT), close=False)
    lease = request_lease(
        [("sched", 3634)], GCC, wait=30.0, client="alice/a", size=1234, connect=s.connect
    )
    assert isinstance(lease, Lease) and lease.grant == GRANT
    assert s.dialled == [("sched", 3634, 2.0)]
    (sent,) = s.sent()
    client_id, request = m.decode_lease_request(sent, 99)
    assert client_id == 1
    assert (request.client, request.compiler, request.timeout, request.size) == (
        "alice/a",
        GCC,
        30.0,
        1234,
    )
    assert not s.client_closed()  # held while the job runs

    lease.release()
    (released,) = s.sent()
    assert m.decode_release(released) == 42
    assert s.client_closed()


def test_a_refusal_is_no_lease_from_a_scheduler_that_answered(scheduler: type[Scheduler]) -> None:
    s = scheduler(m.encode_refused(1, LeaseRefused(1, "no host has this compiler")))
    with pytest.raises(NoLease, match="no host has this compiler") as caught:
        request_lease([("sched", 3634)], GCC, client="a/a", connect=s.connect)
    assert caught.value.answered
    assert s.client_closed()


BAD_ANSWERS = {
    "grant-without-lease": encode(
        m.LEASE_GRANTED, {"id": 1, "host": "h1", "address": "198.51.100.1", "port": 3632}
    ),
    "grant-without-port": encode(
        m.LEASE_GRANTED, {"id": 1, "lease": 4, "host": "h1", "address": "198.51.100.1"}
    ),
    "grant-bad-lease": encode(
        m.LEASE_GRANTED, {"lease": "x", "host": "h1", "address": "a", "port": 3632}
    ),
    "revocation": m.encode_revoked(1, LeaseRevoked(42, 1, "host left")),
    "unknown-kind": encode("ZZZZ"),
    "closed-unanswered": b"",
    "closed-mid-message": m.encode_granted(1, GRANT)[:20],
    "noise": b"HTTP/1.1 400 Bad Request\r\n\r\n",
}


@pytest.mark.parametrize("name", list(BAD_ANSWERS))
def test_a_bad_answer_is_no_lease_never_a_crash(scheduler: type[Scheduler], name: str) -> None:
    s = scheduler(BAD_ANSWERS[name])
    with pytest.raises(NoLease, match=r"^sched:3634: ") as caught:
        request_lease([("sched", 3634)], None, client="a/a", connect=s.connect)
    assert not caught.value.answered  # as if no scheduler answered: the wrapper goes on
    assert s.client_closed()


def test_a_silent_scheduler_fails_after_the_scheduler_timeout_not_the_wait() -> None:
    silent = SilentSocket()
    failed: list[tuple[str, int]] = []
    with pytest.raises(NoLease, match="timed out") as caught:
        request_lease(
            [("sched", 3634)],
            None,
            connect_timeout=1.5,
            wait=10.0,
            client="a/a",
            connect=lambda *_: silent,  # type: ignore[arg-type,return-value]
            failed=lambda *where: failed.append(where),
        )
    assert not caught.value.answered
    assert silent.timeouts == [1.5]  # its first answer is due at once (LGNT, LREF or LQUE)
    assert silent.sent.startswith(MAGIC) and silent.closed
    assert failed == [("sched", 3634)]


def test_queued_then_granted_waits_for_the_slot(scheduler: type[Scheduler]) -> None:
    s = scheduler(m.encode_queued(1), close=False)
    timeouts: list[float | None] = []
    real = s.client_end.settimeout

    class Recording:
        def settimeout(self, value: float | None) -> None:
            timeouts.append(value)
            real(value)
            if len(timeouts) == 2:  # the grant comes while the client waits
                s.end.sendall(m.encode_granted(1, GRANT))

        def __getattr__(self, name: str) -> object:
            return getattr(s.client_end, name)

    failed: list[object] = []
    lease = request_lease(
        [("sched", 3634)],
        None,
        wait=30.0,
        client="a/a",
        connect=lambda *_: Recording(),  # type: ignore[arg-type,return-value]
        failed=failed.append,
        clock=lambda: 100.0,
    )
    assert isinstance(lease, Lease) and lease.grant == GRANT and failed == []
    assert timeouts == [2.0, 32.0]  # the first answer, then the wait for a slot
    lease.release()


def test_queued_then_silent_is_a_failed_scheduler(scheduler: type[Scheduler]) -> None:
    s = scheduler(m.encode_queued(1))  # and closes
    failed: list[tuple[str, int]] = []
    with pytest.raises(NoLease, match="closed") as caught:
        request_lease(
            [("sched", 3634)],
            None,
            client="a/a",
            connect=s.connect,
            failed=lambda *w: failed.append(w),
        )
    assert not caught.value.answered and failed == [("sched", 3634)]


def test_a_refusal_does_not_mark_the_scheduler_failed(scheduler: type[Scheduler]) -> None:
    s = scheduler(m.encode_queued(1) + m.encode_refused(1, LeaseRefused(1, "no host in time")))
    failed: list[object] = []
    with pytest.raises(NoLease, match="no host in time"):
        request_lease(
            [("sched", 3634)], None, client="a/a", connect=s.connect, failed=failed.append
        )
    assert failed == []


# -- the client's own machine: a local slot instead of a wait ----------------------------------


def test_a_local_refusal_is_no_lease_that_says_local(scheduler: type[Scheduler]) -> None:
    note = "no free host is faster (best free 2, client 2.5)"
    s = scheduler(m.encode_refused(1, LeaseRefused(1, LOCAL, note)))
    answered: list[tuple[str, int]] = []
    with pytest.raises(NoLease) as caught:
        request_lease(
            [("sched", 3634)],
            None,
            client="a/a",
            connect=s.connect,
            answered=lambda *where: answered.append(where),
            local_slot=True,
            local_speed=2.5,
        )
    assert caught.value.local and caught.value.answered and str(caught.value) == note
    assert answered == [("sched", 3634)]
    (sent,) = s.sent()
    assert sent.first()["local_slot"] == "1" and sent.first()["local_speed"] == "2.5"
    # any other refusal is not "local"
    s = scheduler(m.encode_refused(1, LeaseRefused(1, "no host has this compiler")))
    with pytest.raises(NoLease) as caught:
        request_lease([("sched", 3634)], None, client="a/a", connect=s.connect)
    assert not caught.value.local and caught.value.answered


def test_queued_while_a_local_slot_is_held_withdraws_at_once(scheduler: type[Scheduler]) -> None:
    """An older scheduler (it ignores local_slot) queues the request: the slot held wins."""
    s = scheduler(m.encode_queued(1), close=False)
    held = object()
    got = request_lease(
        [("sched", 3634)], None, client="a/a", connect=s.connect, local=lambda: held
    )
    assert got is held and s.client_closed()  # the close withdraws the request


def test_queued_then_a_local_slot_frees_before_a_host(scheduler: type[Scheduler]) -> None:
    s = scheduler(m.encode_queued(1), close=False)
    polls: list[int] = []

    def local() -> str | None:
        polls.append(1)
        return "slot" if len(polls) == 4 else None

    got = request_lease(
        [("sched", 3634)], None, wait=30, client="a/a", connect=s.connect, local=local
    )
    assert got == "slot" and len(polls) == 4 and s.client_closed()


def test_a_grant_in_pieces_across_local_polls_is_read_whole(scheduler: type[Scheduler]) -> None:
    grant = m.encode_granted(1, GRANT)
    s = scheduler(m.encode_queued(1) + grant[:7], close=False)
    polls: list[int] = []

    def local() -> None:
        polls.append(1)
        if len(polls) == 2:
            s.end.sendall(grant[7:])  # the rest comes while the client polls

    got = request_lease([("sched", 3634)], None, client="a/a", connect=s.connect, local=local)
    assert isinstance(got, Lease) and got.grant == GRANT and len(polls) >= 2
    got.release()


def test_queued_and_no_answer_by_the_deadline_while_polling(scheduler: type[Scheduler]) -> None:
    s = scheduler(m.encode_queued(1), close=False)
    failed: list[tuple[str, int]] = []
    with pytest.raises(NoLease, match="no answer in time") as caught:
        request_lease(
            [("sched", 3634)],
            None,
            wait=0.1,
            connect_timeout=0.1,
            client="a/a",
            connect=s.connect,
            failed=lambda *where: failed.append(where),
            local=lambda: None,
        )
    assert not caught.value.answered and failed == [("sched", 3634)]


def test_scheduler_marks_are_set_skipped_and_cleared(tmp_path: Path) -> None:
    marks = SchedulerMarks(str(tmp_path), 60.0)
    a, b = ("a", 3634), ("b", 1)
    assert marks.to_ask([a, b]) == [a, b]
    marks.failed(*a)
    assert marks.to_ask([a, b]) == [b]
    marks.failed(*b)
    assert isinstance(marks.to_ask([a, b]), UseHostLists)
    marks.answered(*a)  # a round trip elsewhere (another job, gethost) proved it alive
    assert marks.to_ask([a, b]) == [a]
    marks.answered(*a)  # no mark: nothing to do
    off = SchedulerMarks(str(tmp_path / "off"), 0.0)  # CCFARM_BACKOFF_PERIOD=0: no marks
    off.failed(*a)
    assert off.to_ask([a]) == [a] and not (tmp_path / "off").exists()


# -- a held lease: revocations and reports ------------------------------------------------------


def test_a_held_lease_hears_its_revocation_and_reports_failed_hosts(
    scheduler: type[Scheduler],
) -> None:
    s = scheduler(m.encode_granted(1, GRANT), close=False)
    lease = request_lease([("sched", 3634)], None, client="a/a", connect=s.connect)
    s.sent()
    lease.report_failed("cannot connect: Connection refused")
    (report,) = s.sent()
    assert report.kind == m.HOST_FAILED
    assert m.decode_host_failed(report) == (42, "cannot connect: Connection refused")
    s.end.sendall(m.encode_revoked(1, LeaseRevoked(41, 1, "another lease")))
    assert lease.lost() == ""
    s.end.sendall(m.encode_revoked(1, LeaseRevoked(42, 1, "host left")))
    assert lease.lost() == "lease revoked: host left"
    s.end.shutdown(socket.SHUT_WR)
    assert lease.lost() == "the scheduler closed the lease's connection"
    lease.release()


# -- several schedulers ------------------------------------------------------------------------


def test_the_first_scheduler_that_answers_is_used(scheduler: type[Scheduler]) -> None:
    second = scheduler(m.encode_granted(1, GRANT), close=False)
    dial = Dialler(b=second)
    lease = request_lease([("a", 3634), ("b", 3634)], None, client="c/c", connect=dial)  # type: ignore[arg-type]
    assert lease.grant.lease == 42 and dial.dialled == ["a", "b"]
    lease.release()


def test_a_broken_scheduler_is_skipped_for_the_next(scheduler: type[Scheduler]) -> None:
    broken = scheduler(b"garbage!garbage!")
    refusing = scheduler(m.encode_refused(1, LeaseRefused(1, "no free host in time")))
    dial = Dialler(a=broken, b=refusing, c=SilentSocket())
    with pytest.raises(NoLease, match="no free host in time") as caught:
        request_lease([("a", 1), ("b", 2), ("c", 3)], None, client="c/c", connect=dial)  # type: ignore[arg-type]
    assert caught.value.answered and dial.dialled == ["a", "b"]


def test_no_scheduler_up_is_no_lease_naming_the_last_one() -> None:
    dial = Dialler()
    with pytest.raises(NoLease, match="^b:7: Connection refused$") as caught:
        request_lease([("a", 6), ("b", 7)], None, client="c/c", connect=dial)  # type: ignore[arg-type]
    assert not caught.value.answered and dial.dialled == ["a", "b"]


def test_no_scheduler_configured_is_no_lease() -> None:
    with pytest.raises(NoLease, match="no scheduler configured"):
        request_lease([], None, client="c/c")


def test_scheduler_lists_and_client_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_schedulers("a, b:4000,[::1]:5") == [("a", 3634), ("b", 4000), ("::1", 5)]
    monkeypatch.setenv("CCFARM_CLIENT_NAME", "ci-runner/7")
    assert client_name() == "ci-runner/7"
    monkeypatch.delenv("CCFARM_CLIENT_NAME")
    monkeypatch.setenv("USER", "alice")
    assert client_name().endswith("/alice")


# -- against the real scheduler service ---------------------------------------------------------


class _Announcing:
    """A socket that tells the event loop each time the thread has sent something."""

    def __init__(self, sock: socket.socket, sent: asyncio.Queue[None]) -> None:
        self._sock = sock
        self._sent = sent
        self._loop = asyncio.get_running_loop()

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self._loop.call_soon_threadsafe(self._sent.put_nowait, None)

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


async def _lease_in_thread(
    rig: SchedulerRig, **kwargs: object
) -> tuple[asyncio.Queue[None], asyncio.Future[Lease]]:
    """request_lease in a thread, its socketpair's other end served by `rig`.

    Returns a queue that gets an item each time the thread sent something,
    and the thread's result.
    """
    client_end, end = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=end)
    rig.extra_tasks.append(asyncio.ensure_future(rig.service.handle_connection(reader, writer)))
    sent: asyncio.Queue[None] = asyncio.Queue()
    wrapped = _Announcing(client_end, sent)
    call = functools.partial(
        request_lease, [("sched", 3634)], None, connect=lambda *_: wrapped, **kwargs
    )
    return sent, asyncio.get_running_loop().run_in_executor(None, call)


async def test_the_wrapper_gets_and_releases_a_lease_from_the_real_scheduler() -> None:
    asyncio.get_running_loop().autojump = False  # type: ignore[attr-defined]
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        _, asked = await _lease_in_thread(rig, client="alice/a", size=100)
        lease = await asked
        assert (lease.grant.host, lease.grant.address) == ("h1", host_report("h1").address)
        assert [j["client"] for j in await rig.jobs()] == ["alice/a"]
        lease.release()
        await idle()
        assert await rig.jobs() == []
        await asyncio.gather(*rig.extra_tasks)


async def test_a_waiting_wrapper_is_granted_the_slot_another_frees() -> None:
    asyncio.get_running_loop().autojump = False  # type: ignore[attr-defined]
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        holder = rig.peer()
        first = m.decode_granted(await holder.ask(lease_request("bob/b"), kind=m.LEASE_GRANTED))
        sent, asked = await _lease_in_thread(rig, client="alice/a")
        await sent.get()  # its request is on the way
        await idle()
        assert [j["state"] for j in await rig.jobs()] == ["running", "waiting"]
        holder.send(m.encode_release(first.lease))
        lease = await asked
        assert lease.grant.host == "h1"
        lease.release()
        await asyncio.gather(*rig.extra_tasks)


# -- the farm secret ---------------------------------------------------------------------

SECRET = b"the farm's own secret, 32 bytes."


def test_with_a_secret_a_scheduler_that_does_not_prove_it_gets_no_request(
    scheduler: type[Scheduler],
) -> None:
    """A fake scheduler answers a grant at once: the client wanted its proof first."""
    fake = scheduler(m.encode_granted(1, GRANT))
    failed: list[tuple[str, int]] = []
    with pytest.raises(NoLease, match="authentication required: expected ACHL, got 'LGNT'") as no:
        request_lease(
            [("fake", 3634)],
            None,
            connect=fake.connect,
            secret=SECRET,
            failed=lambda a, p: failed.append((a, p)),
        )
    assert not no.value.answered and failed == [("fake", 3634)]
    fake.end.setblocking(False)
    sent = fake.end.recv(65536)
    assert sent[:16] == MAGIC + b"00000001AUTH" and len(sent) == 12 + 12 + 32  # no LREQ


async def test_a_wrapper_with_the_secret_gets_a_lease_from_a_scheduler_with_it() -> None:
    asyncio.get_running_loop().autojump = False  # type: ignore[attr-defined]
    async with SchedulerRig(secret=SECRET) as rig:
        await rig.host(host_report("h1", slots=1))
        _, asked = await _lease_in_thread(rig, client="alice/a", secret=SECRET)
        lease = await asked
        assert lease.grant.host == "h1"
        assert [j["client"] for j in await rig.jobs()] == ["alice/a"]
        lease.release()
        await idle()
        assert await rig.jobs() == []
        await asyncio.gather(*rig.extra_tasks)


@pytest.mark.parametrize("secret", [None, b"a guess at the farm's secret....."])
async def test_a_wrapper_without_the_secret_gets_nothing(secret: bytes | None) -> None:
    asyncio.get_running_loop().autojump = False  # type: ignore[attr-defined]
    async with SchedulerRig(secret=SECRET) as rig:
        await rig.host(host_report("h1", slots=1))
        _, asked = await _lease_in_thread(rig, client="mallory/m", secret=secret)
        with pytest.raises(NoLease) as no:
            await asked
        assert not no.value.answered
        expected = "authentication required" if secret is None else "server does not know"
        assert expected in str(no.value)
        assert await rig.jobs() == []
        await asyncio.gather(*rig.extra_tasks)


async def test_the_real_scheduler_keeps_a_job_with_a_free_local_slot_at_once() -> None:
    asyncio.get_running_loop().autojump = False  # type: ignore[attr-defined]
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1, speed=2.0))
        holder = rig.peer()
        await holder.ask(lease_request("bob/b"), kind=m.LEASE_GRANTED)
        # every slot taken, a local slot free: "local" at once, no LQUE
        _, asked = await _lease_in_thread(rig, client="alice/a", local_slot=True, local_speed=1.0)
        with pytest.raises(NoLease) as caught:
            await asked
        assert caught.value.local and str(caught.value) == "no free host"
        assert [j["state"] for j in await rig.jobs()] == ["running"]  # nothing waits
        await asyncio.gather(*rig.extra_tasks)


async def test_a_wrapper_whose_local_slot_frees_withdraws_its_waiting_request() -> None:
    asyncio.get_running_loop().autojump = False  # type: ignore[attr-defined]
    async with SchedulerRig() as rig:
        await rig.host(host_report("h1", slots=1))
        holder = rig.peer()
        first = m.decode_granted(await holder.ask(lease_request("bob/b"), kind=m.LEASE_GRANTED))
        free = threading.Event()
        sent, asked = await _lease_in_thread(
            rig, client="alice/a", local=lambda: "slot" if free.is_set() else None
        )
        await sent.get()
        await idle()
        assert [j["state"] for j in await rig.jobs()] == ["running", "waiting"]
        free.set()  # this machine's slot frees before the farm's
        assert await asked == "slot"
        await asyncio.gather(*rig.extra_tasks)  # the service saw the close
        assert [j["state"] for j in await rig.jobs()] == ["running"]
        holder.send(m.encode_release(first.lease))  # the freed slot goes to nobody
        await idle()
        assert await rig.jobs() == []
