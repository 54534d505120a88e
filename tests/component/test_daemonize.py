"""The service pieces in-process: the log's destinations, sd_notify's datagram."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.daemonize import Launch, StartupError, listening_socket, reopen_logs, setup_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def _datagram_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    return sock


def test_detached_without_a_log_file_it_logs_to_syslog(tmp_path: Path) -> None:
    with _datagram_socket(tmp_path / "log") as syslog:
        setup_logging("ccfarmd", "INFO", detached=True, syslog_address=str(tmp_path / "log"))
        logging.getLogger("ccfarmd").warning("no --allow given")
        message = syslog.recv(4096)
    # <facility daemon (3) * 8 + warning (4)>, the program and its pid, the text
    assert message.startswith(b"<28>ccfarmd[") and message.endswith(b"]: no --allow given\x00")


def test_without_syslog_it_falls_back_to_stderr(tmp_path: Path) -> None:
    setup_logging("ccfarmd", "INFO", detached=True, syslog_address=str(tmp_path / "none"))
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler) and not isinstance(
        handler, logging.FileHandler
    )


def test_a_log_file_is_reopened_under_its_name(tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    setup_logging("ccfarm-scheduler", "INFO", log_file=str(log))
    logging.getLogger("x").info("before")
    log.rename(tmp_path / "d.log.1")
    reopen_logs()
    logging.getLogger("x").info("after")
    assert "before" in (tmp_path / "d.log.1").read_text()
    text = log.read_text()
    assert "log reopened" in text and "after" in text and "before" not in text


def test_a_log_file_that_cannot_be_opened_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="cannot open log file .*: No such file"):
        setup_logging("ccfarmd", "INFO", log_file=str(tmp_path / "no" / "d.log"))


def test_sd_notify_over_a_path_and_the_abstract_namespace(tmp_path: Path) -> None:
    with _datagram_socket(tmp_path / "n") as notify:
        launch = Launch("ccfarmd", {"NOTIFY_SOCKET": str(tmp_path / "n")})
        launch.ready("4 job slots")
        said = notify.recv(4096).decode().split("\n")
        assert said[0] == "READY=1" and said[1].startswith("MAINPID=")
        assert said[2] == "STATUS=4 job slots"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with abstract:
        abstract.bind(f"\0ccfarm-test-{id(abstract)}")
        abstract.settimeout(5)
        launch = Launch("ccfarmd", {"NOTIFY_SOCKET": f"@ccfarm-test-{id(abstract)}"})
        launch.stopping()
        assert abstract.recv(4096) == b"STOPPING=1"


def test_no_or_a_strange_notify_socket_sends_nothing(tmp_path: Path) -> None:
    assert not Launch("ccfarmd", {}).notify("READY=1")
    assert not Launch("ccfarmd", {"NOTIFY_SOCKET": "vsock:2:3"}).notify("READY=1")
    assert not Launch("ccfarmd", {"NOTIFY_SOCKET": str(tmp_path / "gone")}).notify("READY=1")


def test_a_taken_port_and_a_bad_address() -> None:
    with listening_socket("127.0.0.1", 0, 8) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"127.0.0.1:{port}: Address already in use"):
            listening_socket("127.0.0.1", port, 8)
    with pytest.raises(StartupError, match=r"\[::1\]:70000: no such port"):
        listening_socket("::1", 70000, 8)
    with pytest.raises(StartupError) as caught:
        listening_socket("no-such-host.invalid", 1, 8)
    assert caught.value.status == 102
