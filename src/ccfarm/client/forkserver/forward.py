"""The per-job side of the fork server: forward the job, or start a fork server.

Runs in every `ccfarm` process before anything heavy is imported, so it
uses only built-in modules (`_socket`, `_signal`) and `wire`.
"""

from __future__ import annotations

import os
import sys

from ccfarm.client.forkserver import wire
from ccfarm.client.hosts.statedir import state_dir

_CONNECT_TIMEOUT = 2.0
#: `forward_job`'s answer when no fork server serves this name (start one)
ABSENT = -1


def enabled(env: os._Environ[bytes]) -> bool:
    return env.get(b"CCFARM_HELPER", b"1") != b"0" and not env.get(b"CCFARM_SAFEGUARD")


def socket_name(environ: os._Environ[str]) -> bytes:
    """The fork server socket that serves this process's jobs."""
    try:
        with open("/proc/self/cgroup", "rb") as f:
            cgroups = f.read()
    except OSError:
        cgroups = b""
    key = wire.server_key(
        os.path.abspath(state_dir(environ)), sys.executable, wire.package_dir(), cgroups
    )
    return wire.socket_name(os.getuid(), key)


def forward_job(argv: list[str], name: bytes) -> int | None:
    """Have the fork server at `name` run the job; its exit status, or None.

    None means "run it yourself": the socket is not ours, or the fork server
    vanished before answering (then nothing of the job is trusted and it
    runs again here; the output is rewritten whole). ABSENT means the same,
    and that no fork server serves this name (none listens, or it is retiring).
    Killed by a signal there, this process kills itself with the same one.
    """
    import _signal
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(_CONNECT_TIMEOUT)
        try:
            sock.connect(name)
        except (ConnectionRefusedError, FileNotFoundError):
            return ABSENT
        creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        if int.from_bytes(creds[4:8], sys.byteorder) != os.getuid():
            return None  # someone else's socket: send it nothing
        umask = os.umask(0)
        os.umask(umask)
        environb = os.environb
        request = wire.encode_request(
            [os.fsencode(a) for a in argv],
            os.getcwdb(),
            umask,
            [k + b"=" + v for k, v in environb.items()],
        )
        wire.send_with_fds(sock, request, (0, 1, 2))
        # From here the job is running there: an interrupt ends this process
        # quietly, and the fork server stops the job when the socket closes.
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        sock.settimeout(None)
        reply = b""
        while len(reply) < wire.REPLY_SIZE:
            chunk = sock.recv(wire.REPLY_SIZE - len(reply))
            if not chunk:
                break
            reply += chunk
        kind, value = wire.decode_reply(reply)
    except (OSError, wire.WireError):
        return None
    finally:
        sock.close()
    if kind == "fallback":
        return ABSENT
    if kind == "exit":
        return value
    if kind == "signal":
        sys.stdout.flush()
        sys.stderr.flush()
        _signal.signal(value, _signal.SIG_DFL)
        os.kill(os.getpid(), value)
        return 128 + value
    return None  # not reached


def start_server(name: bytes) -> None:
    """Start a fork server for later jobs (detached; it exits when idle).

    Several jobs may start one at once: only the first binds the name, the
    others exit at once.
    """
    null = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
    ]
    argv = [sys.executable, "-m", "ccfarm.client.forkserver.server", name[1:].decode()]
    env = dict(os.environ)
    env.pop("CCFARM_SAFEGUARD", None)
    import contextlib

    with contextlib.suppress(OSError):  # this job runs in-process anyway
        os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)
