"""compiler/job_paths.py: which paths a protocol-3 job may name and read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.compiler.job_paths import (
    climbs_out,
    is_system_link,
    message_paths,
    names_module_cache,
    prerequisites,
    read_allowed,
)
from ccfarm.daemon.workspace import Workspace
from ccfarm.errors import RemoteProtocolError


@pytest.mark.parametrize(
    ("base", "path", "out"),
    [
        ("/home/u", "x.c", False),
        ("/home/u", "../x.c", False),
        ("/home/u", "../../x.c", False),
        ("/home/u", "../../../x.c", True),
        ("/home/u", "a/../../../../x", True),
        ("/home/u", "a/b/../../x", False),
        ("/", "..", True),
        ("/home/u", "/etc/passwd", False),  # absolute: re-rooted by the daemon
        ("/home/u", "/../etc/passwd", True),
        ("/home/u", "/a/../../etc", True),
        ("/home/u", "/a/../b", False),
        ("/home/u", "", False),
        ("/home/u/../..", "..", True),  # the base is taken by its words too
    ],
)
def test_climbs_out(base: str, path: str, out: bool) -> None:
    assert climbs_out(base, path) is out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "a", "b", ""]), max_size=12))
def test_climbs_out_matches_a_walk_in_a_real_mirror(parts: list[str]) -> None:
    """Word by word is what the kernel does in a tree without links."""
    path = "/".join(parts)
    base = "/m/a/b"
    depth = 0 if path.startswith("/") else 3  # an absolute path starts at the mirror's top
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                break
        elif part not in ("", "."):
            depth += 1
    assert climbs_out(base, path) is (depth < 0)


def test_module_cache_names() -> None:
    assert names_module_cache("/home/u/gcm.cache")
    assert names_module_cache("gcm.cache/m.gcm")
    assert not names_module_cache("/home/u/gcm.cachex")


@pytest.mark.parametrize(
    ("name", "target", "ok"),
    [
        ("/usr/include", "../" * 30 + "usr/include", True),
        (
            "/usr/lib/gcc/x86_64-linux-gnu/12/include",
            "../" * 30 + "usr/lib/gcc/x86_64-linux-gnu/12/include",
            True,
        ),
        ("/usr/include", "../" * 2 + "usr/include", False),  # lands inside the mirror
        ("/usr/include", "../" * 30 + "etc", False),  # another directory
        ("/etc", "../" * 30 + "etc", False),  # not a system header directory
        ("/usr/include", "../" * 30 + "usr/include/../../etc", False),
        ("/usr/include", "/usr/include", False),  # absolute: re-rooted, not this case
        ("/usr/include", "", False),
    ],
)
def test_system_link(name: str, target: str, ok: bool) -> None:
    assert is_system_link(name, target, mirror_depth=4) is ok


def test_prerequisites() -> None:
    deps = b"/w/out.o: /R/a.c /R/a.h \\\n /usr/include/stdio.h\n"
    assert prerequisites(deps, "/w/out.o") == ["/R/a.c", "/R/a.h", "/usr/include/stdio.h"]
    assert prerequisites(b"other.o: a.c\n", "/w/out.o") is None
    assert prerequisites(b"/w/out.o: a\\ b.h\n", "/w/out.o") is None  # a space in a name
    assert prerequisites(b"/w/out.o: a$$b.h\n", "/w/out.o") is None
    assert prerequisites(b"", "/w/out.o") is None


def test_read_allowed() -> None:
    system = ("/usr/include",)
    assert read_allowed("/ws/root/home/u/a.h", "/ws/root", system)
    assert read_allowed("/usr/include/stdio.h", "/ws/root", system)
    assert not read_allowed("/ws/rootx/a.h", "/ws/root", system)
    assert not read_allowed("/etc/shadow", "/ws/root", system)
    assert not read_allowed("/usr/includex/a.h", "/ws/root", system)


def _deps(ws: Workspace, *names: str) -> None:
    with open(ws.deps, "w") as f:
        f.write(f"{ws.output}: " + " ".join(names) + "\n")


def test_workspace_reads_outside(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    ws = Workspace(str(tmp_path))
    try:
        ws.add_file(b"/home/u/x.c", b"int x;\n")
        cwd = ws.client_dir(b"/home/u")
        assert ws.reads_outside(cwd) == "(no dependency list)"
        _deps(ws, "x.c", "/usr/include/stdc-predef.h")
        if os.path.exists("/usr/include/stdc-predef.h"):
            assert ws.reads_outside(cwd) is None
        _deps(ws, "x.c", str(secret))
        assert ws.reads_outside(cwd) == str(secret)
        _deps(ws, "x.c", "../" * 30 + str(secret).lstrip("/"))
        assert ws.reads_outside(cwd) is not None
        _deps(ws, "x.c", "missing.h")  # what cannot be resolved is not trusted
        assert ws.reads_outside(cwd) == "missing.h"
        # a link made by hand inside the mirror that points out is caught by its target
        os.symlink(str(secret), os.path.join(cwd, "s.h"))
        _deps(ws, "s.h")
        assert ws.reads_outside(cwd) == "s.h"
    finally:
        ws.remove()


def test_workspace_links(tmp_path: Path) -> None:
    ws = Workspace(str(tmp_path))
    try:
        ws.add_file(b"/home/u/x.c", b"")
        ws.add_link(b"/home/u/in", b"x.c")
        ws.add_link(b"/home/u/abs", b"/home/u/x.c")
        assert os.readlink(Path(ws.root) / "home/u/abs") == ws.root + "/home/u/x.c"
        for name, target in (
            (b"/home/u/up", b"../../../etc"),
            (b"/home/u/up2", b"/../../etc"),
            (b"/home/u/gcm.cache", b"x"),
            (b"/home/u/m", b"gcm.cache"),
            (b"/home/u/m2", b"/tmp/gcm.cache"),
            (b"/home/u/empty", b""),
        ):
            with pytest.raises(RemoteProtocolError):
                ws.add_link(name, target)
        with pytest.raises(RemoteProtocolError):
            ws.add_file(b"/home/u/gcm.cache/m.gcm", b"")
    finally:
        ws.remove()


def test_message_paths() -> None:
    text = (
        b"In file included from a.c:1:\n"
        b"                 from b.h:2,\n"
        b"/x/sec.txt:1:5: error: expected\n"
        b"    1 | root:x:secret\n"
        b"a:1:/../../etc/shadow:3:1: warning: x\n"
    )
    names = message_paths(text)
    for name in ("a.c", "b.h", "/x/sec.txt", "a", "a:1:/../../etc/shadow"):
        assert name in names
    assert message_paths(b"") == [] and message_paths(b"no location here\n") == []


def test_workspace_messages_name_outside(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x")
    (tmp_path / "jobs").mkdir()
    ws = Workspace(str(tmp_path / "jobs"))
    try:
        cwd = ws.client_dir(b"/home/u")
        ws.add_file(b"/home/u/x.c", b"")
        assert ws.messages_name_outside(b"x.c:1:2: warning: w\n", cwd) is None
        assert ws.messages_name_outside(b"/usr/include/stdio.h:1:2: warning: w\n", cwd) is None
        assert ws.messages_name_outside(f"{secret}:1:2: warning: w\n".encode(), cwd) == str(secret)
        # a directory of the mirror whose name holds ':1:' does not hide the climb
        os.mkdir(os.path.join(cwd, "a:1:"))
        climb = "a:1:/" + "../" * 30 + str(secret).lstrip("/")
        assert ws.messages_name_outside(f"{climb}:3:1: warning: w\n".encode(), cwd) == climb
    finally:
        ws.remove()
