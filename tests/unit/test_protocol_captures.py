"""Every real distcc capture decodes (whole and byte by byte) and re-encodes exactly.

The captures are the bytes real distcc 3.4 peers exchanged (README.md beside
them). Requests are decoded with `RequestParser`, replies with
`ReplyParser(version of the request's DIST)`. Tests are parametrised over
the files found by glob, so new captures are picked up: a new broken stream
must be added to the tables below, or its test fails.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import (
    PUMP,
    CompileStatus,
    DepsFile,
    FileEntry,
    JobHeader,
    LinkEntry,
    ObjectFile,
    PreprocessedSource,
    ReplyComplete,
    ReplyHeader,
    ReplyParser,
    RequestComplete,
    RequestParser,
    Stderr,
    Stdout,
    compressed,
    encode_reply,
    encode_reply_head,
    encode_request,
    sends_files,
)
from ccfarm.protocol.compression import compress, decompress, is_stored, store
from tests.unit import conftest
from tests.unit.conftest import (
    LITERAL_ONLY,
    LZO_TOKENS,
    MISSING,
    PROTOCOL_MARKS,
    bytewise,
    capture_names,
    drive,
    recompressed,
    request_version,
    walk_tokens,
    whole,
)

pytestmark = PROTOCOL_MARKS

#: requests that are broken on purpose, and whether the parser can refuse
#: them before EOF ("at once") or only when the stream ends ("at EOF")
BROKEN_REQUESTS = {
    "h-p1-cpp-fail": "at EOF",  # cpp failed: DIST ARGC ARGV..., then close without DOTI
    "l-raw-bad-version": "at once",  # DIST00000004
    "l2-raw-garbage": "at once",  # an HTTP request line
}
#: payload files beside the captures: suffix -> the reply event that carries them
PAYLOAD_FILES = {".o": ObjectFile, ".s": ObjectFile, ".d": DepsFile}

Outcome = tuple[list[object], RemoteProtocolError | None]
Chunking = Callable[[bytes], list[bytes]]


def _read(captures: Path, name: str, side: str) -> bytes:
    return (captures / f"{name}.{side}.bin").read_bytes()


def decode_request(data: bytes, chunking: Chunking = whole, *, eof: bool = True) -> Outcome:
    return drive(RequestParser(), chunking(data), eof=eof)


def decode_reply(
    version: int, data: bytes, chunking: Chunking = whole, *, eof: bool = True
) -> Outcome:
    return drive(ReplyParser(version), chunking(data), eof=eof)


def same_outcome(a: Outcome, b: Outcome) -> bool:
    """Same events, and the same refusal (type and message) or none."""
    error_a = (type(a[1]), str(a[1])) if a[1] else None
    error_b = (type(b[1]), str(b[1])) if b[1] else None
    return a[0] == b[0] and error_a == error_b


def request_bytes(events: list[object]) -> bytes:
    """`encode_request` of decoded request events."""
    header, *body, end = events
    assert isinstance(header, JobHeader) and isinstance(end, RequestComplete)
    if not sends_files(header.version):
        (source,) = body
        assert isinstance(source, PreprocessedSource)
        return encode_request(header, source=source.data, stored=end.stored)
    assert all(isinstance(e, FileEntry | LinkEntry) for e in body)
    return encode_request(header, files=body, stored=end.stored)  # type: ignore[arg-type]


def reply_bytes(events: list[object], *, stored: bool = False) -> bytes:
    """`encode_reply` of decoded reply events (checking their order on the way)."""
    head, status, err, out, obj, *rest = events
    assert isinstance(head, ReplyHeader) and isinstance(status, CompileStatus)
    assert isinstance(err, Stderr) and isinstance(out, Stdout) and isinstance(obj, ObjectFile)
    deps = b""
    if len(rest) == 2:
        assert isinstance(rest[0], DepsFile)
        deps = rest[0].data
    assert len(rest) in (1, 2) and isinstance(rest[-1], ReplyComplete)
    return encode_reply(
        head.version,
        status.wait_status,
        stderr=err.data,
        stdout=out.data,
        obj=obj.data,
        deps=deps,
        stored=stored,
    )


# -- decoding ---------------------------------------------------------------------


@pytest.mark.parametrize("name", capture_names(".client.bin"))
def test_request_decodes_whole_and_byte_by_byte(captures_dir: Path, name: str) -> None:
    data = _read(captures_dir, name, "client")
    at_once = decode_request(data)
    one_by_one = decode_request(data, bytewise)
    assert same_outcome(at_once, one_by_one), (at_once, one_by_one)
    events, error = at_once
    if name in BROKEN_REQUESTS:
        assert error is not None, f"{name} is broken on purpose but decoded: {events}"
        return
    assert error is None, f"{name}: {error}"
    header = events[0]
    assert isinstance(header, JobHeader)
    assert header.version == request_version(data)
    assert isinstance(events[-1], RequestComplete)
    assert sum(isinstance(e, JobHeader | RequestComplete) for e in events) == 2


@pytest.mark.parametrize("name", capture_names(".server.bin"))
def test_reply_decodes_whole_and_byte_by_byte(captures_dir: Path, name: str) -> None:
    data = _read(captures_dir, name, "server")
    version = request_version(_read(captures_dir, name, "client"))
    at_once = decode_reply(version, data)
    one_by_one = decode_reply(version, data, bytewise)
    assert same_outcome(at_once, one_by_one), (at_once, one_by_one)
    events, error = at_once
    if not data:
        # the daemon refused the job by closing: nothing to wait for, an error at EOF
        assert decode_reply(version, data, eof=False) == ([], None)
        assert events == [] and error is not None
        return
    assert error is None, f"{name}: {error}"
    assert events[0] == ReplyHeader(version)
    assert isinstance(events[1], CompileStatus)
    assert isinstance(events[-1], ReplyComplete)


@pytest.mark.parametrize("name", [n for n, when in BROKEN_REQUESTS.items() if when == "at once"])
def test_broken_request_refused_before_eof(captures_dir: Path, name: str) -> None:
    data = _read(captures_dir, name, "client")
    for chunking in (whole, bytewise):
        events, error = decode_request(data, chunking, eof=False)
        assert events == [] and isinstance(error, RemoteProtocolError)


def test_bad_version_and_garbage_say_why(captures_dir: Path) -> None:
    _, error = decode_request(_read(captures_dir, "l-raw-bad-version", "client"))
    assert "version 4" in str(error)
    _, error = decode_request(_read(captures_dir, "l2-raw-garbage", "client"))
    assert "GET" in str(error)


def test_request_cut_before_doti_gives_header_then_fails_at_eof(captures_dir: Path) -> None:
    data = _read(captures_dir, "h-p1-cpp-fail", "client")
    assert decode_request(data, eof=False)[1] is None  # still waiting for DOTI
    events, error = decode_request(data)
    assert isinstance(error, RemoteProtocolError) and "DOTI" in str(error)
    (header,) = events
    assert isinstance(header, JobHeader) and header.version == 1
    # the header part is exactly what encode_request writes before DOTI
    assert encode_request(header, source=b"") == data + b"DOTI00000000"


def test_half_closed_reply_and_its_head(captures_dir: Path) -> None:
    """The client half-closed after its request: distccd kills the job (exit 107).

    Its reply may stop after SERR (when the client's side is gone by then):
    that head is exactly what `encode_reply_head` writes.
    """
    data = _read(captures_dir, "n2-half-close", "server")
    events, error = decode_reply(1, data)
    assert error is None
    head, status, err = events[:3]
    assert head == ReplyHeader(1)
    assert isinstance(status, CompileStatus) and status.exit_code == 107  # EXIT_IO_ERROR
    assert isinstance(err, Stderr) and b"Client fd disconnected" in err.data
    cut = data[: data.index(b"SOUT")]
    assert decode_reply(1, cut, eof=False) == (events[:3], None)
    events, error = decode_reply(1, cut)
    assert events == [head, status, err]
    assert isinstance(error, RemoteProtocolError) and "SOUT" in str(error)
    assert encode_reply_head(1, status.wait_status, err.data) == cut


# -- re-encoding ------------------------------------------------------------------


def _whole_streams(side: str) -> list[str]:
    """Captures whose `side` stream is complete (so there is something to re-encode)."""
    names = capture_names(f".{side}.bin")
    if names == [MISSING]:
        return names
    broken = BROKEN_REQUESTS if side == "client" else {}
    path = conftest.captures_path()
    return [n for n in names if n not in broken and (path / f"{n}.{side}.bin").stat().st_size]


@pytest.mark.parametrize("name", _whole_streams("client"))
def test_request_reencodes_to_the_same_bytes(captures_dir: Path, name: str) -> None:
    data = _read(captures_dir, name, "client")
    events, error = decode_request(data)
    assert error is None
    encoded = request_bytes(events)
    version = request_version(data)
    end = events[-1]
    assert isinstance(end, RequestComplete)
    # LZO bodies are ccfarm's encoder's, not distcc's LZO1X-1: the rest is byte for byte
    assert encoded == (recompressed(data, stored=end.stored) if compressed(version) else data)
    assert decode_request(encoded) == (events, None)


@pytest.mark.parametrize("name", _whole_streams("server"))
def test_reply_reencodes_to_the_same_bytes(captures_dir: Path, name: str) -> None:
    data = _read(captures_dir, name, "server")
    version = request_version(_read(captures_dir, name, "client"))
    events, error = decode_reply(version, data)
    assert error is None
    stored = LITERAL_ONLY.get(name) == "server"
    encoded = reply_bytes(events, stored=stored)
    # LZO bodies are ccfarm's encoder's, not distcc's LZO1X-1: the rest is byte for byte
    assert encoded == (recompressed(data, stored=stored) if compressed(version) else data)
    assert decode_reply(version, encoded) == (events, None)


@pytest.mark.parametrize("name", sorted(LITERAL_ONLY))
def test_literal_only_bodies_carry_their_plain_bytes(captures_dir: Path, name: str) -> None:
    """Their LZO bodies are stored literals, byte for byte what ccfarm's
    `store` writes (so real distccd and distcc read ccfarm's stored bodies),
    and `is_stored` knows them."""
    side = LITERAL_ONLY[name]
    data = _read(captures_dir, name, side)
    version = request_version(_read(captures_dir, name, "client"))
    bodies = [p for n, _, p in walk_tokens(data) if n in LZO_TOKENS and p]
    assert bodies and compressed(version)
    for body in bodies:
        plain = decompress(body, 1 << 20)
        assert plain in body and body.endswith(b"\x11\x00\x00")  # literals + end marker
        assert compress(plain) != body and len(compress(plain)) < len(body)
        assert store(plain) == body and is_stored(body) and not is_stored(compress(plain))


# -- payloads against the files the real client wrote ---------------------------


def _payload_files() -> list[tuple[str, str]]:
    found = [
        (name, suffix)
        for suffix in PAYLOAD_FILES
        for name in capture_names(suffix)
        if name != MISSING
    ]
    return sorted(found) or [(MISSING, ".o")]


@pytest.mark.parametrize(("name", "suffix"), _payload_files())
def test_decoded_payload_matches_the_clients_file(
    captures_dir: Path, name: str, suffix: str
) -> None:
    expected = (captures_dir / f"{name}{suffix}").read_bytes()
    version = request_version(_read(captures_dir, name, "client"))
    events, error = decode_reply(version, _read(captures_dir, name, "server"))
    assert error is None
    (body,) = [e for e in events if isinstance(e, PAYLOAD_FILES[suffix])]
    assert body.data == expected  # type: ignore[attr-defined]


# -- what the captures are known to contain (README.md index) --------------------


def test_plain_and_lzo_requests_agree(captures_dir: Path) -> None:
    plain, _ = decode_request(_read(captures_dir, "a-p1-plain", "client"))
    lzo, _ = decode_request(_read(captures_dir, "b-p2-lzo", "client"))
    header, source, _ = plain
    assert isinstance(header, JobHeader) and isinstance(source, PreprocessedSource)
    assert header == JobHeader(1, (b"x86_64-linux-gnu-gcc", b"-c", b"hello.c", b"-o", b"hello.o"))
    assert lzo[0] == JobHeader(2, header.argv)
    assert plain[1:] == lzo[1:]  # the same .i, once plain and once through LZO
    hello = (captures_dir / "sources" / "hello.c").read_bytes()
    assert source.data.startswith(b'# 0 "hello.c"\n') and source.data.endswith(hello)


def test_real_client_gets_the_same_reply_from_ccfarmd_and_distccd(captures_dir: Path) -> None:
    """Same request (real distcc, v2); ccfarmd's reply decodes to distccd's events.

    Byte for byte but for the LZO bodies: ccfarm's encoder is not LZO1X-1.
    """
    real = _read(captures_dir, "b-p2-lzo", "server")
    request = _read(captures_dir, "b-p2-lzo", "client")
    assert _read(captures_dir, "k-ccfarmd-p2", "client") == request
    ours = _read(captures_dir, "k-ccfarmd-p2", "server")
    assert decode_reply(2, ours) == decode_reply(2, real)
    assert ours == recompressed(real)
    assert (
        decode_reply(2, _read(captures_dir, "k2-pyserver-p2-store", "server"))[0][:-2]
        == (
            decode_reply(2, real)[0][:-2]  # all but the object (another compiler run) and the end
        )
    )


@pytest.mark.parametrize(
    ("name", "wait_status", "exit_code", "stderr_has", "has_object"),
    [
        ("a-p1-plain", 0, 0, None, True),
        ("c-p1-error", 0x100, 1, b"error", False),
        ("c2-p2-error", 0x100, 1, b"error", False),
        ("d-p1-warning", 0, 0, b"warning", True),
        ("d2-p2-warning", 0, 0, b"warning", True),
        ("n-job-lifetime", 0x7600, 118, b"timeout", False),
        ("o-p1-dash-S", 0, 0, None, True),
    ],
)
def test_reply_status_and_bodies(
    captures_dir: Path,
    name: str,
    wait_status: int,
    exit_code: int,
    stderr_has: bytes | None,
    has_object: bool,
) -> None:
    version = request_version(_read(captures_dir, name, "client"))
    events, _ = decode_reply(version, _read(captures_dir, name, "server"))
    status = next(e for e in events if isinstance(e, CompileStatus))
    assert (status.wait_status, status.exit_code) == (wait_status, exit_code)
    err = next(e for e in events if isinstance(e, Stderr))
    assert (stderr_has in err.data) if stderr_has else err.data == b""
    obj = next(e for e in events if isinstance(e, ObjectFile))
    assert bool(obj.data) == has_object


def test_pump_request_files_links_and_deps(captures_dir: Path) -> None:
    events, _ = decode_request(_read(captures_dir, "e-p3-pump", "client"))
    header, *entries, _end = events
    assert header == JobHeader(
        PUMP,
        (b"x86_64-linux-gnu-gcc", b"-c", b"pump_hello.c", b"-o", b"pump_hello.o"),
        b"/src",
    )
    assert [type(e).__name__ for e in entries] == ["FileEntry"] * 2 + ["LinkEntry"] * 3 + [
        "FileEntry"
    ]
    source = (captures_dir / "sources" / "pump_hello.c").read_bytes()
    assert entries[0] == FileEntry(b"/src/pump_hello.c", source)
    header_file = (captures_dir / "sources" / "pump_hello.h").read_bytes()
    assert entries[1] == FileEntry(b"/src/pump_hello.h", header_file)
    for link in entries[2:5]:
        assert isinstance(link, LinkEntry)
        assert link.target.startswith(b"../") and link.target.endswith(link.name)
    assert entries[5] == FileEntry(b"/src/forcing_technique_271828", b"")
    reply, _ = decode_reply(PUMP, _read(captures_dir, "e-p3-pump", "server"))
    assert reply[-2] == DepsFile(b"pump_hello.o: pump_hello.c pump_hello.h\n")


def test_reply_waits_for_more_until_the_end(captures_dir: Path) -> None:
    """Without EOF a v1/v2 reply completes after DOTO; a v3 one needs DOTD or EOF."""
    for name, version in (("a-p1-plain", 1), ("e-p3-pump", PUMP)):
        events, error = decode_reply(version, _read(captures_dir, name, "server"), eof=False)
        assert error is None and isinstance(events[-1], ReplyComplete)
    data = _read(captures_dir, "e-p3-pump", "server")
    cut = data[: data.index(b"DOTD")]
    events, error = decode_reply(PUMP, cut, eof=False)
    assert error is None and isinstance(events[-1], ObjectFile)
    # distcc 3.4 accepts a reply that ends right after DOTO (see reply.py)
    events, error = decode_reply(PUMP, cut)
    assert error is None and isinstance(events[-1], ReplyComplete)
    assert not any(isinstance(e, DepsFile) for e in events)


# -- finding the captures ----------------------------------------------------------


def test_captures_found_by_glob(captures_dir: Path) -> None:
    clients = capture_names(".client.bin")
    assert clients == sorted(
        p.name.removesuffix(".client.bin") for p in captures_dir.glob("*.client.bin")
    )
    assert set(BROKEN_REQUESTS) | set(LITERAL_ONLY) <= set(clients)
    assert capture_names(".server.bin") == clients


def test_missing_captures_fail_everywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(conftest.CAPTURES_ENV, str(tmp_path / "nowhere"))
    assert conftest.capture_names(".client.bin") == [MISSING]
    for ci in ("true", None):
        if ci:
            monkeypatch.setenv("CI", ci)
        else:
            monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.fail.Exception, match=conftest.CAPTURES_ENV):
            conftest.require_captures()
    # an existing directory without captures counts as missing too
    monkeypatch.setenv(conftest.CAPTURES_ENV, str(tmp_path))
    with pytest.raises(pytest.fail.Exception):
        conftest.require_captures()
    (tmp_path / "x.client.bin").write_bytes(b"")
    assert conftest.require_captures() == tmp_path
    assert conftest.capture_names(".client.bin") == ["x"]


def test_default_location_is_in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(conftest.CAPTURES_ENV, raising=False)
    repo = Path(__file__).resolve().parents[2]
    assert (repo / "pyproject.toml").exists()
    assert conftest.captures_path() == repo / "tests" / "captures"
    assert (conftest.captures_path() / "record.py").exists()  # and how to re-record them
