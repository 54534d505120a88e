"""Read gcc's line markers (`# 12 "file.h" 1 3`) out of preprocessed text."""

from __future__ import annotations

import re

_MARKER = re.compile(rb'^#(?:line)? *[0-9]+ +"((?:[^"\\\n]|\\.)*)"', re.MULTILINE)
_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)")
_PSEUDO = (b"<built-in>", b"<command-line>", b"<stdin>")


def _unescape(name: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        text = m.group(1)
        if text[:1].isdigit():
            return bytes([int(text, 8) & 0xFF])
        return text

    return _ESCAPE.sub(one, name) if b"\\" in name else name


def included_files(preprocessed: bytes) -> list[bytes]:
    """Every file named by a line marker, in order of first appearance.

    Leaves out gcc's pseudo files and the working-directory marker (a name
    ending in `//`, emitted with -g).
    """
    seen: dict[bytes, None] = {}
    for raw in _MARKER.findall(preprocessed):
        if raw in seen:
            continue
        seen[raw] = None
    names = []
    for raw in seen:
        name = _unescape(raw)
        if name in _PSEUDO or name.endswith(b"//"):
            continue
        names.append(name)
    return names


def working_directory_marker(preprocessed: bytes) -> bytes | None:
    for raw in _MARKER.findall(preprocessed[:65536]):
        name = _unescape(raw)
        if name.endswith(b"//"):
            return name[:-2] or b"/"
    return None
