"""What the per-job `ccfarm` process and the fork server say to each other.

A compile job's own process only forwards it: its argv, working directory,
umask and environment go to the user's fork server over a Unix socket, with
its stdin, stdout and stderr passed along (SCM_RIGHTS); the fork server runs the
job in a forked child that already has every module imported, and answers
with how it ended. Encoding here (bytes in, bytes out), and the one send
that passes descriptors; imported on the wrapper's start-up path, so it
uses only built-in modules.

Request: ``CCFH0001`` + 8 hex digits (payload length) + payload, the payload
being NUL-terminated fields: argc, the argv items, cwd, umask (octal), then
the environment's ``NAME=value`` items up to the end.

Reply: ``X`` + 8 hex digits (exit code), ``S`` + 8 hex digits (killed by
that signal), or ``F``: "not by me, run the job yourself" (the fork server's code
changed on disk, or it is shutting down).

The socket is in Linux's abstract namespace (no file to go stale, no path
length limit), named by user and by everything that must match for a
forked child to behave like a fresh wrapper: the state directory, the Python
executable, where ccfarm is installed and the caller's cgroups. Anyone can
connect to an abstract socket, so both ends check the other's uid
(SO_PEERCRED) before trusting it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

MYPY = False
if MYPY:
    import _socket

MAGIC = b"CCFH0001"
HEADER_SIZE = len(MAGIC) + 8
MAX_PAYLOAD = 8 << 20  # argv + environment; Linux's own limit is lower
REPLY_SIZE = 9
FALLBACK = b"F"

#: (argv, cwd, umask, environment items) of a decoded request
Request = tuple[list[bytes], bytes, int, list[bytes]]


class WireError(ValueError):
    """A malformed request or reply."""


def encode_request(argv: list[bytes], cwd: bytes, umask: int, env: list[bytes]) -> bytes:
    fields = [b"%d" % len(argv), *argv, cwd, b"%o" % umask, *env]
    for field in fields:
        if b"\0" in field:
            raise WireError("NUL inside a field")
    payload = b"\0".join(fields) + b"\0"
    if len(payload) > MAX_PAYLOAD:
        raise WireError("request too large")
    return MAGIC + b"%08x" % len(payload) + payload


def payload_length(header: bytes) -> int:
    """Length of the payload that follows a request header."""
    if len(header) != HEADER_SIZE or not header.startswith(MAGIC):
        raise WireError("not a ccfarm fork server request")
    length = _hex(header[len(MAGIC) :])
    if length is None or length > MAX_PAYLOAD:
        raise WireError("bad length")
    return length


def decode_payload(payload: bytes) -> Request:
    """(argv, cwd, umask, environment items) of a request payload."""
    if not payload.endswith(b"\0"):
        raise WireError("payload not terminated")
    fields = payload[:-1].split(b"\0")
    try:
        argc = int(fields[0])
        umask = int(fields[argc + 2], 8)
    except (ValueError, IndexError):
        raise WireError("bad counts") from None
    if argc < 1 or not fields[0].isdigit() or not 0 <= umask <= 0o777:
        raise WireError("bad counts")
    argv = fields[1 : argc + 1]
    cwd = fields[argc + 1]
    env = fields[argc + 3 :]
    if not cwd.startswith(b"/") or any(b"=" not in item for item in env):
        raise WireError("bad cwd or environment")
    return argv, cwd, umask, env


def encode_reply(wait_status: int) -> bytes:
    """The reply for a child that ended with `wait_status` (as from waitpid)."""
    if os.WIFSIGNALED(wait_status):
        return b"S%08x" % os.WTERMSIG(wait_status)
    return b"X%08x" % (os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else 1)


def decode_reply(reply: bytes) -> tuple[str, int]:
    """("exit", code), ("signal", number) or ("fallback", 0)."""
    if reply == FALLBACK:
        return "fallback", 0
    if len(reply) == REPLY_SIZE and reply[:1] in (b"X", b"S"):
        value = _hex(reply[1:])
        if value is not None and value <= 255:
            return ("exit" if reply[:1] == b"X" else "signal"), value
    raise WireError("bad reply")


def send_with_fds(sock: _socket.socket, data: bytes, fds: Sequence[int]) -> None:
    """Send `data` with the descriptors `fds` passed along (SCM_RIGHTS, with its first part)."""
    import _socket

    rights = b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds)
    sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
    if sent < len(data):
        sock.sendall(data[sent:])


def socket_name(uid: int, key: bytes) -> bytes:
    """The abstract socket name (leading NUL) for this user and `key`."""
    return b"\0ccfarm-forkserver/%d/%016x" % (uid, _fnv1a(key))


def package_dir() -> str:
    """Where ccfarm's modules are: part of `server_key` (the native launcher
    has it built in), and the tree whose changes retire a fork server."""
    here = os.path.abspath(__file__)  # ccfarm/client/forkserver/wire.py
    return os.path.dirname(os.path.dirname(os.path.dirname(here)))


def server_key(state_dir: str, executable: str, package_dir: str, cgroups: bytes) -> bytes:
    """What must be equal for one fork server to serve a job."""
    return b"\0".join(
        [os.fsencode(state_dir), os.fsencode(executable), os.fsencode(package_dir), cgroups]
    )


def _hex(digits: bytes) -> int | None:
    """Exactly 8 lower-case hex digits, or None."""
    if len(digits) != 8 or digits.strip(b"0123456789abcdef"):
        return None
    return int(digits, 16)


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h
