"""LZO bodies: raw LZO1X as distcc sends them; bounded, strict decompression."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.errors import RemoteProtocolError
from ccfarm.protocol import VERSIONS, Limits, ReplyParser, compressed
from ccfarm.protocol._lzo_size import plain_size
from ccfarm.protocol.compression import compress, decompress, is_stored, packer, store
from tests.lzo_samples import samples
from tests.unit.conftest import (
    LZO_TOKENS,
    MISSING,
    PROTOCOL_MARKS,
    capture_names,
    captures_path,
    drive,
    request_version,
    walk_tokens,
)

pytestmark = PROTOCOL_MARKS

MiB = 1 << 20

data_blobs = st.one_of(
    st.binary(max_size=2000),
    st.tuples(st.binary(min_size=1, max_size=16), st.integers(1, 500)).map(lambda t: t[0] * t[1]),
    st.text(max_size=500).map(str.encode),
)


# -- empty bodies ---------------------------------------------------------------------


def test_empty_stays_empty() -> None:
    """An empty body is a bare token (value 0), never an LZO stream of nothing."""
    assert compress(b"") == b""
    assert decompress(b"", 0) == b""
    assert decompress(b"", MiB) == b""


# -- the same bytes as distcc ------------------------------------------------------------


def _lzo_captures() -> list[str]:
    """Captures of a compressed protocol version (decided by the request's DIST)."""
    names = capture_names(".client.bin")
    if names == [MISSING]:
        return names
    path = captures_path()
    return [
        n
        for n in names
        if compressed_version(request_version((path / f"{n}.client.bin").read_bytes()))
    ]


def compressed_version(version: int) -> bool:
    return version in VERSIONS and compressed(version)


@pytest.mark.parametrize("name", _lzo_captures())
def test_every_lzo_body_of_the_captures_decompresses(captures_dir: Path, name: str) -> None:
    """The LZO bodies distcc's own code wrote decompress, and ours of them round-trip.

    Version 2/3 bodies (DOTI, FILE, SERR, SOUT, DOTO, DOTD) from the client,
    the include server and distccd are LZO1X-1 output; the *-store captures
    hold the literal-only streams a Python peer wrote. `compress` writes
    another valid LZO1X stream of the same bytes (not LZO1X-1's bytes).
    """
    version = request_version((captures_dir / f"{name}.client.bin").read_bytes())
    checked = 0
    for side in ("client", "server"):
        data = (captures_dir / f"{name}.{side}.bin").read_bytes()
        for token, _, payload in walk_tokens(data):
            if token not in LZO_TOKENS or not payload:
                continue
            plain = decompress(payload, 64 * MiB)
            assert plain_size(payload, 64 * MiB) == len(plain)
            assert decompress(compress(plain), len(plain)) == plain, f"{name} {side} {token!r}"
            checked += 1
    assert checked, f"{name}: a version {version} exchange without a single LZO body"


FIXTURES = Path(__file__).resolve().parents[1] / "data" / "lzo1x_1"


@pytest.mark.parametrize("name", sorted(samples()))
def test_reads_what_liblzo2_lzo1x_1_wrote(name: str) -> None:
    """Streams liblzo2's lzo1x_1 wrote (what distcc sends): exact bytes, exact limits."""
    plain = samples()[name]
    stream = (FIXTURES / f"{name}.lzo").read_bytes()
    assert decompress(stream, len(plain)) == plain
    assert plain_size(stream, len(plain)) == len(plain)
    with pytest.raises(RemoteProtocolError, match="expands beyond"):
        decompress(stream, len(plain) - 1)
    with pytest.raises(RemoteProtocolError, match="expands beyond"):
        plain_size(stream, len(plain) - 1)


@pytest.mark.parametrize("name", sorted(samples()))
def test_compress_writes_lzo1x_that_round_trips(name: str) -> None:
    plain = samples()[name]
    stream = compress(plain)
    assert stream.endswith(b"\x11\x00\x00")  # LZO1X's end marker, no header, no size
    assert plain_size(stream, len(plain)) == len(plain)
    assert decompress(stream, len(plain)) == plain
    if name not in ("random", "short"):  # incompressible
        assert len(stream) < len(plain) // 2


@settings(max_examples=150, deadline=None)
@given(data_blobs)
def test_compress_round_trips_within_exactly_its_size(data: bytes) -> None:
    if data:
        assert decompress(compress(data), len(data)) == data  # a limit of exactly the size
        assert plain_size(compress(data), len(data)) == len(data)


@settings(max_examples=150, deadline=None)
@given(data_blobs.filter(bool))
def test_decompress_refuses_one_byte_less_than_needed(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="expands beyond"):
        decompress(compress(data), len(data) - 1)


def test_decompress_grows_its_buffer() -> None:
    """The plain size is not on the wire: highly compressible bodies need several tries."""
    for size in (4095, 4096, 4097, 100_000, 3 * MiB + 7):
        plain = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert decompress(compress(plain), 4 * MiB) == plain
        zeros = b"\0" * size
        assert decompress(compress(zeros), size) == zeros
        with pytest.raises(RemoteProtocolError, match="expands beyond"):
            decompress(compress(zeros), size - 1)


# -- bad input ------------------------------------------------------------------------


def _cases() -> list[bytes]:
    good = compress(b"int main(void) { return 0; }\n" * 20)
    return [
        b"\x00",
        b"\xff" * 16,
        good[:-1],  # the end marker cut
        good[: len(good) // 2],
        good + b"\x00",  # bytes after the end marker
        good + good,
        b"\x11\x00",  # a short end marker
        b"\x12abc",  # one literal, then a truncated instruction instead of the end marker
        b"\x00\x00\x00\x00" * 8,
    ]


@pytest.mark.parametrize("data", _cases())
def test_decompress_refuses_corrupt_input(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="corrupt LZO"):
        decompress(data, MiB)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.binary(min_size=1, max_size=200), data_blobs.filter(bool).map(compress)), st.data()
)
def test_decompress_gives_bytes_or_protocol_error(data: bytes, draw: st.DataObject) -> None:
    """Random and damaged LZO: a result within the limit or RemoteProtocolError, nothing else."""
    buf = bytearray(data)
    for _ in range(draw.draw(st.integers(0, 3))):
        at = draw.draw(st.integers(0, len(buf) - 1))
        buf[at] ^= draw.draw(st.integers(1, 255))
    limit = draw.draw(st.sampled_from([0, 1, 100, 4096, 100_000]))
    try:
        out = decompress(bytes(buf), limit)
    except RemoteProtocolError:
        return
    assert isinstance(out, bytes) and len(out) <= limit


def test_expanding_beyond_the_limit_is_refused_quickly() -> None:
    """A small body that would expand to 64 MiB is refused near the limit, not after it."""
    bomb = compress(b"\0" * (64 * MiB))
    assert len(bomb) < MiB
    start = time.monotonic()
    for limit in (0, 1, 4096, MiB, 8 * MiB):
        with pytest.raises(RemoteProtocolError, match="expands beyond"):
            decompress(bomb, limit)
    assert time.monotonic() - start < 2.0


def test_a_reply_body_bomb_is_a_protocol_error() -> None:
    body = compress(b"A" * (16 * MiB))
    reply = b"DONE00000002STAT00000000SERR%08x" % len(body) + body
    start = time.monotonic()
    events, error = drive(ReplyParser(2, Limits(max_plain_body=MiB)), [reply])
    assert isinstance(error, RemoteProtocolError) and "expands beyond" in str(error)
    assert len(events) == 2 and time.monotonic() - start < 2.0


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.binary(min_size=1, max_size=300), data_blobs.filter(bool).map(compress)), st.data()
)
def test_the_size_walk_agrees_with_the_decompressor(data: bytes, draw: st.DataObject) -> None:
    """`plain_size` (used when a body could pass its limit) and the codec judge alike.

    Either both refuse the stream, or the walk's size is the length of the
    codec's output: a stream the walk passes cannot then expand further.
    """
    buf = bytearray(data)
    for _ in range(draw.draw(st.integers(0, 3))):
        at = draw.draw(st.integers(0, len(buf) - 1))
        buf[at] ^= draw.draw(st.integers(1, 255))
    stream = bytes(buf)
    try:
        size = plain_size(stream, 1 << 30)
    except RemoteProtocolError:
        size = None
    try:
        out = decompress(stream, 1 << 30)  # large: the codec alone
    except RemoteProtocolError:
        out = None
    assert (size is None) == (out is None), (size, out and len(out))
    assert out is None or len(out) == size


# -- stored bodies: one literal run ---------------------------------------------------

#: lengths where the encoding of a literal run changes form
EDGES = [1, 3, 4, 18, 19, 237, 238, 239, 240, 272, 273, 274, 527, 528, 529, 65_536, 1 << 20]


@pytest.mark.parametrize("n", EDGES)
def test_a_stored_body_of_any_length_decodes_within_exactly_its_size(n: int) -> None:
    plain = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    stream = store(plain)
    assert stream.endswith(b"\x11\x00\x00") and plain in stream
    assert len(stream) <= n + n // 255 + 5  # a byte per 255, the head and end marker
    assert decompress(stream, n) == plain
    assert plain_size(stream, n) == n
    with pytest.raises(RemoteProtocolError, match="expands beyond"):
        decompress(stream, n - 1)
    assert is_stored(stream)
    assert packer(True, stored=True)(plain) == stream
    assert packer(False, stored=True)(plain) == plain  # a version without compression


@settings(max_examples=200, deadline=None)
@given(data_blobs.filter(bool))
def test_stored_round_trips_and_is_known(data: bytes) -> None:
    assert decompress(store(data), len(data)) == data
    assert is_stored(store(data))
    assert not is_stored(store(data)[:-1]) and not is_stored(store(data) + b"\x00")


@pytest.mark.parametrize(
    "stream",
    [
        b"",
        b"\x11\x00\x00",  # the end marker alone: nothing stored
        b"\x15abc\x11\x00\x00",  # a short run that says 4 and holds 3
        b"\x00\x00\x00",  # a long run whose length never ends
        b"\x00\x01" + b"a" * 19 + b"\x11\x00\x00",  # one byte more than the run says
        b"\x05" + b"a" * 8 + b"\x11\x00\x00",  # a run instruction below 18 bytes: not ours
    ],
)
def test_what_is_not_a_stored_body(stream: bytes) -> None:
    assert not is_stored(stream)
