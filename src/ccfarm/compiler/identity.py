"""A compiler's identity from what `cc -v` prints (family, version, target)."""

from __future__ import annotations

import re

from ccfarm.model import CompilerIdentity

_TARGET = re.compile(r"^Target: (\S+)", re.MULTILINE)
_GCC = re.compile(r"^gcc version (\S+)", re.MULTILINE)
_CLANG = re.compile(r"clang version (\S+)", re.MULTILINE)


def parse_version_output(text: str) -> CompilerIdentity:
    target_m = _TARGET.search(text)
    target = target_m.group(1) if target_m else ""
    if m := _CLANG.search(text):
        return CompilerIdentity("clang", m.group(1), target)
    if m := _GCC.search(text):
        return CompilerIdentity("gcc", m.group(1), target)
    return CompilerIdentity("unknown", "", target)
