"""Read one control message from a blocking socket (wrapper, gethost, ctl)."""

from __future__ import annotations

import _socket

from ccfarm.control.codec import Message, MessageParser
from ccfarm.errors import RemoteProtocolError


def read_message(sock: _socket.socket) -> Message:
    """The next whole message; RemoteProtocolError if the peer closes first."""
    parser = MessageParser(expect_hello=False)
    while (message := parser.next_message()) is None:
        data = sock.recv(65536)
        if data:
            parser.receive_data(data)
            continue
        parser.receive_eof()
        message = parser.next_message()
        if message is None:
            raise RemoteProtocolError("the scheduler closed the connection")
        return message
    return message
