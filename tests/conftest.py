"""Shared fixtures: real daemons on loopback addresses, real code, local references."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ccfarm.demo.farm import (
    LocalDaemon,
    distccd_command,
    scheduler_command,
    start_daemon,
    stop_daemon,
    stop_process,
    wait_listening,
)

REPO = Path(__file__).resolve().parent.parent
_next_host = [10]


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def next_address() -> str:
    """A fresh 127.0.1.N for each emulated host in this test session."""
    _next_host[0] += 1
    return f"127.0.1.{_next_host[0] % 250 + 2}"


def daemon_account() -> tuple[int, int] | None:
    """(uid, gid) a ccfarmd started by these tests runs as; None: as the tests' user."""
    if os.geteuid() != 0:
        return None
    import pwd

    from ccfarm.daemon.user import choose_account

    account = choose_account("", pwd.getpwnam)
    return account.pw_uid, account.pw_gid


@pytest.fixture(scope="session", autouse=True)
def daemon_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where this session's ccfarmd keep their speed probe (systemd's
    $STATE_DIRECTORY, inherited): not the machine's /var/lib/ccfarmd."""
    path = tmp_path_factory.mktemp("ccfarmd-state")
    before = os.environ.get("STATE_DIRECTORY")
    os.environ["STATE_DIRECTORY"] = str(path)
    yield path
    if before is None:
        os.environ.pop("STATE_DIRECTORY", None)
    else:
        os.environ["STATE_DIRECTORY"] = before


@pytest.fixture
def daemon_dir() -> Iterator[Path]:
    """A directory a test's ccfarmd may use (its --tmpdir, a --compiler-path) also
    after giving up root, which pytest's `tmp_path` (private to the tests' user)
    is not."""
    path = Path(tempfile.mkdtemp(prefix="ccfarm-test-"))
    account = daemon_account()
    if account is not None:
        os.chown(path, *account)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ccfarmd(tmp_path: Path) -> Iterator[object]:
    """Factory: start a real ccfarmd on its own 127.0.1.N address (started as
    root, it gives up root: see `daemon_dir`)."""
    started: list[LocalDaemon] = []

    def start(
        jobs: int = 2,
        extra: tuple[str, ...] = (),
        allow: tuple[str, ...] = ("127.0.0.0/8",),
        limit_files: int = 0,
    ) -> LocalDaemon:
        """`limit_files`: the daemon's RLIMIT_NOFILE from its start (0: as ours)."""
        address = next_address()
        wrapper = ("prlimit", f"--nofile={limit_files}:", "--") if limit_files else ()
        daemon = start_daemon(
            address, free_port(address), jobs, str(tmp_path), extra, wrapper, allow
        )
        started.append(daemon)
        return daemon

    yield start
    for d in started:
        stop_daemon(d)


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (scripts/setup.sh --test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def distccd(tmp_path: Path) -> Iterator[object]:
    """Factory: start Debian's real distccd on its own address."""
    binary = require_binary("distccd")
    procs: list[subprocess.Popen[bytes]] = []

    def start(jobs: int = 2) -> tuple[str, int]:
        address = next_address()
        port = free_port(address)
        with open(tmp_path / f"distccd-{address}.log", "wb") as log:
            proc = subprocess.Popen(
                distccd_command(binary, address, port, jobs),
                stdin=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "TMPDIR": "/tmp"},
            )
        procs.append(proc)
        wait_listening(address, port)
        return address, port

    yield start
    for p in procs:
        stop_process(p, 10)


@pytest.fixture
def client_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a wrapper run: private state dir, no fallback, no host list."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC_", "CCFARM_"))}
    state = tmp_path / "state"
    state.mkdir()
    env.update({"CCFARM_DIR": str(state), "DISTCC_DIR": str(state), "CCFARM_FALLBACK": "0"})
    env["CCFARM_HELPER_IDLE"] = "5"  # the fork server a test's jobs start leaves soon after
    # this machine's speed not told: a scheduler gives a job any free host, as a
    # test's farm expects (it still keeps a job here at once when no host is free)
    env["CCFARM_LOCAL_SPEED"] = "0"
    return env


@contextmanager
def local_slots_held(state: str) -> Iterator[list]:  # type: ignore[type-arg]
    """Every local compile slot of a wrapper with state directory `state` taken by
    the test, so that its jobs go to the farm (or wait for it) rather than
    compile here; yields the slots (the test may release one early)."""
    from ccfarm.client.hosts import slots

    count = len(os.sched_getaffinity(0))  # at least the wrapper's count (quota or CPUs)
    held = [
        slots.acquire_local_slot(state, count, sleep=time.sleep, deadline=0) for _ in range(count)
    ]
    assert all(s is not None for s in held)
    try:
        yield held
    finally:
        for s in held:
            s.release()  # type: ignore[union-attr]


def ccfarm_cmd() -> list[str]:
    return [sys.executable, "-m", "ccfarm.client.main"]


@pytest.fixture(scope="session")
def lua_root() -> Path:
    """Lua sources from PyPI's lupa sdist (downloaded once, cached)."""
    from ccfarm.demo.codebase import fetch_lupa

    cache = os.environ.get("CCFARM_CODEBASE_CACHE")
    return Path(fetch_lupa(cache))


def job_dirs(tmpdir: Path) -> list[Path]:
    """The job directories under a daemon's --tmpdir: everything but its own
    directories (`ccfarmd-ADDRESS-PORT`, there while it runs), what they hold,
    and the workspaces of its warm pool, made ahead of any job (linked there
    as `ready.NAME`)."""
    import re

    found: list[Path] = []
    ready: set[str] = set()
    for entry in tmpdir.iterdir():
        if re.fullmatch(r"ccfarmd-[0-9a-f.:]+-[0-9]+", entry.name) and entry.is_dir():
            for link in entry.iterdir():
                if link.name.startswith("ready."):
                    ready.add(link.name.removeprefix("ready."))
                else:
                    found.append(link)
        else:
            found.append(entry)
    return [p for p in found if p.name not in ready]


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False)


def ccfarm_exe() -> str:
    """The installed `ccfarm` console script (scripts/test.sh puts .venv/bin on PATH)."""
    path = shutil.which("ccfarm")
    if path is None:
        pytest.fail("the ccfarm console script is not on PATH; run scripts/test.sh")
    return path


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("testes", "manual", ".git"))
    return dst


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    """distcc byte captures: tests/captures (re-recorded by its record.py)."""
    path = Path(os.environ.get("CCFARM_CAPTURES", REPO / "tests" / "captures"))
    if not (path / "a-p1-plain.client.bin").exists():
        pytest.fail(f"distcc captures not found at {path} (CCFARM_CAPTURES)")
    return path


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[object]:
    """Factory: start a real ccfarm-scheduler; returns "address:port"."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str, address: str | None = None, port: int | None = None) -> str:
        address = address or next_address()
        port = port or free_port(address)
        log = tmp_path / f"scheduler-{address}.log"
        proc = subprocess.Popen(
            scheduler_command(address, port, ("--log-file", str(log), *extra)),
            stdin=subprocess.DEVNULL,
        )
        procs.append(proc)
        wait_listening(address, port)
        return f"{address}:{port}"

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def ctl(scheduler_address: str, *args: str) -> object:
    import json

    out = subprocess.run(
        [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", scheduler_address, "--json", *args],
        capture_output=True,
        check=True,
    )
    return json.loads(out.stdout)


def slow_source(path: Path, functions: int = 1500) -> None:
    """A C file that takes gcc -O2 a while (about a second per 1,500 functions)."""
    body = "\n".join(
        f"double f{i}(double x) {{ double s = 0; for (int k = 0; k < {i % 50 + 3}; k++) "
        f"s += x * k / (k + {i + 1}.0); return s; }}"
        for i in range(functions)
    )
    path.write_text(body + "\n")


def processes() -> Iterator[tuple[int, list[bytes], list[str]]]:
    """(pid, argv, fields of /proc/PID/stat after the command name) of every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry), argv, fields
