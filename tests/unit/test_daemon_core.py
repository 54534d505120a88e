"""Daemon-side pure pieces: argument checks, rooting, workspace safety, access, compilers."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.compiler.daemon_args import (
    DaemonJob,
    Refusal,
    check_request_args,
    daemon_argv_preprocessed,
    daemon_argv_rooted,
    rewrite_deps_text,
)
from ccfarm.compiler.linemarkers import included_files, working_directory_marker
from ccfarm.daemon.access import AccessList
from ccfarm.daemon.compilers import CompilerAllowList
from ccfarm.daemon.workspace import Workspace
from ccfarm.errors import ConfigError, RemoteProtocolError


def checked(cmd: str, version: int = 1) -> DaemonJob:
    job = check_request_args(cmd.split(), version=version)
    assert isinstance(job, DaemonJob), job
    return job


@pytest.mark.parametrize(
    "cmd",
    [
        "gcc -fplugin=x.so -c a.c",
        "gcc -specs=x -c a.c",
        "gcc -B/x -c a.c",
        "gcc @f -c a.c",
        "gcc -wrapper sh -c a.c",
        "gcc -iplugindir=/x -c a.c",
        "gcc -fdump-tree-all -c a.c",
        "gcc -save-temps -c a.c",
        "gcc -aux-info /etc/x -c a.c",
        "gcc -Xlinker x -c a.c",
        "gcc -Wl,-x -c a.c",
        "gcc -fprofile-use=/x -c a.c",
        "gcc -Xassembler @f -c a.c",
        "gcc -fsanitize-ignorelist=/etc/passwd -c a.c",
        "gcc --sysroot=/ -c a.c",
        "gcc a.c -o a",
        "gcc -E a.c",
        "gcc -c a.c b.c",
    ],
)
def test_refused(cmd: str) -> None:
    assert isinstance(check_request_args(cmd.split(), version=3), Refusal)


def test_preprocessed_versions_refuse_reading_files() -> None:
    assert isinstance(
        check_request_args(["gcc", "-include", "/etc/passwd", "-c", "a.c"], version=1), Refusal
    )
    assert isinstance(checked("gcc -include x.h -c a.c", version=3), DaemonJob)


def test_argument_limits() -> None:
    assert isinstance(check_request_args(["gcc", "-c", "a.c"] + ["-O"] * 6000, version=1), Refusal)


def test_preprocessed_argv() -> None:
    job = checked("gcc -O2 -c hello.c -o hello.o")
    assert job.input_suffix == ".i"
    assert daemon_argv_preprocessed(job, "/w/in.i", "/w/out.o") == [
        "gcc",
        "-O2",
        "-c",
        "/w/in.i",
        "-o",
        "/w/out.o",
        "-fno-diagnostics-show-caret",
    ]
    job = checked("g++ -x c++ -c x.cc -oobj/x.o")
    assert job.input_suffix == ".ii"
    assert daemon_argv_preprocessed(job, "/w/in.ii", "/w/out.o") == [
        "g++",
        "-x",
        "c++-cpp-output",
        "-c",
        "/w/in.ii",
        "-o/w/out.o",
        "-fno-diagnostics-show-caret",
    ]
    assert daemon_argv_preprocessed(checked("gcc -c a.c"), "/w/i.i", "/w/o.o")[-3:-1] == [
        "-o",
        "/w/o.o",
    ]


def test_rooted_argv() -> None:
    job = checked(
        "gcc -I/abs/inc -Irel -isystem /usr/include -iquote /q -include /abs/h.h "
        "-ffile-prefix-map=/src=. -MD -MF x.d -MT tgt -c /abs/a.c -o a.o",
        version=3,
    )
    cmd = daemon_argv_rooted(job, root="/R", output_path="/w/o.o", deps_path="/w/o.d")
    assert cmd.argv == [
        "gcc",
        "-ffile-prefix-map=/R=",
        "-I/R/abs/inc",
        "-Irel",
        "-isystem",
        "/R/usr/include",
        "-iquote",
        "/R/q",
        "-include",
        "/R/abs/h.h",
        "-ffile-prefix-map=/R/src=.",
        "-c",
        "/R/abs/a.c",
        "-o",
        "/w/o.o",
        "-MD",
        "-MF",
        "/w/o.d",
    ]
    assert cmd.dep_target == "tgt"
    plain = daemon_argv_rooted(
        checked("gcc -c a.c", version=3), root="/R", output_path="/w/o.o", deps_path="/w/o.d"
    )
    # always -MD: the daemon reads the full list to check what the compile read
    assert plain.argv[-3:] == ["-MD", "-MF", "/w/o.d"] and plain.dep_target == "a.o"
    assert cmd.system_deps and not plain.system_deps


def test_deps_rewrite() -> None:
    text = b"/w/o.o: /R/src/a.c /R/src/a.h \\\n /usr/include/stdio.h\n"
    assert rewrite_deps_text(text, root=b"/R", target=b"a.o") == (
        b"a.o: /src/a.c /src/a.h \\\n /usr/include/stdio.h\n"
    )
    # the client asked for -MMD: system headers left out of the reply
    assert rewrite_deps_text(text, root=b"/R", target=b"a.o", system=False) == (
        b"a.o: /src/a.c /src/a.h\n"
    )


def test_line_markers() -> None:
    text = (
        b'# 0 "x.c"\n# 0 "/home/u//"\n# 0 "<built-in>"\n# 0 "<command-line>"\n'
        b'# 1 "/usr/include/stdio.h" 1 3 4\nint x;\n# 2 "x.c" 2\n#line 7 "odd\\"na\\\\me.h"\n'
        b'# 1 "tab\\011name.h"\n'
    )
    assert included_files(text) == [
        b"x.c",
        b"/usr/include/stdio.h",
        b'odd"na\\me.h',
        b"tab\tname.h",
    ]
    assert working_directory_marker(text) == b"/home/u"


def test_workspace_refuses_escapes(tmp_path: Path) -> None:
    ws = Workspace(str(tmp_path))
    try:
        ws.add_file(b"/a/b.h", b"ok")
        assert (Path(ws.root) / "a/b.h").read_bytes() == b"ok"
        for bad in (b"/../etc/x", b"/a/../../x", b"/", b"//"):
            with pytest.raises(RemoteProtocolError):
                ws.add_file(bad, b"x")
        with pytest.raises(RemoteProtocolError):  # a link that climbs out of the mirror
            ws.add_link(b"/sys", b"../../../../../../../etc")
        # distcc-pump's link of a system include directory to the host's own
        ws.add_link(b"/usr/include", b"../" * 40 + b"usr/include")
        with pytest.raises(RemoteProtocolError):
            ws.add_file(b"/usr/include/evil", b"x")  # never written through a link
        with pytest.raises(RemoteProtocolError):
            ws.add_file(b"/a/b.h", b"again")
        ws.add_link(b"/abs", b"/a")
        assert os.readlink(Path(ws.root) / "abs") == ws.root + "/a"
        assert ws.client_dir(b"/home/u/p") == ws.root + "/home/u/p"
        assert not (tmp_path.parent / "etc" / "evil").exists()
    finally:
        ws.remove()
    assert not os.path.exists(ws.path)


def test_access_list() -> None:
    acl = AccessList.parse(["127.0.0.0/8", "10.1.0.0/16", "::1"])
    assert acl.allows("127.0.1.5") and acl.allows("10.1.2.3") and acl.allows("::1")
    assert acl.allows("::ffff:127.0.0.1")
    assert not acl.allows("10.2.0.1") and not acl.allows("garbage")
    assert not AccessList.parse([]).allows("127.0.0.1")
    with pytest.raises(ConfigError):
        AccessList.parse(["300.1.1.1"])


def test_compiler_allow_list(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("gcc", "x86_64-linux-gnu-gcc-12", "clang++", "sh", "gcc-evil"):
        path = bindir / name
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    allow = CompilerAllowList.discover([str(bindir)])
    assert {"gcc", "x86_64-linux-gnu-gcc-12", "clang++"} <= allow.names
    assert "sh" not in allow.names and "gcc-evil" not in allow.names
    assert allow.check("/usr/bin/gcc") == "gcc"
    assert allow.resolve("gcc") == str(bindir / "gcc")
    for bad in ("sh", "/tmp/gcc", "../gcc", "gcc-evil"):
        with pytest.raises(ValueError):
            allow.check(bad)
    only = CompilerAllowList.discover([str(bindir)], only=["gcc"])
    assert only.names == {"gcc"}


_ORACLE = re.compile(rb'^#(?:line)? *[0-9]+ +"((?:[^"\\\n]|\\.)*)"', re.MULTILINE)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    b'# 1 "a.c"',
                    b'# 12 "dir/b.h" 1 3 4',
                    b'#line 3 "c.h"',
                    b'# 0 "<built-in>"',
                    b'# 7 "q\\"uote.h" 2',
                    b"#pragma once",
                    b"# define X",
                    b'#  5  "sp.h"',
                    b'# 9 "unterminated',
                    b'int x; # 1 "not-a-marker.h"',
                    b'# x "bad.h"',
                ]
            ),
            st.binary(max_size=12).filter(lambda b: b"\n" not in b),
        ),
        max_size=30,
    )
)
def test_line_markers_match_a_regex_oracle(lines: list[bytes]) -> None:
    text = b"\n".join(lines)
    expected = list(dict.fromkeys(_ORACLE.findall(text)))
    got = [
        n
        for n in dict.fromkeys(
            __import__("ccfarm.compiler.linemarkers", fromlist=["x"])._raw_names(text)
        )
    ]
    assert got == expected
