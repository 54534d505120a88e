"""The farm secret's handshake: mutual challenge-response, sans-IO.

Both ends know the farm secret; neither sends it. Three tokens in distcc's
framing (a four-letter name, the payload length in 8 hex digits, the
payload), the client first:

    client -> server   AUTH  nonce_c (32 random bytes)
    server -> client   ACHL  nonce_s (32 random bytes) + proof_s (32 bytes)
    client -> server   APRF  proof_c (32 bytes)

    proof_s = HMAC-SHA256(secret, "ccfarm-auth-1" 0 "server" 0 context 0 nonce_c nonce_s)
    proof_c = HMAC-SHA256(secret, "ccfarm-auth-1" 0 "client" 0 context 0 nonce_c nonce_s)

The server proves itself first and the client sends nothing else before it
has checked that proof: a peer without the secret never gets a job, a host
report or a lease request. Each side's proof covers the other side's fresh
nonce, so a recorded exchange is worthless on another connection; the two
proofs differ by role, so neither can be reflected back as the other;
`context` (`control` or `compile`) keeps a proof for one kind of connection
from opening the other. Proofs are compared with `hmac.compare_digest`.

The server may answer `FAIL` (a control message: `reason=...`) instead of
`ACHL`: the client then fails with that reason. Each token's length is
checked on its 12 bytes, before any payload is buffered.

`Handshake` is one end. `start()` gives the bytes to send first (the
client's `AUTH`); `receive_data(data)` gives the bytes to send in answer
(possibly none), and raises `RemoteProtocolError` when the peer fails;
`done` is set once the peer is proven, and `rest` holds the bytes that
came after the handshake (the connection's own protocol).
"""

from __future__ import annotations

import hashlib
import hmac

from ccfarm.errors import LocalProtocolError, RemoteProtocolError
from ccfarm.protocol.tokens import TOKEN_SIZE, encode_blob, parse_token

NONCE_SIZE = 32
PROOF_SIZE = 32
#: a secret shorter than this is refused (a guessable one is no secret)
MIN_SECRET = 16
HELLO = b"AUTH"
CHALLENGE = b"ACHL"
PROOF = b"APRF"
REFUSAL = b"FAIL"
MAX_REFUSAL = 1024
#: what each kind of connection proves (a proof for one does not open the other)
CONTROL = b"control"
COMPILE = b"compile"
_LABEL = b"ccfarm-auth-1\0"

CLIENT = "client"
SERVER = "server"


class _State:
    """Where a handshake is (plain strings: `enum` is slow to import for the wrapper)."""

    START = "start"  # client: start() not called yet
    HELLO = "expect AUTH"  # server
    CHALLENGE = "expect ACHL"  # client
    PROOF = "expect APRF"  # server
    DONE = "done"
    FAILED = "failed"


#: state -> (the token expected, its exact payload size)
_EXPECTED: dict[str, tuple[bytes, int]] = {
    _State.HELLO: (HELLO, NONCE_SIZE),
    _State.CHALLENGE: (CHALLENGE, NONCE_SIZE + PROOF_SIZE),
    _State.PROOF: (PROOF, PROOF_SIZE),
}


def proof(secret: bytes, role: str, context: bytes, nonce_c: bytes, nonce_s: bytes) -> bytes:
    """The proof `role` (client or server) gives on a connection of `context`."""
    message = b"".join((_LABEL, role.encode(), b"\0", context, b"\0", nonce_c, nonce_s))
    return hmac.new(secret, message, hashlib.sha256).digest()


class Handshake:
    """One end of the handshake; `nonce` must be fresh (`os.urandom(NONCE_SIZE)`)."""

    def __init__(self, role: str, secret: bytes, nonce: bytes, context: bytes) -> None:
        if role not in (CLIENT, SERVER):
            raise LocalProtocolError(f"no handshake role {role!r}")
        if len(secret) < MIN_SECRET:
            raise LocalProtocolError("the farm secret is too short")
        if len(nonce) != NONCE_SIZE:
            raise LocalProtocolError(f"a nonce is {NONCE_SIZE} bytes")
        self.role = role
        self._secret = secret
        self._nonce = nonce
        self._context = context
        self._peer_nonce = b""
        self._buf = bytearray()
        self._state = _State.START if role == CLIENT else _State.HELLO
        self.rest = b""

    @property
    def done(self) -> bool:
        return self._state == _State.DONE

    @property
    def state(self) -> str:
        return self._state

    def start(self) -> bytes:
        """The client's first bytes (`AUTH` and its nonce)."""
        if self._state != _State.START:
            raise LocalProtocolError("start() is the client's first step")
        self._state = _State.CHALLENGE
        return encode_blob(HELLO, self._nonce)

    def receive_data(self, data: bytes) -> bytes:
        """Bytes from the peer in; the bytes to send back out."""
        if self._state in (_State.START, _State.DONE, _State.FAILED):
            raise LocalProtocolError(f"handshake is {self._state}: no data expected")
        self._buf += data
        out = b""
        try:
            while self._state != _State.DONE and len(self._buf) >= TOKEN_SIZE:
                taken = self._step()
                if taken is None:
                    break
                out += taken
        except RemoteProtocolError:
            self._state = _State.FAILED
            self._buf.clear()
            raise
        if self._state == _State.DONE:
            self.rest = bytes(self._buf)
            self._buf.clear()
        return out

    def receive_eof(self) -> None:
        """The peer closed: a failure unless the handshake was over."""
        if self._state not in (_State.DONE, _State.FAILED):
            waiting, self._state = self._state, _State.FAILED
            raise RemoteProtocolError(f"connection closed during authentication ({waiting})")

    def _step(self) -> bytes | None:
        """One token off the buffer, if whole; what to send for it."""
        name, size = parse_token(self._buf[:TOKEN_SIZE])
        expected, want = _EXPECTED[self._state]
        if name == REFUSAL and self.role == CLIENT:
            if size > MAX_REFUSAL:
                raise RemoteProtocolError("authentication refused (reason too long)")
            if len(self._buf) < TOKEN_SIZE + size:
                return None
            text = bytes(self._buf[TOKEN_SIZE : TOKEN_SIZE + size]).decode(errors="replace")
            reason = text.partition("reason=")[2] or text or "no reason given"
            raise RemoteProtocolError(f"authentication refused: {_printable(reason)}")
        if name != expected:
            raise RemoteProtocolError(
                f"authentication required: expected {expected.decode()}, got {_printable(name)}"
            )
        if size != want:
            raise RemoteProtocolError(f"bad {expected.decode()} token: {size} bytes, not {want}")
        end = TOKEN_SIZE + size
        if len(self._buf) < end:
            return None
        payload = bytes(self._buf[TOKEN_SIZE:end])
        del self._buf[:end]
        return self._on(payload)

    def _on(self, payload: bytes) -> bytes:
        if self._state == _State.HELLO:  # server: the client's nonce; prove ourselves
            self._peer_nonce = payload
            mine = proof(self._secret, SERVER, self._context, payload, self._nonce)
            self._state = _State.PROOF
            return encode_blob(CHALLENGE, self._nonce + mine)
        if self._state == _State.CHALLENGE:  # client: check the server, then prove
            nonce_s, theirs = payload[:NONCE_SIZE], payload[NONCE_SIZE:]
            if hmac.compare_digest(nonce_s, self._nonce):
                raise RemoteProtocolError("authentication failed: the server echoed our nonce")
            expected = proof(self._secret, SERVER, self._context, self._nonce, nonce_s)
            if not hmac.compare_digest(theirs, expected):
                raise RemoteProtocolError(
                    "authentication failed: the server does not know the farm secret"
                )
            self._state = _State.DONE
            mine = proof(self._secret, CLIENT, self._context, self._nonce, nonce_s)
            return encode_blob(PROOF, mine)
        # server: the client's proof over both nonces
        expected = proof(self._secret, CLIENT, self._context, self._peer_nonce, self._nonce)
        if not hmac.compare_digest(payload, expected):
            raise RemoteProtocolError(
                "authentication failed: the client does not know the farm secret"
            )
        self._state = _State.DONE
        return b""


def starts_handshake(first: bytes) -> bool:
    """Whether a connection's first 4 bytes begin the handshake (`AUTH`),
    not a distcc request (`DIST`) or a control message."""
    return first[:4] == HELLO


def _printable(data: bytes | str) -> str:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return repr("".join(c if " " <= c < "\x7f" else "." for c in text[:80]))


__all__ = [
    "CLIENT",
    "COMPILE",
    "CONTROL",
    "MIN_SECRET",
    "NONCE_SIZE",
    "SERVER",
    "Handshake",
    "proof",
    "starts_handshake",
]
