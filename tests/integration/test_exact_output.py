"""ccfarm -> ccfarmd on a real code base: objects, debug info, .d files and
diagnostics are byte-identical to a local compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ccfarm_exe, copy_tree, run

#: flags, wrapper environment, and the way the job must have gone: compiled
#: from the preprocessed text ("preprocessed", where that is exact) or from
#: the sources and headers ("exact")
FLAG_SETS: dict[str, tuple[list[str], dict[str, str], str]] = {
    "O2": (["-O2"], {}, "preprocessed"),
    "Os-fPIC": (["-Os", "-fPIC"], {}, "preprocessed"),
    "O2-exact-mode": (["-O2"], {"CCFARM_MODE": "exact"}, "exact"),
    "O0": (["-O0"], {}, "exact"),
    "g": (["-g", "-O1"], {}, "exact"),
    "MD": (["-O2", "-MD"], {}, "preprocessed"),
    "MMD-MF-MT": (
        ["-O2", "-MMD", "-MP", "-MF", "{base}.dep", "-MT", "custom-{base}"],
        {},
        "preprocessed",
    ),
    "g-MMD": (["-g", "-O2", "-MMD"], {}, "exact"),
}
WAY = {"preprocessed": b" from preprocessed text\n", "exact": b" (protocol 0x43460001)\n"}


@pytest.fixture(scope="module")
def lua_copy(lua_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(lua_root / "third-party" / "lua54", tmp_path_factory.mktemp("lua") / "lua54")


def _sources(tree: Path) -> list[str]:
    skip = {"onelua.c", "ltests.c"}
    return sorted(p.name for p in tree.glob("*.c") if p.name not in skip)


@pytest.mark.parametrize("flags", list(FLAG_SETS), ids=list(FLAG_SETS))
def test_every_lua_object_identical(flags: str, lua_copy: Path, ccfarmd, client_env) -> None:
    daemon = ccfarmd(jobs=2)
    flag_list, env_extra, way = FLAG_SETS[flags]
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1", **env_extra}
    sources = _sources(lua_copy)
    assert len(sources) >= 30
    for name in sources:
        base = name[:-2]
        extra = [f.format(base=base) for f in flag_list]
        for stale in (f"{base}.dep", f"{base}.mine.d", f"{base}.farm.d"):  # earlier flag sets'
            (lua_copy / stale).unlink(missing_ok=True)
        local = run(
            ["gcc", *extra, "-DLUA_USE_LINUX", "-c", name, "-o", f"{base}.mine.o"], lua_copy
        )
        local_deps = _deps_files(lua_copy, base)
        remote = run(
            [ccfarm_exe(), "gcc", *extra, "-DLUA_USE_LINUX", "-c", name, "-o", f"{base}.farm.o"],
            lua_copy,
            env,
        )
        assert remote.returncode == local.returncode == 0, remote.stderr.decode()
        assert b"compiled on " + daemon.spec.encode() + WAY[way] in remote.stderr
        assert (lua_copy / f"{base}.farm.o").read_bytes() == (
            lua_copy / f"{base}.mine.o"
        ).read_bytes(), name
        _assert_same_deps(lua_copy, base, local_deps)
        # diagnostics: identical text (the verbose line aside)
        shown = b"".join(
            ln for ln in remote.stderr.splitlines(True) if not ln.startswith(b"ccfarm: ")
        )
        assert shown == local.stderr


def _deps_files(tree: Path, base: str) -> dict[str, bytes]:
    """Dependency files of this object, renamed out of the way."""
    found = {}
    for candidate in (f"{base}.mine.d", f"{base}.dep"):
        path = tree / candidate
        if path.exists():
            found[candidate] = path.read_bytes()
            path.unlink()
    return found


def _assert_same_deps(tree: Path, base: str, local: dict[str, bytes]) -> None:
    for name, data in local.items():
        remote_name = name.replace(".mine.", ".farm.")
        text = (tree / remote_name).read_bytes()
        assert text == data.replace(f"{base}.mine.o".encode(), f"{base}.farm.o".encode())


WARNING_SOURCE = """\
#include <stdio.h>
#define SQUARE(x) ((x) * (x))
struct point { int x; int y; };
int main(void) {
\tint unused_variable;
\tchar *not_a_pointer = 42;
\tstruct point p = {1, 2};   int z = SQUARE(p.x) + p.y;
  printf("%d %p\\n", z, (void *)not_a_pointer, 3);
  return 0;
}
"""

ERROR_SOURCE = """\
#include "header.h"
int f(void) { return UNDEFINED_NAME + helper(); }
"""


@pytest.mark.parametrize(
    "extra", [[], ["-Wall", "-Wextra"], ["-Wall", "-g"], ["-O2", "-Wall", "-Wextra"]]
)
def test_warnings_identical(tmp_path: Path, ccfarmd, client_env, extra: list[str]) -> None:
    (tmp_path / "warn.c").write_text(WARNING_SOURCE)
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec}
    local = run(["gcc", *extra, "-c", "warn.c", "-o", "local.o"], tmp_path)
    remote = run([ccfarm_exe(), "gcc", *extra, "-c", "warn.c", "-o", "remote.o"], tmp_path, env)
    assert local.stderr, "the sample must warn"
    assert remote.stderr == local.stderr
    assert remote.returncode == local.returncode == 0
    assert (tmp_path / "remote.o").read_bytes() == (tmp_path / "local.o").read_bytes()


def _ways(stderr: bytes) -> tuple[list[bytes], bytes]:
    """(the wrapper's verbose lines, everything else) of a verbose run's stderr."""
    lines = stderr.splitlines(True)
    return [ln for ln in lines if ln.startswith(b"ccfarm: ")], b"".join(
        ln for ln in lines if not ln.startswith(b"ccfarm: ")
    )


CASES_FOR_THE_EXACT_WAY = {
    # the compiler proper warns: the preprocessed compile's answer is not used
    "compiler-warning": ("gcc", ["-O2", "-Wall"], "int f(int x) { int y; return x; }\n", "warn"),
    # it fails: the local compiler shows why (no exact try in between)
    "compile-error": ("gcc", ["-O2"], "int f(void) { return nope; }\n", "fail"),
    # the preprocessor warns: the exact way at once (its messages, its colours)
    "cpp-warning": ("gcc", ["-O2"], '#warning "look here"\nint x;\n', "exact"),
    # code that knows its own column: macro expansion would move it
    "source-location": (
        "g++",
        ["-O2", "-std=c++20"],
        "#include <source_location>\n#define HERE std::source_location::current()\n"
        "unsigned col() { return HERE.column(); }\n",
        "exact",
    ),
}


@pytest.mark.parametrize("case", list(CASES_FOR_THE_EXACT_WAY))
def test_preprocessed_way_hands_over_to_the_exact_way(
    case: str, tmp_path: Path, ccfarmd, client_env
) -> None:
    compiler, flags, text, way = CASES_FOR_THE_EXACT_WAY[case]
    source = "src.cc" if compiler == "g++" else "src.c"
    (tmp_path / source).write_text(text)
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    local = run([compiler, *flags, "-c", source, "-o", "local.o"], tmp_path)
    remote = run([ccfarm_exe(), compiler, *flags, "-c", source, "-o", "remote.o"], tmp_path, env)
    verbose, shown = _ways(remote.stderr)
    assert (remote.returncode, shown) == (local.returncode, local.stderr)
    if local.returncode == 0:
        assert (tmp_path / "remote.o").read_bytes() == (tmp_path / "local.o").read_bytes()
    else:
        assert not (tmp_path / "remote.o").exists()
    # one line per job: where it was compiled, and how
    expected = {
        "warn": b"compiled on %s (protocol 0x43460001) after the preprocessed text said something",
        "fail": b"compiled here: %s failed it; compiled again here for the messages",
        "exact": b"compiled on %s (protocol 0x43460001)",
    }[way] % daemon.spec.encode()
    assert len(verbose) == 1 and expected in verbose[0], verbose


def test_warning_in_header_reached_by_absolute_include(tmp_path: Path, ccfarmd, client_env) -> None:
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "lib.h").write_text("static int lib(int a) { int b; return a; }\n")
    (tmp_path / "use.c").write_text('#include "lib.h"\nint use(void) { return lib(1); }\n')
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec}
    args = ["-Wall", "-Wextra", "-g", f"-I{inc}", "-c", "use.c"]
    local = run(["gcc", *args, "-o", "local.o"], tmp_path)
    remote = run([ccfarm_exe(), "gcc", *args, "-o", "remote.o"], tmp_path, env)
    assert str(inc).encode() in local.stderr
    assert remote.stderr == local.stderr
    assert (tmp_path / "remote.o").read_bytes() == (tmp_path / "local.o").read_bytes()


def test_compile_error_same_text_and_status(tmp_path: Path, ccfarmd, client_env) -> None:
    (tmp_path / "header.h").write_text("int helper(void);\n")
    (tmp_path / "bad.c").write_text(ERROR_SOURCE)
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec}
    local = run(["gcc", "-c", "bad.c", "-o", "local.o"], tmp_path)
    remote = run([ccfarm_exe(), "gcc", "-c", "bad.c", "-o", "remote.o"], tmp_path, env)
    assert local.returncode == 1
    assert (remote.returncode, remote.stderr) == (local.returncode, local.stderr)
    assert not (tmp_path / "remote.o").exists()


def test_missing_header_same_text_and_status(tmp_path: Path, ccfarmd, client_env) -> None:
    (tmp_path / "nohdr.c").write_text('#include "does-not-exist.h"\nint x;\n')
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec}
    local = run(["gcc", "-c", "nohdr.c", "-o", "local.o"], tmp_path)
    remote = run([ccfarm_exe(), "gcc", "-c", "nohdr.c", "-o", "remote.o"], tmp_path, env)
    assert (remote.returncode, remote.stderr) == (local.returncode, local.stderr)


CXX_SOURCE = """\
#include <vector>
#include <string>
#include <iostream>
template <typename T> T sum(const std::vector<T>& v) { T s{}; for (auto& x : v) s += x; return s; }
int main() { std::vector<int> v{1, 2, 3}; int unused; std::cout << sum(v) << std::endl; }
"""


@pytest.mark.parametrize("extra", [["-O2"], ["-g", "-Wall"]])
def test_cxx_object_and_warnings(tmp_path: Path, ccfarmd, client_env, extra: list[str]) -> None:
    (tmp_path / "prog.cpp").write_text(CXX_SOURCE)
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec}
    local = run(["g++", *extra, "-c", "prog.cpp", "-o", "local.o"], tmp_path)
    remote = run([ccfarm_exe(), "g++", *extra, "-c", "prog.cpp", "-o", "remote.o"], tmp_path, env)
    assert (remote.returncode, remote.stderr) == (local.returncode, local.stderr)
    assert (tmp_path / "remote.o").read_bytes() == (tmp_path / "local.o").read_bytes()


def test_output_in_other_directory_and_no_o(tmp_path: Path, ccfarmd, client_env) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "obj").mkdir()
    (tmp_path / "src" / "a.c").write_text("int a(int x) { return x * 3; }\n")
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    r1 = run([ccfarm_exe(), "gcc", "-g", "-MD", "-c", "src/a.c", "-o", "obj/a.o"], tmp_path, env)
    assert r1.returncode == 0 and b"compiled on" in r1.stderr, r1.stderr
    r2 = run([ccfarm_exe(), "gcc", "-g", "-c", "src/a.c"], tmp_path, env)
    assert r2.returncode == 0 and b"compiled on" in r2.stderr, r2.stderr
    remote_obj, remote_dep = (
        (tmp_path / "obj/a.o").read_bytes(),
        (tmp_path / "obj/a.d").read_bytes(),
    )
    remote_noo = (tmp_path / "a.o").read_bytes()
    assert run(["gcc", "-g", "-MD", "-c", "src/a.c", "-o", "obj/a.o"], tmp_path).returncode == 0
    assert run(["gcc", "-g", "-c", "src/a.c"], tmp_path).returncode == 0
    assert (tmp_path / "obj/a.o").read_bytes() == remote_obj
    assert (tmp_path / "obj/a.d").read_bytes() == remote_dep
    assert (tmp_path / "a.o").read_bytes() == remote_noo


def test_gcc_predefines_survive_nostdinc(tmp_path: Path, ccfarmd, client_env) -> None:
    """-nostdinc drops the implicit stdc-predef.h; the remote compile must not."""
    (tmp_path / "iso.c").write_text(
        "#ifdef __STDC_ISO_10646__\nint iso = __STDC_ISO_10646__;\n#else\nint iso = 0;\n#endif\n"
    )
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    remote = run([ccfarm_exe(), "gcc", "-g", "-c", "iso.c", "-o", "remote.o"], tmp_path, env)
    assert remote.returncode == 0 and b"compiled on" in remote.stderr
    run(["gcc", "-g", "-c", "iso.c", "-o", "local.o"], tmp_path)
    assert (tmp_path / "remote.o").read_bytes() == (tmp_path / "local.o").read_bytes()
