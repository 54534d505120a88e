"""Slot locks and backoff marks, with real fcntl locks in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ccfarm.client import slots
from ccfarm.client.hosts import parse_hosts


def _hosts(text: str):  # type: ignore[no-untyped-def]
    return parse_hosts(text).hosts


def _acquire(state: Path, text: str, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("deadline", 0.0)
    kw.setdefault("clock", lambda: 1.0)
    return slots.acquire_slot(
        str(state), _hosts(text), now=time.time(), backoff_period=60, sleep=lambda s: None, **kw
    )


def test_breadth_first_order(tmp_path: Path) -> None:
    held = [_acquire(tmp_path, "a/2 b/3") for _ in range(5)]
    assert [(s.spec.host, s.number) for s in held] == [
        ("a", 0),
        ("b", 0),
        ("a", 1),
        ("b", 1),
        ("b", 2),
    ]
    assert _acquire(tmp_path, "a/2 b/3") is None  # all busy and deadline passed
    held[0].release()
    again = _acquire(tmp_path, "a/2 b/3")
    assert (again.spec.host, again.number) == ("a", 0)
    assert sorted(os.listdir(tmp_path / "lock"))[0] == "cpu_tcp_a_3632_0"


def test_lock_excludes_other_processes(tmp_path: Path) -> None:
    slot = _acquire(tmp_path, "a/1")
    assert slot is not None
    code = (
        "import sys, fcntl, os\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
        "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n"
        "    sys.exit(3)\n"
    )
    path = tmp_path / "lock" / "cpu_tcp_a_3632_0"
    assert subprocess.run([sys.executable, "-c", code, str(path)]).returncode == 3
    slot.release()
    assert subprocess.run([sys.executable, "-c", code, str(path)]).returncode == 0


def test_waits_then_gets_slot(tmp_path: Path) -> None:
    first = _acquire(tmp_path, "a/1")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        first.release()

    slot = slots.acquire_slot(
        str(tmp_path), _hosts("a/1"), now=0, backoff_period=60, sleep=sleep, pause=0.25
    )
    assert slot is not None and sleeps == [0.25]


def test_backoff_skips_host_until_it_expires(tmp_path: Path) -> None:
    (spec,) = _hosts("a")
    slots.mark_backoff(str(tmp_path), spec)
    assert slots.is_backed_off(str(tmp_path), spec, now=time.time(), period=60)
    b = _acquire(tmp_path, "a b")
    assert b.spec.host == "b"
    marker = tmp_path / "lock" / "backoff_tcp_a_3632_0"
    assert marker.read_bytes() == b"x"
    old = time.time() - 120
    os.utime(marker, (old, old))
    a = _acquire(tmp_path, "a b")
    assert a.spec.host == "a"
    slots.clear_backoff(str(tmp_path), spec)
    assert not marker.exists()


def test_no_usable_host(tmp_path: Path) -> None:
    assert _acquire(tmp_path, "a,down u@b") is None


def test_local_slots(tmp_path: Path) -> None:
    got = [
        slots.acquire_local_slot(
            str(tmp_path), 2, sleep=lambda s: None, deadline=0, clock=lambda: 1
        )
        for _ in range(3)
    ]
    assert [s.number if s else None for s in got] == [0, 1, None]
    assert "cpu_localhost_0" in os.listdir(tmp_path / "lock")


def test_state_dir() -> None:
    assert slots.state_dir({"CCFARM_DIR": "/a", "DISTCC_DIR": "/b"}) == "/a"
    assert slots.state_dir({"DISTCC_DIR": "/b"}) == "/b"
    assert slots.state_dir({"HOME": "/h"}) == "/h/.distcc"
