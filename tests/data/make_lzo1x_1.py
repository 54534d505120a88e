"""Re-make tests/data/lzo1x_1/*.lzo: the samples compressed by liblzo2's lzo1x_1.

    pip install python-lzo     # needs gcc and liblzo2-dev; only for this script
    python tests/data/make_lzo1x_1.py

These are the streams distcc's miniLZO writes (the same algorithm and
level); the unit tests check that ccfarm reads every one of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lzo  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.lzo_samples import samples  # noqa: E402


def main() -> None:
    out = Path(__file__).parent / "lzo1x_1"
    out.mkdir(exist_ok=True)
    for name, plain in samples().items():
        (out / f"{name}.lzo").write_bytes(lzo.compress(plain, 1, False))
        print(f"{name}: {len(plain)} -> {(out / f'{name}.lzo').stat().st_size}")


if __name__ == "__main__":
    main()
