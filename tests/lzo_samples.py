"""Plain inputs for the LZO fixtures in tests/data/lzo1x_1 (generated, not stored).

Each exercises a part of LZO1X: literal runs (random bytes), short and
overlapping copies (a repeated pattern), long matches whose lengths take
zero-byte extensions (zeros), and text like a preprocessed C file.
`tests/data/make_lzo1x_1.py` compresses them with liblzo2's lzo1x_1 (through
python-lzo, as distcc's miniLZO does) to re-make the fixtures.
"""

from __future__ import annotations

import random


def _c_like(size: int) -> bytes:
    rng = random.Random(7)
    words = [b"int", b"static", b"const", b"char", b"return", b"struct", b"lua_State", b"if"]
    lines = []
    total = 0
    n = 0
    while total < size:
        n += 1
        line = b"%s %s f%d(%s *L, int n%d) { return n%d + %d; }\n" % (
            rng.choice(words),
            rng.choice(words),
            n,
            rng.choice(words),
            n,
            n,
            rng.randrange(999),
        )
        if n % 40 == 0:
            line = b'# %d "/usr/include/stdio.h" 3 4\n' % n
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def samples() -> dict[str, bytes]:
    rng = random.Random(12)
    return {
        "c-like": _c_like(300_000),
        "random": rng.randbytes(70_000),
        "pattern": b"ab" * 5000 + b"abc" * 3000 + b"x" * 70_000,
        "zeros": b"\0" * (1 << 20),
        "short": b"int x;\n",
    }
