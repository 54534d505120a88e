"""The farm secret's handshake (`protocol.auth`) and its file (`secretfile`).

Both ends are driven by hand, byte for byte: the good exchange, a wrong
secret on either side, a replayed proof, the other context, truncated,
oversized and garbage tokens; hypothesis feeds the server arbitrary bytes
in arbitrary pieces (a proof or an error, nothing else, and never done
without the secret).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from ccfarm.protocol import auth
from ccfarm.protocol.auth import CLIENT, COMPILE, CONTROL, SERVER, Handshake
from ccfarm.protocol.tokens import encode_blob, encode_token
from ccfarm.secretfile import read_secret, secret_from

SECRET = b"correct horse battery staple"
OTHER = b"incorrect donkey battery staple"
NONCE_C = bytes(range(32))
NONCE_S = bytes(range(100, 132))


def pair(
    client_secret: bytes = SECRET,
    server_secret: bytes = SECRET,
    client_context: bytes = CONTROL,
    server_context: bytes = CONTROL,
) -> tuple[Handshake, Handshake]:
    return (
        Handshake(CLIENT, client_secret, NONCE_C, client_context),
        Handshake(SERVER, server_secret, NONCE_S, server_context),
    )


def exchange(client: Handshake, server: Handshake) -> tuple[bytes, bytes, bytes]:
    """Run the three steps; the bytes of each."""
    hello = client.start()
    challenge = server.receive_data(hello)
    answer = client.receive_data(challenge)
    assert server.receive_data(answer) == b""
    return hello, challenge, answer


# -- the good exchange ---------------------------------------------------------------


def test_both_ends_are_proven_with_the_same_secret() -> None:
    client, server = pair()
    hello, challenge, answer = exchange(client, server)
    assert client.done and server.done
    assert hello == b"AUTH00000020" + NONCE_C
    assert challenge[:12] == b"ACHL00000040" and challenge[12:44] == NONCE_S
    assert challenge[44:] == auth.proof(SECRET, SERVER, CONTROL, NONCE_C, NONCE_S)
    assert answer == b"APRF00000020" + auth.proof(SECRET, CLIENT, CONTROL, NONCE_C, NONCE_S)
    assert client.rest == server.rest == b""


def test_the_proofs_differ_by_role_context_and_each_nonce() -> None:
    proofs = {
        auth.proof(SECRET, SERVER, CONTROL, NONCE_C, NONCE_S),
        auth.proof(SECRET, CLIENT, CONTROL, NONCE_C, NONCE_S),
        auth.proof(SECRET, SERVER, COMPILE, NONCE_C, NONCE_S),
        auth.proof(SECRET, SERVER, CONTROL, NONCE_S, NONCE_C),
        auth.proof(SECRET, SERVER, CONTROL, NONCE_C, bytes(32)),
        auth.proof(OTHER, SERVER, CONTROL, NONCE_C, NONCE_S),
    }
    assert len(proofs) == 6


def test_bytes_after_the_handshake_are_left_for_the_connections_protocol() -> None:
    client, server = pair()
    challenge = server.receive_data(client.start())
    answer = client.receive_data(challenge + b"LGNT")  # (no server sends early; kept anyway)
    assert client.rest == b"LGNT"
    assert server.receive_data(answer + b"DIST00000001ARGC") == b""
    assert server.done and server.rest == b"DIST00000001ARGC"


@pytest.mark.parametrize("piece", [1, 5, 12, 13])
def test_any_chunking_gives_the_same_exchange(piece: int) -> None:
    client, server = pair()
    hello = client.start()
    challenge = b"".join(server.receive_data(hello[i : i + piece]) for i in range(0, 44, piece))
    assert challenge[:12] == b"ACHL00000040"
    answer = b""
    for i in range(0, len(challenge), piece):
        answer += client.receive_data(challenge[i : i + piece])
    assert client.done
    for i in range(0, len(answer), piece):
        server.receive_data(answer[i : i + piece])
    assert server.done


# -- failures ------------------------------------------------------------------------


def test_a_client_with_the_wrong_secret_refuses_the_server_and_never_proves() -> None:
    client, server = pair(client_secret=OTHER)
    challenge = server.receive_data(client.start())
    with pytest.raises(RemoteProtocolError, match="server does not know the farm secret"):
        client.receive_data(challenge)
    assert client.state == "failed"
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"")


def test_a_server_with_the_wrong_secret_is_refused_by_the_client() -> None:
    client, server = pair(server_secret=OTHER)
    with pytest.raises(RemoteProtocolError, match="server does not know"):
        client.receive_data(server.receive_data(client.start()))


def test_a_client_that_forges_a_proof_is_refused() -> None:
    _, server = pair()
    server.receive_data(encode_blob(b"AUTH", NONCE_C))
    forged = auth.proof(OTHER, CLIENT, CONTROL, NONCE_C, NONCE_S)
    with pytest.raises(RemoteProtocolError, match="client does not know the farm secret"):
        server.receive_data(encode_blob(b"APRF", forged))
    assert not server.done


def test_a_reflected_server_proof_does_not_prove_a_client() -> None:
    """The attacker sends the server its own proof back as the client's."""
    _, server = pair()
    challenge = server.receive_data(encode_blob(b"AUTH", NONCE_C))
    with pytest.raises(RemoteProtocolError, match="client does not know"):
        server.receive_data(encode_blob(b"APRF", challenge[44:]))


def test_a_replayed_exchange_fails_on_a_new_connection() -> None:
    """A recorded client's AUTH and APRF, replayed: the server's nonce is new."""
    client, server = pair()
    hello, _, answer = exchange(client, server)
    fresh = Handshake(SERVER, SECRET, os.urandom(32), CONTROL)
    fresh.receive_data(hello)
    with pytest.raises(RemoteProtocolError, match="client does not know"):
        fresh.receive_data(answer)


def test_a_replayed_challenge_fails_for_a_new_client() -> None:
    """A fake server replays a recorded ACHL: the client's nonce is new."""
    client, server = pair()
    _, challenge, _ = exchange(client, server)
    fresh = Handshake(CLIENT, SECRET, os.urandom(32), CONTROL)
    fresh.start()
    with pytest.raises(RemoteProtocolError, match="server does not know"):
        fresh.receive_data(challenge)


def test_a_server_that_echoes_the_clients_nonce_is_refused() -> None:
    client = Handshake(CLIENT, SECRET, NONCE_C, CONTROL)
    client.start()
    echoed = NONCE_C + auth.proof(SECRET, SERVER, CONTROL, NONCE_C, NONCE_C)
    with pytest.raises(RemoteProtocolError, match="echoed"):
        client.receive_data(encode_blob(b"ACHL", echoed))


def test_a_proof_for_compile_connections_does_not_open_a_control_connection() -> None:
    client, server = pair(client_context=COMPILE, server_context=CONTROL)
    with pytest.raises(RemoteProtocolError, match="server does not know"):
        client.receive_data(server.receive_data(client.start()))


def test_an_unauthenticated_request_is_refused_at_its_first_token() -> None:
    _, server = pair()
    with pytest.raises(RemoteProtocolError, match="authentication required: expected AUTH"):
        server.receive_data(b"DIST00000001")
    _, server = pair()
    with pytest.raises(RemoteProtocolError, match="expected AUTH, got 'LREQ'"):
        server.receive_data(b"LREQ00000004id=1")


@pytest.mark.parametrize(
    "token", [encode_token(b"AUTH", 31), encode_token(b"AUTH", 33), encode_token(b"AUTH", 1 << 31)]
)
def test_a_hello_of_the_wrong_size_is_refused_before_its_payload(token: bytes) -> None:
    _, server = pair()
    with pytest.raises(RemoteProtocolError, match="bad AUTH token"):
        server.receive_data(token)  # (no payload sent: refused on the 12 bytes)


def test_an_oversized_or_short_challenge_or_proof_is_refused() -> None:
    client, server = pair()
    client.start()
    with pytest.raises(RemoteProtocolError, match="bad ACHL token"):
        client.receive_data(encode_token(b"ACHL", 1 << 30))
    server.receive_data(encode_blob(b"AUTH", NONCE_C))
    with pytest.raises(RemoteProtocolError, match="bad APRF token"):
        server.receive_data(encode_blob(b"APRF", bytes(31)))


def test_garbage_token_values_are_refused() -> None:
    _, server = pair()
    with pytest.raises(RemoteProtocolError, match="bad token value"):
        server.receive_data(b"AUTH0000002g" + NONCE_C)


@pytest.mark.parametrize("cut", [0, 5, 12, 30, 43])
def test_a_truncated_hello_fails_at_eof(cut: int) -> None:
    _, server = pair()
    hello = encode_blob(b"AUTH", NONCE_C)
    assert server.receive_data(hello[:cut]) == b"" if cut else True
    with pytest.raises(RemoteProtocolError, match=r"closed during authentication \(expect AUTH\)"):
        server.receive_eof()
    assert not server.done


def test_a_truncated_proof_fails_at_eof_and_eof_after_done_is_fine() -> None:
    client, server = pair()
    answer = client.receive_data(server.receive_data(client.start()))
    server.receive_data(answer[:20])
    with pytest.raises(RemoteProtocolError, match="expect APRF"):
        server.receive_eof()
    client.receive_eof()  # the client was done: nothing wrong


def test_a_refusal_gives_the_clients_error_its_reason() -> None:
    client = Handshake(CLIENT, SECRET, NONCE_C, CONTROL)
    client.start()
    refusal = encode_blob(b"FAIL", b"reason=no farm secret here")
    assert client.receive_data(refusal[:15]) == b""  # waits for the whole reason
    with pytest.raises(RemoteProtocolError, match="authentication refused: 'no farm secret here'"):
        client.receive_data(refusal[15:])
    client = Handshake(CLIENT, SECRET, NONCE_C, CONTROL)
    client.start()
    with pytest.raises(RemoteProtocolError, match="reason too long"):
        client.receive_data(encode_token(b"FAIL", 5000))


def test_a_server_does_not_take_a_refusal() -> None:
    _, server = pair()
    with pytest.raises(RemoteProtocolError, match="expected AUTH, got 'FAIL'"):
        server.receive_data(encode_blob(b"FAIL", b"reason=x"))


def test_misuse_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError, match="too short"):
        Handshake(CLIENT, b"short", NONCE_C, CONTROL)
    with pytest.raises(LocalProtocolError, match="nonce"):
        Handshake(CLIENT, SECRET, b"x", CONTROL)
    with pytest.raises(LocalProtocolError, match="role"):
        Handshake("admin", SECRET, NONCE_C, CONTROL)
    _, server = pair()
    with pytest.raises(LocalProtocolError):
        server.start()
    client, _ = pair()
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"ACHL")  # before start()


def test_starts_handshake_tells_auth_from_distcc_and_control() -> None:
    assert auth.starts_handshake(b"AUTH00000020")
    assert not auth.starts_handshake(b"DIST00000001")
    assert not auth.starts_handshake(b"CCFC")
    assert not auth.starts_handshake(b"")


# -- hostile bytes -----------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=6))
def test_a_server_fed_garbage_fails_cleanly_and_is_never_done(data: bytes, cuts: list[int]) -> None:
    server = Handshake(SERVER, SECRET, NONCE_S, CONTROL)
    pieces = [
        data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)], strict=True)
    ]
    sent = b""
    try:
        for piece in pieces:
            sent += server.receive_data(piece)
            assert len(server._buf) <= 12 + 32  # never buffers more than one token
        server.receive_eof()
    except RemoteProtocolError:
        pass
    assert not server.done
    assert sent in (b"", b"ACHL00000040" + NONCE_S + sent[44:])


@settings(max_examples=300, deadline=None)
@given(prefix=st.binary(max_size=80))
def test_garbage_after_a_real_hello_never_proves_the_client(prefix: bytes) -> None:
    server = Handshake(SERVER, SECRET, NONCE_S, CONTROL)
    server.receive_data(encode_blob(b"AUTH", NONCE_C))
    try:
        server.receive_data(prefix)
        server.receive_data(encode_blob(b"APRF", prefix[:32].ljust(32, b"\0")))
    except RemoteProtocolError:
        pass
    assert not server.done


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_a_client_fed_garbage_fails_cleanly_and_sends_no_proof(data: bytes) -> None:
    client = Handshake(CLIENT, SECRET, NONCE_C, CONTROL)
    client.start()
    try:
        assert client.receive_data(data) == b""
        client.receive_eof()
    except RemoteProtocolError:
        pass
    assert not client.done


# -- the secret's file -------------------------------------------------------------------


def _file(tmp_path: Path, content: bytes, mode: int = 0o600) -> str:
    path = tmp_path / "farm.secret"
    path.write_bytes(content)
    path.chmod(mode)
    return str(path)


def test_a_private_secret_file_is_read_without_surrounding_space(tmp_path: Path) -> None:
    assert read_secret(_file(tmp_path, b"  " + SECRET + b"\n")) == SECRET
    assert read_secret(_file(tmp_path, SECRET, 0o640)) == SECRET  # the group may read it
    assert secret_from("") is None
    assert secret_from(_file(tmp_path, SECRET)) == SECRET


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602, 0o666])
def test_a_secret_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = _file(tmp_path, SECRET, mode)
    with pytest.raises(ConfigError, match="readable or writable by every user; refusing"):
        read_secret(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode  # (not "fixed" behind the owner's back)


def test_bad_secret_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fewer than 16 bytes"):
        read_secret(_file(tmp_path, b"short\n"))
    with pytest.raises(ConfigError, match="longer than 4096"):
        read_secret(_file(tmp_path, b"x" * 5000))
    with pytest.raises(ConfigError, match="No such file"):
        read_secret(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="not a regular file"):
        read_secret(str(tmp_path))


_EXPECTED = {"server hello": b"AUTH", "client challenge": b"ACHL", "server proof": b"APRF"}


@pytest.mark.parametrize(
    ("where", "token"),
    [
        (where, token)
        for where in _EXPECTED
        for token in (b"AUTH", b"ACHL", b"APRF", b"DIST", b"CCFC", b"LREQ")
        if token != _EXPECTED[where]
    ],
)
def test_each_state_takes_only_its_own_token(where: str, token: bytes) -> None:
    client, server = pair()
    hello = client.start()
    if where == "server proof":
        server.receive_data(hello)
    side = client if where == "client challenge" else server
    size = {b"AUTH": 32, b"ACHL": 64, b"APRF": 32}.get(token, 4)
    with pytest.raises(RemoteProtocolError, match=f"expected {_EXPECTED[where].decode()}"):
        side.receive_data(encode_token(token, size))
    assert not side.done


def test_a_done_handshake_takes_no_more_data() -> None:
    client, server = pair()
    exchange(client, server)
    for side in (client, server):
        with pytest.raises(LocalProtocolError, match="done"):
            side.receive_data(b"x")
