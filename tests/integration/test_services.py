"""ccfarmd and ccfarm-scheduler as services, run as an operator or systemd
runs them: start-up errors in the terminal, readiness, logs, signals."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, next_address, wait_for

DAEMON = [sys.executable, "-m", "ccfarm.daemon.main"]
SCHEDULER = [sys.executable, "-m", "ccfarm.scheduler.main"]
CTL = [sys.executable, "-m", "ccfarm.cli.ctl"]
#: a generous bound for "the command does not hang"
NO_STALL = 30


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Processes a test started that are not its children (detached daemons)."""
    started: list[int] = []
    yield started
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _listening(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
        return True
    except OSError:
        return False


def _taken(address: str) -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


def _one_line(err: str, program: str) -> str:
    assert err.startswith(f"{program}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(("program", "cmd"), [("ccfarmd", DAEMON), ("ccfarm-scheduler", SCHEDULER)])
def test_a_taken_port_is_an_error_before_detaching(program: str, cmd: list[str]) -> None:
    address = next_address()
    sock, port = _taken(address)
    # ccfarmd detaches by default; the scheduler when asked
    extra = ["-a", "127.0.0.1"] if program == "ccfarmd" else ["--detach"]
    with sock:
        done = subprocess.run(
            [*cmd, "--listen", address, "--port", str(port), *extra],
            capture_output=True,
            text=True,
            timeout=NO_STALL,
        )
    assert done.returncode == 102
    err = _one_line(done.stderr, program)
    assert f"cannot listen on {address}:{port}: Address already in use" in err


@pytest.mark.parametrize(
    ("args", "says", "status"),
    [
        (["--listen", "no-such-host.invalid"], "cannot listen on no-such-host.invalid:", 102),
        (["--listen", "127.0.0.1", "--port", "70000"], "cannot listen on 127.0.0.1:70000", 102),
        (["--log-file", "/proc/no/such/file"], "cannot open log file /proc/no/such/file", 1),
    ],
)
def test_other_start_up_errors_are_one_line(args: list[str], says: str, status: int) -> None:
    address = next_address()
    where = ["--listen", address, "--port", str(free_port(address))]  # the case's own win
    cmd = [*DAEMON, "-a", "127.0.0.1", *where, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=NO_STALL)
    assert done.returncode == status and says in _one_line(done.stderr, "ccfarmd")


def test_an_error_after_detaching_reaches_the_terminal(tmp_path: Path) -> None:
    address = next_address()
    port = free_port(address)
    done = subprocess.run(
        [*DAEMON, "-a", "127.0.0.1", "--listen", address, "--port", str(port),
         "--pid-file", str(tmp_path / "no" / "dir" / "ccfarmd.pid"),
         "--log-file", str(tmp_path / "d.log")],
        capture_output=True, text=True, timeout=NO_STALL,
    )  # fmt: skip
    assert done.returncode == 1
    assert "cannot write pid file" in _one_line(done.stderr, "ccfarmd")
    assert "cannot write pid file" in (tmp_path / "d.log").read_text()
    assert not _listening(address, port)  # the daemon is gone


def test_detached_the_command_returns_when_it_listens_and_warns_without_allow(
    daemon_dir: Path, pids: list[int]
) -> None:
    tmp_path = daemon_dir  # the pid file is removed by the daemon's own user
    address = next_address()
    port = free_port(address)
    pid_file = tmp_path / "d.pid"
    done = subprocess.run(
        [*DAEMON, "--listen", address, "--port", str(port), "--pid-file", str(pid_file),
         "--log-file", str(tmp_path / "d.log")],
        capture_output=True, text=True, timeout=NO_STALL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(pid_file.read_text())
    pids.append(pid)
    assert _listening(address, port)  # at once: it was ready before the command returned
    assert done.stderr == "ccfarmd: warning: no --allow given: every client will be refused\n"
    assert "every client will be refused" in (tmp_path / "d.log").read_text()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_file.exists(), timeout=NO_STALL)


def test_sighup_reopens_the_log_file(daemon_dir: Path) -> None:
    tmp_path = daemon_dir  # the new log is made by the daemon's own user
    address = next_address()
    port = free_port(address)
    log = tmp_path / "d.log"
    with subprocess.Popen(
        [*DAEMON, "--no-detach", "-a", "127.0.0.1", "--listen", address, "--port", str(port),
         "--log-file", str(log)],
        stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            # its log says it listens: it is ready (the port listens a little earlier)
            wait_for(lambda: log.exists() and "listening on" in log.read_text(), timeout=NO_STALL)
            log.rename(tmp_path / "d.log.1")  # as logrotate does
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: log.exists() and "log reopened" in log.read_text(), timeout=NO_STALL)
            assert proc.poll() is None
            assert "listening on" in (tmp_path / "d.log.1").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=NO_STALL)
    assert proc.returncode == 0 and err == ""


@pytest.mark.parametrize("program", ["ccfarmd", "ccfarm-scheduler"])
def test_sd_notify_readiness_and_stopping(daemon_dir: Path, program: str) -> None:
    # (ccfarmd says READY=1 once it gave up root: the socket is open to all, as systemd's)
    tmp_path = daemon_dir
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    notify.bind(path)
    os.chmod(path, 0o777)
    notify.settimeout(NO_STALL)
    address = next_address()
    port = free_port(address)
    cmd = DAEMON + ["--no-detach", "-a", "127.0.0.1"] if program == "ccfarmd" else SCHEDULER
    with (
        notify,
        subprocess.Popen(
            [*cmd, "--listen", address, "--port", str(port), "--log-file", str(tmp_path / "log")],
            env={**os.environ, "NOTIFY_SOCKET": path},
        ) as proc,
    ):
        try:
            ready = notify.recv(4096).decode().split("\n")
            assert ready[:2] == ["READY=1", f"MAINPID={proc.pid}"]
            assert _listening(address, port)
        finally:
            proc.send_signal(signal.SIGTERM)
        assert notify.recv(4096) == b"STOPPING=1"
        assert proc.wait(timeout=NO_STALL) == 0


def test_the_compilers_do_not_inherit_notify_socket(tmp_path: Path) -> None:
    from ccfarm.daemonize import Launch

    env = {"NOTIFY_SOCKET": "@x", "PATH": "/bin"}
    launch = Launch("ccfarmd", env)
    assert launch.notify_socket == "@x" and env == {"PATH": "/bin"}


def test_sigterm_with_hosts_and_clients_connected_logs_no_traceback(
    tmp_path: Path, ccfarmd
) -> None:
    address = next_address()
    port = free_port(address)
    log = tmp_path / "s.log"
    sched = f"{address}:{port}"
    with subprocess.Popen(
        [*SCHEDULER, "--listen", address, "--port", str(port), "--log-file", str(log)],
        stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            wait_for(lambda: _listening(address, port), timeout=NO_STALL)
            daemon = ccfarmd(extra=("--scheduler", sched, "--speed", "1"))
            wait_for(lambda: "joined" in log.read_text(), timeout=NO_STALL)
            idle = socket.create_connection((address, port))  # a client that says nothing
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=NO_STALL)
        idle.close()
    text = log.read_text()
    assert proc.returncode == 0 and err == ""
    assert "Traceback" not in text and "CancelledError" not in text and "ERROR" not in text
    assert f"host {daemon.address}:{daemon.port} joined: 2 slots, speed 1" in text
    assert f"host {daemon.address}:{daemon.port} left: host's connection closed" in text


def test_ctl_without_a_scheduler_and_with_bad_addresses() -> None:
    address = next_address()
    port = free_port(address)
    cases = [
        ([f"{address}:{port}"], 4, f"no scheduler listening on {address}:{port}"),
        (["host:notaport"], 3, "bad address 'host:notaport'"),
        (["host:"], 3, "bad address 'host:'"),
        (["host:99999"], 3, "not '99999'"),
        (["no-such-host.invalid"], 3, "cannot resolve no-such-host.invalid"),
    ]
    for args, status, says in cases:
        done = subprocess.run(
            [*CTL, "--scheduler", *args, "hosts"], capture_output=True, text=True, timeout=NO_STALL
        )
        assert done.returncode == status, (args, done.stderr)
        assert says in _one_line(done.stderr, "ccfarm-ctl")


def test_ctl_under_a_closed_pipe_says_nothing(scheduler, ccfarmd) -> None:
    sched = scheduler()
    ccfarmd(extra=("--scheduler", sched, "--speed", "1"))
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` that has already gone
    try:
        done = subprocess.run(
            [*CTL, "--scheduler", sched, "--json", "hosts"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=NO_STALL,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == ""


def test_ctl_names_hosts_by_prefix_and_refuses_ambiguity(scheduler, ccfarmd) -> None:
    sched = scheduler()
    hosts = [ccfarmd(extra=("--scheduler", sched, "--speed", "1")) for _ in range(2)]
    from tests.conftest import ctl

    wait_for(lambda: len(ctl(sched, "hosts")) == 2, timeout=NO_STALL)
    first = hosts[0]
    assert ctl(sched, "disable", first.address) == {
        "host": f"{first.address}:{first.port}",
        "disabled": True,
    }
    done = subprocess.run(
        [*CTL, "--scheduler", sched, "enable", "127.0.1."], capture_output=True, text=True
    )
    assert done.returncode == 6 and "is ambiguous" in _one_line(done.stderr, "ccfarm-ctl")
    (row,) = [r for r in ctl(sched, "hosts") if r["host"] == f"{first.address}:{first.port}"]
    assert row["state"] == "disabled" and isinstance(row["slots"], int)
    assert isinstance(row["compiler"], list) and row["compiler"][0].startswith("gcc ")


def test_the_stats_page_answers_allowed_clients_only(tmp_path: Path) -> None:
    address = next_address()
    port, stats_port = free_port(address), free_port(address)
    with subprocess.Popen(
        [*DAEMON, "--no-detach", "-a", "127.0.0.1/32", "-j", "3", "--listen", address,
         "--port", str(port), "--stats", "--stats-port", str(stats_port),
         "--log-file", str(tmp_path / "d.log")],
    ) as proc:  # fmt: skip
        try:
            wait_for(lambda: _listening(address, stats_port), timeout=NO_STALL)
            page = _get(address, stats_port, source="127.0.0.1")
            assert page.startswith(b"HTTP/1.0 200 OK\r\n") and b"\ndcc_max_kids 3\n" in page
            assert page.endswith(b"</distccstats>\n")
            assert _get(address, stats_port, source=next_address()) == b""  # not allowed
            assert "stats request from" in (tmp_path / "d.log").read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=NO_STALL) == 0


def _get(address: str, port: int, source: str) -> bytes:
    with socket.socket() as sock:
        sock.settimeout(NO_STALL)
        sock.bind((source, 0))
        sock.connect((address, port))
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)
