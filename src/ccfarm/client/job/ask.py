"""One question to a scheduler's control port, one answer: `ccfarm-ctl`'s
and `ccfarm -j`'s (blocking sockets; the farm secret and TLS as configured).

A question that gets no answer raises `Unanswered`, whose `kind` says why
(the address, nobody there, a refusal, a bad answer) and whose text says it
for people.
"""

from __future__ import annotations

import socket

from ccfarm.client.job.net import read_message
from ccfarm.control.codec import Message, encode, hello
from ccfarm.errors import RemoteProtocolError

MYPY = False
if MYPY:
    import ssl

#: the farm secret and the TLS context to reach the scheduler with (None: none)
Auth = tuple[bytes | None, "ssl.SSLContext | None"]

BAD_ADDRESS = "bad address"  # cannot be resolved
NO_SCHEDULER = "no scheduler"  # nothing listening, unreachable, or no answer in time
REFUSED = "refused"  # the scheduler answered FAIL, or TLS or the secret failed
BAD_ANSWER = "bad answer"  # the answer was not a control message


class Unanswered(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def ask(address: tuple[str, int], request: bytes, auth: Auth, timeout: float) -> Message:
    """Send `request` (encoded messages) and read the one answer."""
    where = f"{address[0]}:{address[1]}"
    secret, context = auth
    try:
        with socket.create_connection(address, timeout=timeout) as plain:
            secure = plain if context is None else _secure(plain, context, address[0], where)
            with secure as sock:
                if secret is None:
                    sock.sendall(hello() + request)
                    return read_message(sock)
                return _ask_proven(sock, request, secret, where)
    except socket.gaierror as exc:
        raise Unanswered(f"cannot resolve {address[0]}: {exc.strerror}", BAD_ADDRESS) from None
    except ConnectionRefusedError:
        raise Unanswered(f"no scheduler listening on {where}", NO_SCHEDULER) from None
    except TimeoutError:
        raise Unanswered(
            f"scheduler {where} did not answer in {timeout:g} s", NO_SCHEDULER
        ) from None
    except RemoteProtocolError as exc:
        raise Unanswered(f"scheduler {where}: bad answer: {exc}", BAD_ANSWER) from None
    except OSError as exc:
        raise Unanswered(f"cannot reach {where}: {exc.strerror or exc}", NO_SCHEDULER) from None


def records(
    address: tuple[str, int], query: str, auth: Auth, timeout: float
) -> tuple[tuple[tuple[str, str], ...], ...]:
    """The records of the answer to `query` (a kind with no fields: QHST, QJOB)."""
    from ccfarm.control import messages as m

    reply = ask(address, encode(query), auth, timeout)
    if reply.kind == m.FAILED:
        raise Unanswered(reply.first().get("reason", "failed"), REFUSED)
    return reply.records


def _secure(sock: socket.socket, context: ssl.SSLContext, host: str, where: str) -> socket.socket:
    """TLS on `sock`; the scheduler's certificate must name `host`."""
    import ssl

    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLError as exc:
        raise Unanswered(f"scheduler {where}: TLS failed: {exc.reason or exc}", REFUSED) from None


def _ask_proven(sock: socket.socket, request: bytes, secret: bytes, where: str) -> Message:
    """The farm secret's handshake first (the scheduler proves it too), then the request."""
    from ccfarm.client.job.net import authenticate
    from ccfarm.control.codec import MessageParser
    from ccfarm.protocol.auth import CONTROL

    try:
        proof, rest = authenticate(sock, secret, CONTROL, hello())
    except RemoteProtocolError as exc:
        raise Unanswered(f"scheduler {where}: {exc}", REFUSED) from None
    sock.sendall(proof + request)
    parser = MessageParser(expect_hello=False)
    parser.receive_data(rest)
    return read_message(sock, parser)


__all__ = ["Auth", "Unanswered", "ask", "records"]
