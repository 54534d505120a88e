#!/usr/bin/env python3
"""Print src/ccfarm/compiler/_gcc_names.py from the local gcc's option list.

    python3 scripts/gcc_option_names.py gcc > src/ccfarm/compiler/_gcc_names.py

Names of `-f`, `-m` and `--param` options that `gcc --help=CLASS` lists for
the C and C++ front ends, without `no-` and values. Review the diff: a new
option that reads or writes a file needs its own row in compiler/options.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

HEADER = '''"""Option names gcc 12 lists in `gcc --help=CLASS` (x86-64) for the classes common,
optimizers, warnings, target, params, c, c++ and undocumented, without `no-` and values.

Data for `compiler/options.py`; regenerate with `scripts/gcc_option_names.py`.
"""
'''
CLASSES = ("common", "optimizers", "warnings", "target", "params", "c", "c++", "undocumented")


def option_names(compiler: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"f": set(), "m": set(), "param": set()}
    for driver in (compiler, compiler.replace("gcc", "g++")):
        for cls in CLASSES:
            text = subprocess.run(
                [driver, f"--help={cls}"], capture_output=True, text=True, check=False
            ).stdout
            for line in text.splitlines():
                m = re.match(r"  (-[^ ]+)", line)
                if not m:
                    continue
                name = m.group(1)
                if name.startswith("--param="):
                    p = re.match(r"--param=([a-z0-9_.-]+)=", name)
                    if p:
                        found["param"].add(p.group(1))
                    continue
                for family in ("f", "m"):
                    if name.startswith("-" + family):
                        base = re.match(r"-.([A-Za-z0-9+_.-]*)", name)
                        word = base.group(1) if base else ""
                        word = word[3:] if word.startswith("no-") else word
                        if word:
                            found[family].add(word)
    return found


def main() -> None:
    names = option_names(sys.argv[1] if len(sys.argv) > 1 else "gcc")
    print(HEADER, end="")
    for key, var in (("f", "GCC_F_NAMES"), ("m", "GCC_M_NAMES"), ("param", "GCC_PARAMS")):
        body = textwrap.fill(
            " ".join(sorted(names[key])),
            88,
            initial_indent="    ",
            subsequent_indent="    ",
            break_on_hyphens=False,
            break_long_words=False,
        )
        print(f'\n{var} = """\n{body}\n    """')


if __name__ == "__main__":
    main()
