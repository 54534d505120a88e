"""Who may run a job on this daemon, beyond `--allow`: the farm secret.

Without a secret nothing changes: every connection from an `--allow`
network is a distcc request. With one (`--secret-file`), a connection
whose first token is `AUTH` runs the handshake of `protocol.auth` (the
daemon proves itself, then the client), and the distcc request follows; a
connection that starts with anything else is unauthenticated, and may only
be a plain distcc request (protocols 1, 2 and 3: a real `distcc` client,
which cannot authenticate), unless `--no-distcc-clients` refuses those too.
ccfarm's own protocols, and with them express jobs, need the handshake.

With `--tls-require`, a connection that did not come in over TLS may only
be a plain distcc request (and not with `--no-distcc-clients`); the
secret's handshake is not run on it. Over TLS, the secret's rules hold as
above, inside it.
"""

from __future__ import annotations

import asyncio
import os

from ccfarm._record import record
from ccfarm.protocol import LZO, PLAIN, PUMP, auth


@record
class Admitted:
    """A connection let in: the bytes already read of its request, and
    whether it proved the farm secret."""

    prefix: bytes
    authenticated: bool
    #: the connection came in over TLS
    tls: bool = False


def refusal(
    version: int,
    *,
    secret: bool,
    authenticated: bool,
    distcc_clients: bool,
    tls_required: bool = False,
    tls: bool = False,
) -> str | None:
    """Why a request of protocol `version` is refused (None: it may run)."""
    if tls_required and not tls:
        if version not in (PLAIN, LZO, PUMP):
            return f"protocol {version:#x} without TLS, and --tls-require is set"
        if not distcc_clients:
            return "a plain distcc request without TLS, and --no-distcc-clients is set"
        return None
    if not secret or authenticated:
        return None
    if version not in (PLAIN, LZO, PUMP):
        return f"protocol {version:#x} without the farm secret's handshake"
    if not distcc_clients:
        return "a plain distcc request, and --no-distcc-clients is set"
    return None


async def admit(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    secret: bytes | None,
    timeout: float,
) -> Admitted:
    """Sniff the first token and run the handshake if it is one (within
    `timeout` in all); RemoteProtocolError when the client fails it."""
    if secret is None:
        return Admitted(b"", False)
    try:
        async with asyncio.timeout(timeout):
            first = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        return Admitted(exc.partial, False)  # the request's parser says what is wrong
    if not auth.starts_handshake(first):
        return Admitted(first, False)
    handshake = auth.Handshake(auth.SERVER, secret, os.urandom(auth.NONCE_SIZE), auth.COMPILE)
    async with asyncio.timeout(timeout):
        data = first
        while not handshake.done:
            writer.write(handshake.receive_data(data))
            if handshake.done:
                break
            data = await reader.read(4096)
            if not data:
                handshake.receive_eof()
    return Admitted(handshake.rest, True)


__all__ = ["Admitted", "admit", "refusal"]
