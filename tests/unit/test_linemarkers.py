"""Reading gcc's line markers: the main file's share of preprocessed text."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ccfarm.compiler.linemarkers import main_file_bytes


def _by_lines(text: bytes) -> int:
    """The plain way: line by line, the lines after a marker naming the first
    marker's file, up to the next marker."""
    lines = text.splitlines(keepends=True)
    main = lines[0].split(b'"')[1]
    total, inside = 0, False
    for line in lines:
        words = line.split(b" ", 2)
        if line.startswith(b"# ") and len(words) > 2 and words[1].isdigit():
            inside = words[2].startswith(b'"' + main + b'"')
            continue
        if inside:
            total += len(line)
    return total


def test_counts_the_main_files_lines_between_markers() -> None:
    text = (
        b'# 0 "x.c"\n'
        b'# 0 "<built-in>"\n'
        b'# 0 "<command-line>"\n'
        b'# 1 "x.c"\n'
        b'# 1 "x.h" 1\n'
        b"int from_header(void);\n"
        b'# 2 "x.c" 2\n'
        b"int f(void) { return 1; }\n"  # 26 bytes
        b'const char *where = "x.c";\n'  # 27 bytes: the name in code, not a marker
        b"#pragma once\n"  # 13 bytes: a directive, not a marker
        b'# 9 "y.h" 1 3 4\n'
        b"int g(void);\n"
        b'# 10 "x.c" 2\n'
        b"int z;"  # 6 bytes, no newline at the end
    )
    assert main_file_bytes(text) == 26 + 27 + 13 + 6 == _by_lines(text)


def test_no_markers_no_count() -> None:
    assert main_file_bytes(b"int x;\n") == 0  # -P
    assert main_file_bytes(b"") == 0
    assert main_file_bytes(b'# 1 "x.c"') == 0  # no line after it
    assert main_file_bytes(b"#pragma GCC x\nint y;\n") == 0


def test_escaped_names_match_as_written() -> None:
    text = b'# 0 "a\\"b.c"\n# 1 "a\\"b.c"\nint x;\n# 1 "a.h" 1\nint y;\n# 3 "a\\"b.c" 2\nint z;\n'
    assert main_file_bytes(text) == len(b"int x;\nint z;\n")


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"m.c", b"h.h", b"m.c.h", b"<built-in>"]),
            st.lists(st.sampled_from([b"int a;", b'"m.c"', b"#pragma x", b"", b"  # 1"])),
        ),
        max_size=12,
    )
)
def test_agrees_with_reading_line_by_line(segments: list[tuple[bytes, list[bytes]]]) -> None:
    text = b'# 0 "m.c"\n'
    for number, (name, lines) in enumerate(segments):
        text += b'# %d "%s" %d\n' % (number, name, number % 3) + b"".join(
            line + b"\n" for line in lines
        )
    assert main_file_bytes(text) == _by_lines(text)


def test_real_gcc_output(tmp_path: Path) -> None:
    (tmp_path / "big.h").write_text("".join(f"int decl{i}(int);\n" for i in range(200)))
    body = "".join(f"int f{i}(int x) {{ return decl{i}(x) + {i}; }}\n" for i in range(50))
    (tmp_path / "m.c").write_text(f'#include "big.h"\n#include <stdio.h>\n{body}')
    for flags in ([], ["-g"], ["-g3"]):
        text = subprocess.run(
            ["gcc", "-E", *flags, "m.c"], cwd=tmp_path, capture_output=True, check=True
        ).stdout
        counted = main_file_bytes(text)
        assert counted == _by_lines(text)
        assert len(body) <= counted < len(body) + 100  # (blank lines of the directives)
        assert counted < len(text) / 4
