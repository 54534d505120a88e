"""Command-line analysis: distcc's rules, ours, and the rewritten command lines."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.compiler.args import CompileJob, LocalOnly, analyse
from ccfarm.compiler.commands import (
    local_preprocess_argv,
    mentions_location_builtins,
    preprocessed_is_exact,
    remote_argv_full,
    remote_argv_stripped,
    rewrite_compiler_name,
    system_include_dirs,
)


def job(cmd: str) -> CompileJob:
    result = analyse(cmd.split())
    assert isinstance(result, CompileJob), result
    return result


@pytest.mark.parametrize(
    "cmd",
    [
        "gcc x.c -o x",  # link
        "gcc -E x.c",
        "gcc -M -c x.c",
        "gcc -MM -c x.c",
        "gcc -c x.c y.c",
        "gcc -c",
        "gcc -c x.s",
        "gcc -c x.S",
        "gcc -c conftest.c",
        "gcc -c tmp.conftest.c",
        "gcc -c x.c -o x.o -o y.o",
        "gcc -c x.c -o -",
        "gcc -c x.c y.o",
        "gcc -march=native -c x.c",
        "gcc -mtune=native -c x.c",
        "gcc -flto -c x.c",
        "gcc -specs=foo -c x.c",
        "gcc -fplugin=a.so -c x.c",
        "gcc -B/tmp -c x.c",
        "gcc -wrapper gdb -c x.c",
        "gcc @args -c x.c",
        "gcc -save-temps -c x.c",
        "gcc -fprofile-arcs -c x.c",
        "gcc -ftest-coverage -c x.c",
        "gcc --coverage -c x.c",
        "gcc -fprofile-generate -c x.c",
        "gcc -fprofile-use=x -c x.c",
        "gcc -frepo -c x.c",
        "gcc -x assembler -c x.c",
        "gcc -x go -c x.c",
        "gcc -c x.c -x c",
        "gcc -Wa,-a=list -c x.c",
        "gcc -Wa,--MD,f -c x.c",
        "gcc -c -S x.c",
        "gcc -c x.c -o",
        "gcc -c -",
        "gcc -fdump-tree-all -c x.c",
        "gcc -c x.c --sysroot=/x",
        "gcc -Xclang -foo -c x.c",
        "gcc -fdirectives-only -c x.c",
        "gcc -c x.c -v",
        "gcc -c README",
    ],
)
def test_runs_locally(cmd: str) -> None:
    assert isinstance(analyse(cmd.split()), LocalOnly)


@pytest.mark.parametrize(
    "cmd,source,output,mode,language",
    [
        ("gcc -c x.c", "x.c", "x.o", "-c", "c"),
        ("gcc -c src/x.c", "src/x.c", "x.o", "-c", "c"),
        ("gcc -S dir/y.cpp", "dir/y.cpp", "y.s", "-S", "c++"),
        ("g++ -c a.cc -o obj/a.o", "a.cc", "obj/a.o", "-c", "c++"),
        ("gcc -c a.c -oobj/a.o", "a.c", "obj/a.o", "-c", "c"),
        ("gcc -x c++ -c a.c", "a.c", "a.o", "-c", "c++"),
        ("gcc -xc -c a.weird", "a.weird", "a.o", "-c", "c"),
        ("gcc -c a.i", "a.i", "a.o", "-c", "c"),
        ("gcc -c a.C", "a.C", "a.o", "-c", "c++"),
        ("gcc -c a.mm", "a.mm", "a.o", "-c", "objective-c++"),
        ("gcc -I inc -D X=1 -c a.c", "a.c", "a.o", "-c", "c"),
        ("gcc -include x.h -c a.c", "a.c", "a.o", "-c", "c"),
        ("gcc -o out.o -c a.c", "a.c", "out.o", "-c", "c"),
    ],
)
def test_distributable(cmd: str, source: str, output: str, mode: str, language: str) -> None:
    j = job(cmd)
    assert (j.source, j.output, j.mode, j.language) == (source, output, mode, language)
    assert j.argv[j.source_index] == source
    assert j.preprocessed == source.endswith(".i")


def test_operands_are_not_sources() -> None:
    j = job("gcc -I foo.c -include bar.c -c real.c -o x.o")
    assert j.source == "real.c"


def test_wp_md_is_expanded() -> None:
    j = job("gcc -Wp,-MD,.deps/x.d -c x.c -o x.o")
    assert j.deps is not None and j.deps.file == ".deps/x.d" and j.deps.system
    assert "-Wp,-MD,.deps/x.d" not in j.argv


@pytest.mark.parametrize(
    "cmd,file,targets,system",
    [
        ("gcc -MD -c x.c", "x.d", (("x.o", True),), True),
        ("gcc -MMD -c x.c -o obj/x.o", "obj/x.d", (("obj/x.o", True),), False),
        ("gcc -MD -c x.c -o noext", "noext.d", (("noext", True),), True),
        ("gcc -MD -MF deps/x.dep -c x.c", "deps/x.dep", (("x.o", True),), True),
        ("gcc -Wp,-MD,w.d -c x.c -o obj/x.o", "w.d", (("x.o", True),), True),
        ("gcc -MD -MT a -MQ b -c x.c", "x.d", (("a", False), ("b", True)), True),
        ("gcc -MD -MFx.dep -MTtgt -c x.c", "x.dep", (("tgt", False),), True),
    ],
)
def test_dependency_request(
    cmd: str, file: str, targets: tuple[tuple[str, bool], ...], system: bool
) -> None:
    deps = job(cmd).deps
    assert deps is not None
    assert (deps.file, deps.targets, deps.system) == (file, targets, system)


def test_no_deps_without_md() -> None:
    assert job("gcc -MF x.d -c x.c").deps is None


def test_stripped_matches_distcc_capture() -> None:
    # capture m-p1-strip-args: distcc sent `x86_64-linux-gnu-gcc -O2 -c hello.c -o hello.o`
    j = job("gcc -O2 -DFOO=1 -I. -include hello.h -MD -MF hello.d -c hello.c")
    assert remote_argv_stripped(j) == ["gcc", "-O2", "-c", "hello.c", "-o", "hello.o"]


def test_stripped_keeps_compile_options() -> None:
    j = job("gcc -O2 -g -Wall -I inc -isystem sys -iquote q -D A -U B -std=c99 -c x.c -o o/x.o")
    assert remote_argv_stripped(j) == [
        "gcc",
        "-O2",
        "-g",
        "-Wall",
        "-iquote",
        "q",
        "-std=c99",
        "-c",
        "x.c",
        "-o",
        "o/x.o",
    ]


def test_full_argv_drops_only_dependency_options() -> None:
    j = job("gcc -O2 -I/abs -MD -MF x.d -MT t -c x.c")
    argv = remote_argv_full(j, system_dirs=["/usr/include"], extra=["-fdiagnostics-color=always"])
    assert argv == [
        "gcc",
        "-O2",
        "-I/abs",
        "-c",
        "x.c",
        "-o",
        "x.o",
        "-nostdinc",
        "-isystem",
        "/usr/include",
        "-fdiagnostics-color=always",
    ]


def test_preprocess_argv() -> None:
    j = job("gcc -O2 -MMD -MP -c src/x.c -o obj/x.o")
    assert local_preprocess_argv(j, "/tmp/p.i") == [
        "gcc",
        "-O2",
        "src/x.c",
        "-MMD",
        "-MF",
        "obj/x.d",
        "-MQ",
        "obj/x.o",
        "-MP",
        "-E",
        "-o",
        "/tmp/p.i",
    ]


@pytest.mark.parametrize(
    "flags",
    [
        "-MD",
        "-MMD",
        "-MD -MF custom.dep",
        "-MD -MT tgt",
        "-MD -MQ 'a b$'",
        "-MMD -MP",
        "-MD -MT one -MQ two",
        "-Wp,-MD,wp.d",
        "-Wp,-MMD,wp2.d",
        "-MD -MFattached.dep",
    ],
)
@pytest.mark.parametrize("output", [None, "obj/x.o", "obj/with space$.o", "noext"])
@pytest.mark.parametrize("lang", ["c", "c++"])
def test_preprocess_writes_the_same_d_file(
    tmp_path: Path, flags: str, output: str | None, lang: str
) -> None:
    """The .d from our -E run is byte-identical to the one the real compile writes."""
    import shlex

    (tmp_path / "obj").mkdir()
    (tmp_path / "h.h").write_text("int h;\n")
    src = "x.c" if lang == "c" else "x.cpp"
    (tmp_path / src).write_text('#include "h.h"\n#include <stddef.h>\nint x;\n')
    compiler = "gcc" if lang == "c" else "g++"
    cmd = [compiler, *shlex.split(flags), "-c", src] + (["-o", output] if output else [])
    j = analyse(cmd)
    assert isinstance(j, CompileJob) and j.deps is not None
    subprocess.run(cmd, cwd=tmp_path, check=True)
    expected = (tmp_path / j.deps.file).read_bytes()
    (tmp_path / j.deps.file).unlink()
    subprocess.run(local_preprocess_argv(j, str(tmp_path / "out.i")), cwd=tmp_path, check=True)
    assert (tmp_path / j.deps.file).read_bytes() == expected


def test_rewrite_compiler_name() -> None:
    found = {"x86_64-linux-gnu-gcc", "x86_64-linux-gnu-g++-12"}
    which = lambda name: name if name in found else None  # noqa: E731
    assert (
        rewrite_compiler_name("gcc", which=which, target="x86_64-linux-gnu")
        == "x86_64-linux-gnu-gcc"
    )
    assert (
        rewrite_compiler_name("/usr/bin/g++-12", which=which, target="x86_64-linux-gnu")
        == "x86_64-linux-gnu-g++-12"
    )
    assert rewrite_compiler_name("g++", which=which, target="x86_64-linux-gnu") == "g++"
    assert rewrite_compiler_name("cc", which=which, target="x86_64-linux-gnu") == "cc"
    assert rewrite_compiler_name("clang", which=which, target="x86_64-linux-gnu") == "clang"


@pytest.mark.parametrize("language", ["c", "c++"])
def test_system_include_dirs_from_real_gcc(language: str) -> None:
    proc = subprocess.run(
        ["gcc", "-x", language, "-E", "-v", "-"], input=b"", capture_output=True, check=True
    )
    dirs = system_include_dirs(proc.stderr.decode())
    assert "/usr/include" in dirs
    assert any(d.startswith("/usr/lib/gcc") for d in dirs)
    if language == "c++":
        assert any("c++" in d for d in dirs)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "-c",
                    "-S",
                    "-o",
                    "x.c",
                    "y.cpp",
                    "-MD",
                    "-MF",
                    "-MT",
                    "-x",
                    "c",
                    "-E",
                    "-I",
                    "-Wp,-MD,a",
                    "-include",
                    "a.o",
                    "-",
                    "@f",
                    "-oX",
                    "-xc",
                ]
            ),
            st.text(min_size=0, max_size=8),
        ),
        max_size=10,
    )
)
def test_analyse_never_raises(argv: list[str]) -> None:
    result = analyse(["gcc", *argv])
    assert isinstance(result, CompileJob | LocalOnly)
    if isinstance(result, CompileJob):
        remote_argv_stripped(result)
        remote_argv_full(result, system_dirs=None)
        local_preprocess_argv(result, "/tmp/x.i")


@pytest.mark.parametrize(
    ("argv", "exact"),
    [
        (["gcc", "-O2", "-c", "x.c"], True),
        (["g++", "-Os", "-fPIC", "-c", "x.cc", "-o", "x.o"], True),
        (["gcc", "-O", "-c", "x.c"], True),
        (["gcc", "-O3", "-MD", "-Wall", "-c", "x.c"], True),
        (["gcc", "-O2", "-g0", "-c", "x.c"], True),
        (["gcc", "-O0", "-O2", "-c", "x.c"], True),  # the last -O counts
        (["gcc", "-c", "x.c"], False),  # no -O: -O0 places no-ops by location
        (["gcc", "-O2", "-O0", "-c", "x.c"], False),
        (["gcc", "-Og", "-c", "x.c"], False),
        (["gcc", "-O2", "-g", "-c", "x.c"], False),  # debug info records columns
        (["gcc", "-O2", "-ggdb3", "-c", "x.c"], False),
        (["gcc", "-O2", "-ggdb3", "-c", "x.c"], False),
        (["gcc", "-O2", "-g", "-g0", "-c", "x.c"], False),  # kept simple: any -g but -g0
        (["gcc", "-O2", "-fsanitize=undefined", "-c", "x.c"], False),
        (["gcc", "-O2", "-fopenmp", "-c", "x.c"], False),
        (["gcc", "-O2", "-frecord-gcc-switches", "-c", "x.c"], False),
        (["gcc", "-O2", "-finput-charset=latin1", "-c", "x.c"], False),
        (["gcc", "-O2", "-fanalyzer", "-c", "x.c"], False),
        (["gcc", "-O2", "-x", "c", "-c", "x.src"], False),
        (["gcc", "-O2", "-S", "x.c"], False),
        (["gcc", "-O2", "-c", "x.i"], False),  # already preprocessed: sent as it is
        (["gcc", "-O2", "-c", "x.m"], False),
    ],
)
def test_preprocessed_is_exact(argv: list[str], exact: bool) -> None:
    assert preprocessed_is_exact(job(" ".join(argv))) is exact


def test_location_builtins_are_noticed() -> None:
    assert mentions_location_builtins(b"return __builtin_COLUMN();")
    assert mentions_location_builtins(b"auto l = __builtin_source_location();")
    assert not mentions_location_builtins(b"int line = __builtin_LINE();")
