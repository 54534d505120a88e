"""The wrapper <-> fork server messages (pure encoding)."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccfarm.client.forkserver import wire

_field = st.binary(max_size=40).filter(lambda b: b"\0" not in b)
_env_item = st.tuples(_field.filter(lambda b: b"=" not in b), _field).map(
    lambda kv: kv[0] + b"=" + kv[1]
)


@given(
    argv=st.lists(_field, min_size=1, max_size=8),
    cwd=_field.map(lambda b: b"/" + b),
    umask=st.integers(0, 0o777),
    env=st.lists(_env_item, max_size=8),
)
def test_request_round_trip(argv: list[bytes], cwd: bytes, umask: int, env: list[bytes]) -> None:
    data = wire.encode_request(argv, cwd, umask, env)
    length = wire.payload_length(data[: wire.HEADER_SIZE])
    assert len(data) == wire.HEADER_SIZE + length
    assert wire.decode_payload(data[wire.HEADER_SIZE :]) == (argv, cwd, umask, env)


def test_request_layout() -> None:
    data = wire.encode_request([b"ccfarm", b"-c", b"x.c"], b"/src", 0o22, [b"A=1"])
    assert data == b"CCFH0001" + b"0000001c" + b"3\0ccfarm\0-c\0x.c\0/src\x0022\0A=1\0"


def test_nul_inside_a_field_is_refused() -> None:
    with pytest.raises(wire.WireError):
        wire.encode_request([b"a\0b"], b"/", 0, [])


@pytest.mark.parametrize(
    "header",
    [
        b"CCFH0002" + b"00000010",  # other version
        b"CCFH0001" + b"0000001G",  # not hex
        b"CCFH0001" + b"0x000010",  # not exactly digits
        b"CCFH0001" + b"0000010",  # short
        b"CCFH0001" + b"7fffffff",  # absurd length
    ],
)
def test_bad_headers(header: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.payload_length(header)


@pytest.mark.parametrize(
    "payload",
    [
        b"1\0cc\0/src\x0022\0A=1",  # not terminated
        b"x\0cc\0/src\x0022\0",  # argc not a number
        b"0\0/src\x0022\0",  # no argv
        b"5\0cc\0/src\x0022\0",  # argc past the end
        b"1\0cc\0relative\x0022\0",  # cwd not absolute
        b"1\0cc\0/src\x00999\0",  # umask not octal
        b"1\0cc\0/src\x0022\0NOEQUALS\0",  # environment item without '='
    ],
)
def test_bad_payloads(payload: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_payload(payload)


def test_replies() -> None:
    assert wire.decode_reply(wire.encode_reply(0)) == ("exit", 0)
    assert wire.decode_reply(wire.encode_reply(3 << 8)) == ("exit", 3)
    assert wire.decode_reply(wire.encode_reply(int(signal.SIGSEGV))) == (
        "signal",
        int(signal.SIGSEGV),
    )
    assert wire.decode_reply(wire.FALLBACK) == ("fallback", 0)
    # real wait statuses, as waitpid gives them
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    assert wire.decode_reply(wire.encode_reply(status)) == ("exit", 7)


@pytest.mark.parametrize("reply", [b"", b"X", b"X0000000", b"Y00000000", b"X00000100", b"FF"])
def test_bad_replies(reply: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode_reply(reply)


def test_socket_names_separate_what_must_not_share_a_forkserver() -> None:
    base = wire.server_key("/home/u/.distcc", "/usr/bin/python3", "/opt/ccfarm", b"0::/user.slice")
    others = [
        wire.server_key("/home/u/other", "/usr/bin/python3", "/opt/ccfarm", b"0::/user.slice"),
        wire.server_key("/home/u/.distcc", "/venv/bin/python3", "/opt/ccfarm", b"0::/user.slice"),
        wire.server_key("/home/u/.distcc", "/usr/bin/python3", "/src/ccfarm", b"0::/user.slice"),
        wire.server_key("/home/u/.distcc", "/usr/bin/python3", "/opt/ccfarm", b"0::/bench-c1"),
    ]
    name = wire.socket_name(1000, base)
    assert name.startswith(b"\0ccfarm-forkserver/1000/")
    assert len(name) < 108  # sockaddr_un's limit
    assert wire.socket_name(1000, base) == name  # stable across processes (no hash())
    assert wire.socket_name(1001, base) != name
    assert len({wire.socket_name(1000, k) for k in others} | {name}) == 5


@pytest.mark.parametrize(
    ("env", "wants"),
    [
        ([], False),
        ([b"CCFARM_TLS_CA=/etc/ccfarm/ca.pem"], True),
        ([b"PATH=/usr/bin", b"CCFARM_TLS_CA=ca.pem"], True),
        ([b"CCFARM_TLS_CA="], False),  # set but empty: no TLS
        ([b"CCFARM_TLS_CERT=c.pem", b"CCFARM_TLS_KEY=k.pem"], False),  # no CA: no TLS
        ([b"X_CCFARM_TLS_CA=ca.pem"], False),
    ],
)
def test_the_fork_server_warms_ssl_only_for_jobs_that_use_tls(
    env: list[bytes], wants: bool
) -> None:
    from ccfarm.client.forkserver.server import _wants_tls

    assert _wants_tls(([b"ccfarm", b"gcc"], b"/", 0o22, env)) is wants


def test_send_with_fds_passes_the_data_whole_and_the_descriptors() -> None:
    """More data than the socket's buffer holds (the rest goes after the
    first part), and descriptors that lead to the same pipe at the far end."""
    import socket
    import threading

    near, far = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    read_end, write_end = os.pipe()
    data = os.urandom(1 << 20)
    got: list[bytes] = []
    passed: list[int] = []

    def receive() -> None:
        while sum(map(len, got)) < len(data):
            chunk, ancdata, _, _ = far.recvmsg(1 << 16, socket.CMSG_SPACE(8))
            if not chunk:
                break
            got.append(chunk)
            for level, kind, rights in ancdata:
                assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
                for i in range(0, len(rights), 4):
                    passed.append(int.from_bytes(rights[i : i + 4], sys.byteorder))

    reader = threading.Thread(target=receive)
    reader.start()
    try:
        wire.send_with_fds(near, data, [write_end, write_end])
        reader.join(10)
        assert b"".join(got) == data
        assert len(passed) == 2 and write_end not in passed
        os.write(passed[0], b"via the passed descriptor")
        assert os.read(read_end, 100) == b"via the passed descriptor"
    finally:
        for fd in (read_end, write_end, *passed):
            os.close(fd)
        near.close()
        far.close()
