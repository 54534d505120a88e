"""LZO codecs side by side on real preprocessed sources and objects.

    python bench/lzo_codecs.py [--tree lua54] [--rounds 5]

Preprocesses every file of a Lua tree (`gcc -E`, what a protocol 2/3 client
sends) and compiles it (`-O2 -c`, what the daemon sends back), then times
compress and decompress of each with ccfarm's codec (lzallright) and, when it
is importable, python-lzo's LZO1X-1 (liblzo2, what distcc uses; GPL, not a
dependency: `pip install python-lzo` needs gcc and liblzo2-dev). Prints
MB/s of plain bytes (the best of the rounds) and the compressed size ratio.
Decompression runs with the protocol's default limit (`Limits.max_plain_body`)
and, for ccfarm's codec, with each body's exact size as its limit, which
makes it walk the stream first (`protocol/_lzo_size.py`).
Also checks that each codec reads the other's streams.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from ccfarm.demo.codebase import fetch_lupa, lua_trees
from ccfarm.protocol import Limits, compression

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes, int], bytes]]


def codecs() -> dict[str, Codec]:
    found: dict[str, Codec] = {
        "lzallright (ccfarm)": (compression.compress, compression.decompress)
    }
    try:
        import lzo  # type: ignore[import-not-found]
    except ImportError:
        print("python-lzo is not installed: only ccfarm's codec is measured")
    else:

        def unpack(data: bytes, limit: int) -> bytes:
            """As ccfarm 0.1 did: the plain size is not on the wire, so grow the buffer."""
            size = min(max(len(data) * 8, 4096), limit)
            while True:
                try:
                    return bytes(lzo.decompress(data, False, size))
                except lzo.error:
                    if size >= limit:
                        raise
                    size = min(size * 4, limit)

        found["python-lzo lzo1x_1"] = (lambda d: bytes(lzo.compress(d, 1, False)), unpack)
    return found


def corpus(tree_name: str, work: str) -> dict[str, list[bytes]]:
    tree = {t.name: t for t in lua_trees(fetch_lupa())}[tree_name]
    sources, objects = [], []
    for name in tree.sources:
        path = os.path.join(tree.path, name)
        pre = subprocess.run(
            ["gcc", "-O2", "-DLUA_USE_LINUX", "-E", path], capture_output=True, check=True
        )
        sources.append(pre.stdout)
        obj = os.path.join(work, name + ".o")
        subprocess.run(["gcc", "-O2", "-DLUA_USE_LINUX", "-c", path, "-o", obj], check=True)
        with open(obj, "rb") as f:
            objects.append(f.read())
    return {"preprocessed .i": sources, "objects .o": objects}


def best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tree", default="lua54")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    found = codecs()
    with tempfile.TemporaryDirectory(prefix="ccfarm-bench-lzo-") as work:
        sets = corpus(args.tree, work)
    limit = Limits().max_plain_body
    print(
        f"{'set':<16} {'codec':<20} {'plain MB':>9} {'ratio':>6} {'compress':>11} "
        f"{'decompress':>11} {'exact limit':>11}"
    )
    for set_name, blobs in sets.items():
        plain = sum(len(b) for b in blobs)
        streams = {}
        for name, (pack, unpack) in found.items():
            packed = [pack(b) for b in blobs]
            streams[name] = packed
            t_pack = best_of(args.rounds, lambda pack=pack, blobs=blobs: [pack(b) for b in blobs])
            t_unpack = best_of(
                args.rounds, lambda u=unpack, packed=packed: [u(c, limit) for c in packed]
            )
            exact = "-"
            if unpack is compression.decompress:
                t_exact = best_of(
                    args.rounds,
                    lambda u=unpack, p=packed, bs=blobs: [
                        u(c, len(b)) for c, b in zip(p, bs, strict=True)
                    ],
                )
                exact = f"{plain / t_exact / 1e6:.0f} MB/s"
            ratio = sum(len(c) for c in packed) / plain
            print(
                f"{set_name:<16} {name:<20} {plain / 1e6:9.2f} {ratio:6.3f} "
                f"{plain / t_pack / 1e6:7.0f} MB/s {plain / t_unpack / 1e6:7.0f} MB/s {exact:>11}"
            )
        for writer, packed in streams.items():  # each codec reads the other's streams
            for reader, (_, unpack) in found.items():
                pairs = zip(packed, blobs, strict=True)
                assert all(unpack(c, len(b)) == b for c, b in pairs), (writer, reader)
    if len(found) > 1:
        print("each codec read every stream the other wrote")
    return 0


if __name__ == "__main__":
    sys.exit(main())
