#!/usr/bin/env python3
"""Write man/PROGRAM.1 for every ccfarm program from the sources of its --help.

    .venv/bin/python scripts/manpages.py          # after changing a flag or a help text
    .venv/bin/python scripts/manpages.py --check  # exit 1 if a page is out of date

tests/unit/test_manpages.py fails while the committed pages are out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ccfarm.manpage import SECTION, page, programs

MAN = Path(__file__).resolve().parent.parent / "man"


def main(argv: list[str]) -> int:
    stale = []
    for prog in programs():
        path = MAN / f"{prog}.{SECTION}"
        text = page(prog)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if "--check" not in argv:
            MAN.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        verb = "out of date" if "--check" in argv else "written"
        print(f"{verb}: {', '.join(stale)}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
