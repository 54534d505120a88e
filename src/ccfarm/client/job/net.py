"""Blocking sockets for the wrapper: TCP connect, TLS, the farm secret's
handshake, and reading one control message (lease client, gethost, ctl),
on the C `_socket` module.

`import socket` costs the wrapper about 4 ms per job (it builds enums of
every constant); the few calls a job needs exist on `_socket` directly.
"""

from __future__ import annotations

import _socket

MYPY = False
if MYPY:
    import ssl

    from ccfarm.control.codec import Message, MessageParser


def connect(host: str, port: int, timeout: float) -> _socket.socket:
    """A connected TCP socket (TCP_NODELAY, `timeout` on every operation)."""
    error: OSError = OSError(f"no address for {host}")
    # Hosts go to the C functions as bytes: a str would be IDNA-encoded, and
    # the idna codec imports `re` (milliseconds per job).
    name: str | bytes = host.encode() if host.isascii() else host
    found = _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)
    for family, kind, proto, _, address in found:
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect((str(address[0]).encode(), *address[1:]))
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def secure(sock: _socket.socket, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    """TLS over the connected `sock` (its timeout bounds the handshake): the
    server's certificate must be signed by the context's CA and name `host`,
    the name or address dialled. `sock` is the returned socket's now.
    OSError (ssl.SSLError) when the handshake fails."""
    return context.wrap_socket(sock, server_hostname=host)  # type: ignore[arg-type]


def authenticate(
    sock: _socket.socket, secret: bytes, context: bytes, first: bytes = b""
) -> tuple[bytes, bytes]:
    """The client's side of the farm secret's handshake on `sock` (its
    timeout bounds each read), after sending `first` (a control hello).

    Returns (the proof to send, ahead of the connection's first message:
    one packet; any bytes that came after the server's challenge).
    RemoteProtocolError if the server is not proven (wrong secret, none,
    garbage, closed).
    """
    import os

    from ccfarm.protocol.auth import CLIENT, NONCE_SIZE, Handshake

    handshake = Handshake(CLIENT, secret, os.urandom(NONCE_SIZE), context)
    sock.sendall(first + handshake.start())
    answer = b""
    while not handshake.done:
        data = sock.recv(4096)
        if not data:
            handshake.receive_eof()
        answer += handshake.receive_data(data)
    return answer, handshake.rest


def read_message(sock: _socket.socket, parser: MessageParser | None = None) -> Message:
    """The next whole control message; RemoteProtocolError if the peer closes first.

    Pass the connection's own `parser` to read several messages: bytes of the
    next one that came with this one stay in it.
    """
    from ccfarm.errors import RemoteProtocolError

    if parser is None:
        from ccfarm.control.codec import MessageParser

        parser = MessageParser(expect_hello=False)
    while (message := parser.next_message()) is None:
        data = sock.recv(65536)
        if not data:
            parser.receive_eof()
            message = parser.next_message()
            if message is None:
                raise RemoteProtocolError("the scheduler closed the connection")
            return message
        parser.receive_data(data)
    return message
