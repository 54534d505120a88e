"""Every real distcc capture decodes, and re-encodes to the same bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import (
    NEED_DATA,
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
    encode_reply,
    encode_request,
)

CAPTURES = Path(
    os.environ.get(
        "CCFARM_CAPTURES", Path(__file__).resolve().parents[3] / "shared" / "distcc-captures"
    )
)
#: streams that are broken on purpose
BROKEN_REQUESTS = {"h-p1-cpp-fail", "l-raw-bad-version", "l2-raw-garbage"}
#: the peer sent literal-only LZO (valid, but not what LZO1X-1 produces)
STORED_LZO = {"j2-py-p2-store", "k2-pyserver-p2-store"}


def _names(suffix: str) -> list[str]:
    # one placeholder when the captures are absent: the fixture then fails (CI) or skips
    return sorted(p.name[: -len(suffix)] for p in CAPTURES.glob(f"*{suffix}")) or ["<missing>"]


def _drain(parser: RequestParser | ReplyParser) -> list[object]:
    events = []
    for _ in range(100_000):
        event = parser.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
    raise AssertionError("parser did not stop")


def _decode(parser: RequestParser | ReplyParser, data: bytes, bytewise: bool) -> list[object]:
    events: list[object] = []
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for chunk in chunks:
        parser.receive_data(chunk)
        events += _drain(parser)
    parser.receive_eof()
    return events + _drain(parser)


def decode_request(data: bytes, *, bytewise: bool = False) -> list[object]:
    return _decode(RequestParser(), data, bytewise)


def decode_reply(version: int, data: bytes, *, bytewise: bool = False) -> list[object]:
    return _decode(ReplyParser(version), data, bytewise)


def reencode_request(events: list[object]) -> bytes:
    header = events[0]
    assert isinstance(header, JobHeader)
    source = next((e.data for e in events if isinstance(e, PreprocessedSource)), None)
    files = [e for e in events if isinstance(e, FileEntry | LinkEntry)]
    return encode_request(header, source=source, files=files)


def reencode_reply(events: list[object]) -> bytes:
    by_type = {type(e): e for e in events}
    head = by_type[ReplyHeader]
    status = by_type[CompileStatus]
    assert isinstance(head, ReplyHeader) and isinstance(status, CompileStatus)
    deps = by_type.get(DepsFile)
    return encode_reply(
        head.version,
        status.wait_status,
        stderr=by_type[Stderr].data,  # type: ignore[attr-defined]
        stdout=by_type[Stdout].data,  # type: ignore[attr-defined]
        obj=by_type[ObjectFile].data,  # type: ignore[attr-defined]
        deps=deps.data if isinstance(deps, DepsFile) else b"",
    )


@pytest.fixture(autouse=True)
def _need_captures(captures_dir: Path) -> None:
    assert captures_dir.exists()


@pytest.mark.parametrize("name", _names(".client.bin"))
def test_request_decodes_whole_and_bytewise(name: str) -> None:
    data = (CAPTURES / f"{name}.client.bin").read_bytes()
    if name in BROKEN_REQUESTS:
        with pytest.raises(RemoteProtocolError):
            decode_request(data)
        with pytest.raises(RemoteProtocolError):
            decode_request(data, bytewise=True)
        return
    whole = decode_request(data)
    assert whole == decode_request(data, bytewise=True)
    assert isinstance(whole[0], JobHeader)
    assert isinstance(whole[-1], RequestComplete)
    if name in STORED_LZO:
        assert decode_request(reencode_request(whole)) == whole
    else:
        assert reencode_request(whole) == data


@pytest.mark.parametrize("name", _names(".server.bin"))
def test_reply_decodes_whole_and_bytewise(name: str) -> None:
    data = (CAPTURES / f"{name}.server.bin").read_bytes()
    request = (CAPTURES / f"{name}.client.bin").read_bytes()
    version = int(request[4:12], 16) if request.startswith(b"DIST") else 1
    if not data or name.startswith("n2-"):
        # no answer (refusals) / a reply cut after SERR (client half-closed)
        with pytest.raises(RemoteProtocolError):
            decode_reply(version, data)
        return
    whole = decode_reply(version, data)
    assert whole == decode_reply(version, data, bytewise=True)
    assert isinstance(whole[-1], ReplyComplete)
    if name in STORED_LZO:
        assert decode_reply(version, reencode_reply(whole)) == whole
    else:
        assert reencode_reply(whole) == data
    for suffix, kind in ((".o", ObjectFile), (".s", ObjectFile), (".d", DepsFile)):
        expected = CAPTURES / f"{name}{suffix}"
        if expected.exists() and (kind is DepsFile or name.startswith(("a", "b", "e", "i", "o"))):
            body = next(e for e in whole if isinstance(e, kind))
            assert body.data == expected.read_bytes()  # type: ignore[attr-defined]


def test_pump_request_has_files_and_links() -> None:
    events = decode_request((CAPTURES / "e-p3-pump.client.bin").read_bytes())
    header = events[0]
    assert isinstance(header, JobHeader)
    assert header.version == 3 and header.cwd == b"/tmp/distcc-demo"
    files = [e for e in events if isinstance(e, FileEntry)]
    links = [e for e in events if isinstance(e, LinkEntry)]
    assert [f.name for f in files][0] == b"/tmp/distcc-demo/pump_hello.c"
    assert any(link.target.endswith(b"/usr/include") for link in links)
    assert any(f.name.endswith(b"forcing_technique_271828") and f.data == b"" for f in files)
