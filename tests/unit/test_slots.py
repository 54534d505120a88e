"""Slot locks and backoff marks, with real fcntl locks in a temporary directory."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ccfarm.client.hosts import slots
from ccfarm.client.hosts.hostlist import HostSpec, parse_hosts

SRC = str(Path(slots.__file__).resolve().parents[2])
NOW = 1_000_000.0


def _hosts(text: str) -> tuple[HostSpec, ...]:
    return parse_hosts(text).hosts


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}")


def _try(state: Path, text: str, **kw: object) -> slots.Slot | None:
    """One pass, no waiting (the deadline is now)."""
    return slots.acquire_slot(
        str(state),
        _hosts(text),
        now=kw.pop("now", time.time()),  # type: ignore[arg-type]
        backoff_period=60,
        sleep=_no_sleep,
        deadline=0.0,
        clock=lambda: 0.0,
        **kw,  # type: ignore[arg-type]
    )


def _got(slot: slots.Slot | None) -> tuple[str, int] | None:
    return None if slot is None else (slot.spec.text, slot.number)


# -- another process -----------------------------------------------------------

LOCKF = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("busy", flush=True)
    sys.exit(0)
print("locked", flush=True)
sys.stdin.read()
"""


def _can_lock_elsewhere(path: Path) -> bool:
    """Could another process take the fcntl write lock on `path` right now?"""
    proc = subprocess.run(
        [sys.executable, "-c", LOCKF, str(path)],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.stdout.strip() == "locked"


@contextmanager
def _held_elsewhere(path: Path) -> Iterator[None]:
    """Another process holds the lock on `path` for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKF, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


# -- state directory ---------------------------------------------------------------


def test_state_dir() -> None:
    assert slots.state_dir({"CCFARM_DIR": "/a", "DISTCC_DIR": "/b", "HOME": "/h"}) == "/a"
    assert slots.state_dir({"CCFARM_DIR": "", "DISTCC_DIR": "/b"}) == "/b"
    assert slots.state_dir({"DISTCC_DIR": "/b", "HOME": "/h"}) == "/b"
    assert slots.state_dir({"HOME": "/h"}) == "/h/.distcc"
    assert slots.state_dir({}).endswith("/.distcc")


def test_creates_the_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "not" / "yet"
    slot = _try(state, "a")
    assert _got(slot) == ("a", 0)
    assert sorted(os.listdir(state)) == ["lock", "state"]
    assert os.listdir(state / "lock") == ["cpu_tcp_a_3632_0"]
    assert (state / "lock" / "cpu_tcp_a_3632_0").stat().st_size == 0


def test_unusable_state_directory_raises(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    with pytest.raises(OSError):
        _try(state, "a")
    (spec,) = _hosts("a")
    slots.mark_backoff(str(state), spec)  # best effort: no error
    slots.clear_backoff(str(state), spec)
    assert not slots.is_backed_off(str(state), spec, now=NOW, period=60)


@pytest.mark.parametrize(
    "text,name",
    [
        ("h1", "cpu_tcp_h1_3632_0"),
        ("h1:4000/2,lzo", "cpu_tcp_h1_4000_0"),
        ("[::1]:9", "cpu_tcp_::1_9_0"),
        ("localhost/3", "cpu_localhost_0"),
    ],
)
def test_lock_file_names_are_distccs(tmp_path: Path, text: str, name: str) -> None:
    slot = _try(tmp_path, text)
    assert slot is not None and os.path.basename(slot.path) == name
    (spec,) = _hosts(text)
    assert slots.slot_file("S", spec, 5) == os.path.join("S", "lock", name[:-1] + "5")


# -- order -------------------------------------------------------------------------


def test_breadth_first_order(tmp_path: Path) -> None:
    text = "a/2 b/3 localhost/1"
    held = [_try(tmp_path, text) for _ in range(6)]
    assert [_got(s) for s in held] == [
        ("a/2", 0),
        ("b/3", 0),
        ("localhost/1", 0),
        ("a/2", 1),
        ("b/3", 1),
        ("b/3", 2),
    ]
    assert held[2] is not None and held[2].spec.kind == "local"
    assert _try(tmp_path, text) is None  # all busy, deadline passed
    assert held[3] is not None
    held[3].release()
    assert _got(_try(tmp_path, text)) == ("a/2", 1)  # the lowest free slot


def test_skips_slots_held_by_another_process(tmp_path: Path) -> None:
    with _held_elsewhere(tmp_path / "lock" / "cpu_tcp_a_3632_0"):
        assert _got(_try(tmp_path, "a/2 b/1")) == ("b/1", 0)
        assert _got(_try(tmp_path, "a/2 b/1")) == ("a/2", 1)
        assert _try(tmp_path, "a/2 b/1") is None
    assert _got(_try(tmp_path, "a/2 b/1")) == ("a/2", 0)


def test_held_slot_excludes_other_processes(tmp_path: Path) -> None:
    slot = _try(tmp_path, "a/1")
    assert slot is not None
    path = tmp_path / "lock" / "cpu_tcp_a_3632_0"
    assert not _can_lock_elsewhere(path)
    slot.release()
    assert _can_lock_elsewhere(path)


def test_trying_a_held_slot_again_keeps_the_lock(tmp_path: Path) -> None:
    # fcntl locks are per process: opening and closing the file a second time
    # from this process would silently drop the lock the first slot holds.
    slot = _try(tmp_path, "a/1")
    assert slot is not None
    assert _try(tmp_path, "a/1") is None
    assert _try(tmp_path / "." / "lock" / "..", "a/1") is None  # another spelling
    assert not _can_lock_elsewhere(tmp_path / "lock" / "cpu_tcp_a_3632_0")
    slot.release()
    assert _got(_try(tmp_path, "a/1")) == ("a/1", 0)


CLAIM = """
import sys, time
from ccfarm.client.hosts import slots
from ccfarm.client.hosts.hostlist import parse_hosts
slot = slots.acquire_slot(sys.argv[1], parse_hosts("a/2 b/1").hosts, now=time.time(),
    backoff_period=60, sleep=time.sleep, deadline=0.0, clock=lambda: 0.0)
print("none" if slot is None else f"{slot.spec.host}{slot.number}", flush=True)
sys.stdin.read()
"""


def test_concurrent_processes_never_share_a_slot(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(6)
    ]
    try:
        got = [p.stdout.readline().strip() for p in procs if p.stdout is not None]
    finally:
        for p in procs:
            assert p.stdin is not None and p.stdout is not None
            p.stdin.close()
            p.wait(timeout=30)
            p.stdout.close()
    assert sorted(got) == ["a0", "a1", "b0", "none", "none", "none"]


def test_randomize_shuffles_with_the_given_rng(tmp_path: Path) -> None:
    names = [f"h{i}" for i in range(8)]
    expected = list(names)
    random.Random(7).shuffle(expected)
    assert expected != names
    held = [_try(tmp_path, " ".join(names), randomize=True, rng=random.Random(7)) for _ in names]
    assert [s.spec.host for s in held if s is not None] == expected
    other = _try(tmp_path / "2", "a b", randomize=True)  # without an rng: its own
    assert other is not None and other.spec.host in "ab"


# -- unusable hosts and backoff ----------------------------------------------------


def test_unusable_hosts_are_never_used(tmp_path: Path) -> None:
    assert _try(tmp_path, "a,down u@b c,auth") is None
    assert _got(_try(tmp_path, "a,down u@b c,auth localhost")) == ("localhost", 0)
    assert not (tmp_path / "lock" / "cpu_tcp_a_3632_0").exists()


def test_backoff_skips_host_until_it_expires(tmp_path: Path) -> None:
    (spec,) = _hosts("a")
    state = str(tmp_path)
    assert not slots.is_backed_off(state, spec, now=NOW, period=60)
    slots.mark_backoff(state, spec)
    marker = tmp_path / "lock" / "backoff_tcp_a_3632_0"
    assert marker.read_bytes() == b"x"
    slots.mark_backoff(state, spec)  # again: still one byte, fresh mtime
    assert marker.read_bytes() == b"x"

    def at(mtime: float) -> bool:
        os.utime(marker, (mtime, mtime))
        return slots.is_backed_off(state, spec, now=NOW, period=60)

    assert at(NOW) and at(NOW - 59.5)
    assert not at(NOW - 60) and not at(NOW - 3600)
    assert at(NOW + 5)  # a little in the future: a fresh mark from a skewed clock
    assert not at(NOW + 3600)  # far in the future: bogus, ignored
    os.utime(marker, (NOW, NOW))
    assert not slots.is_backed_off(state, spec, now=NOW, period=0)  # 0 disables backoff

    assert _got(_try(tmp_path, "a b", now=NOW + 30)) == ("b", 0)
    assert _got(_try(tmp_path, "a b", now=NOW + 61)) == ("a", 0)
    slots.clear_backoff(state, spec)
    assert not marker.exists()
    slots.clear_backoff(state, spec)  # nothing to clear: fine


def test_backoff_with_real_mtime(tmp_path: Path) -> None:
    (spec,) = _hosts("a:99")
    slots.mark_backoff(str(tmp_path), spec)
    assert (tmp_path / "lock" / "backoff_tcp_a_99_0").exists()
    assert slots.is_backed_off(str(tmp_path), spec, now=time.time(), period=60)


def test_all_hosts_backed_off_gives_none_without_waiting(tmp_path: Path) -> None:
    for spec in _hosts("a b"):
        slots.mark_backoff(str(tmp_path), spec)
    got = slots.acquire_slot(
        str(tmp_path), _hosts("a b"), now=time.time(), backoff_period=60, sleep=_no_sleep
    )
    assert got is None
    assert slots.usable_hosts(str(tmp_path), _hosts("a b c"), now=time.time(), backoff_period=60)


# -- waiting -----------------------------------------------------------------------


def test_waits_until_a_slot_frees(tmp_path: Path) -> None:
    first = _try(tmp_path, "a/1")
    assert first is not None
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            first.release()

    slot = slots.acquire_slot(
        str(tmp_path), _hosts("a/1"), now=NOW, backoff_period=60, sleep=sleep, pause=0.25
    )
    assert _got(slot) == ("a/1", 0) and sleeps == [0.25, 0.25, 0.25]


def test_deadline_on_simulated_time(tmp_path: Path) -> None:
    first = _try(tmp_path, "a/1")
    assert first is not None
    sleeps: list[float] = []
    got = slots.acquire_slot(
        str(tmp_path),
        _hosts("a/1"),
        now=NOW,
        backoff_period=60,
        sleep=sleeps.append,
        pause=1.0,
        deadline=NOW + 2.5,
    )
    assert got is None and sleeps == [1.0, 1.0, 0.5]  # never sleeps past the deadline


def test_deadline_on_a_clock(tmp_path: Path) -> None:
    first = _try(tmp_path, "a/1")
    assert first is not None
    clock = [10.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds + 0.5  # sleeping overruns

    got = slots.acquire_slot(
        str(tmp_path),
        _hosts("a/1"),
        now=NOW,
        backoff_period=60,
        sleep=sleep,
        deadline=12.0,
        clock=lambda: clock[0],
    )
    assert got is None and clock[0] == 12.5  # slept 1, then only the 0.5 left


# -- local slots -------------------------------------------------------------------


def test_local_slots(tmp_path: Path) -> None:
    def local(count: int) -> slots.Slot | None:
        return slots.acquire_local_slot(
            str(tmp_path), count, sleep=_no_sleep, deadline=0, clock=lambda: 1
        )

    got = [local(2) for _ in range(3)]
    assert [s.number if s else None for s in got] == [0, 1, None]
    assert got[0] is not None and got[0].spec.kind == "local"
    assert sorted(os.listdir(tmp_path / "lock")) == ["cpu_localhost_0", "cpu_localhost_1"]
    assert local(0) is None
    assert _got(_try(tmp_path, "localhost/3")) == ("localhost/3", 2)  # same files


def test_local_slot_waits(tmp_path: Path) -> None:
    first = slots.acquire_local_slot(str(tmp_path), 1, sleep=_no_sleep)
    assert first is not None
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        first.release()

    again = slots.acquire_local_slot(str(tmp_path), 1, sleep=sleep, pause=0.1)
    assert again is not None and sleeps == [0.1]
    none = slots.acquire_local_slot(
        str(tmp_path), 1, sleep=sleeps.append, pause=1, now=5, deadline=7
    )
    assert none is None and sleeps == [0.1, 1, 1]


# -- the Slot object ---------------------------------------------------------------


def test_slot_release_and_context_manager(tmp_path: Path) -> None:
    with _try(tmp_path, "a/1") as slot:  # type: ignore[union-attr]
        assert slot.held and "held" in repr(slot)
        assert _try(tmp_path, "a/1") is None
    assert not slot.held and slot.fd == -1 and "released" in repr(slot)
    slot.release()  # twice: harmless
    assert _got(_try(tmp_path, "a/1")) == ("a/1", 0)
