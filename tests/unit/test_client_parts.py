"""The wrapper's small pieces: invocation modes, files to send, atomic output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ccfarm.client.job.invocation import find_compiler, resolve
from ccfarm.client.job.outputs import write_atomically
from ccfarm.client.job.sources import DIRECTORY_MARKER, entries
from ccfarm.compiler.args import CompileJob, analyse
from ccfarm.errors import CcfarmError


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_invocation_modes(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    gcc = _exe(bindir / "gcc")
    _exe(bindir / "cc")
    env = {"PATH": str(bindir)}
    explicit = resolve(["ccfarm", "gcc", "-c", "x.c"], env)
    assert explicit.argv == ("gcc", "-c", "x.c") and explicit.compiler_path == str(gcc)
    implicit = resolve(["/usr/bin/ccfarm", "-c", "x.c"], env)
    assert implicit.argv[0] == "cc"
    assert resolve(["ccfarm", "x.c", "-c"], env).argv[0] == "cc"
    with pytest.raises(CcfarmError):
        resolve(["ccfarm"], env)
    with pytest.raises(CcfarmError):
        resolve(["ccfarm", "nosuchcc", "-c", "x.c"], env)


def test_masquerade_skips_itself(tmp_path: Path) -> None:
    masq = tmp_path / "masq"
    masq.mkdir()
    real = tmp_path / "real"
    real.mkdir()
    wrapper = _exe(tmp_path / "ccfarm")
    (masq / "gcc").symlink_to(wrapper)
    gcc = _exe(real / "gcc")
    env = {"PATH": f"{masq}:{real}"}
    inv = resolve([str(masq / "gcc"), "-c", "x.c"], env)
    assert inv.argv == ("gcc", "-c", "x.c") and inv.compiler_path == str(gcc)
    assert resolve(["gcc", "-c", "x.c"], env).compiler_path == str(gcc)  # via PATH
    assert find_compiler("gcc", str(masq)) is None  # only ourselves there: no recursion


def test_files_to_send(tmp_path: Path) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "a.h").write_text("int a;\n")
    (tmp_path / "m.h").write_text("#define M 1\n")
    (tmp_path / "x.c").write_text("int x;\n")
    job = analyse(["gcc", "-imacros", "m.h", "-c", "x.c"])
    assert isinstance(job, CompileJob)
    text = (
        b'# 0 "x.c"\n# 0 "<built-in>"\n# 1 "inc/../inc/a.h" 1\nint a;\n'
        b'# 1 "/nonexistent/gone.h" 1\n'
    )
    sent = entries(text, job, str(tmp_path))
    names = [e.name.decode() for e in sent]
    assert names == [
        f"{tmp_path}/x.c",
        f"{tmp_path}/inc/{DIRECTORY_MARKER}",
        f"{tmp_path}/inc/a.h",
        f"{tmp_path}/m.h",
    ]
    assert sent[2].data == b"int a;\n" and sent[1].data == b""


def test_write_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out.o"
    write_atomically(str(target), b"one")
    write_atomically(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["out.o"]  # no temporary left behind
    write_atomically(os.devnull, b"ignored")  # not a regular file: written in place
    assert os.path.exists(os.devnull)
    with pytest.raises(OSError):
        write_atomically(str(tmp_path / "missing-dir" / "x.o"), b"x")
    assert os.listdir(tmp_path) == ["out.o"]


def test_local_slots_default_to_the_cpus_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ccfarm.client.job import run

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert run._cpus() == 2  # taskset / cpusets, not the machine's count

    def unsupported(pid: int) -> set[int]:
        raise OSError("no affinity here")

    monkeypatch.setattr(os, "sched_getaffinity", unsupported, raising=False)
    assert run._cpus() == 64
