"""ccfarm -> ccfarmd on a real code base: objects, debug info, .d files and
diagnostics are byte-identical to a local compile."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ccfarm_exe, copy_tree, run

FLAG_SETS = {
    "O2": ["-O2"],
    "g": ["-g", "-O1"],
    "MD": ["-O2", "-MD"],
    "MMD-MF-MT": ["-O2", "-MMD", "-MP", "-MF", "{base}.dep", "-MT", "custom-{base}"],
}


@pytest.fixture(scope="module")
def lua_copy(lua_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(lua_root / "third-party" / "lua54", tmp_path_factory.mktemp("lua") / "lua54")


def _sources(tree: Path) -> list[str]:
    skip = {"onelua.c", "ltests.c"}
    return sorted(p.name for p in tree.glob("*.c") if p.name not in skip)


@pytest.mark.parametrize("flags", list(FLAG_SETS), ids=list(FLAG_SETS))
def test_every_lua_object_identical(flags: str, lua_copy: Path, ccfarmd, client_env) -> None:
    daemon = ccfarmd(jobs=2)
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    sources = _sources(lua_copy)
    assert len(sources) >= 30
    for name in sources:
        base = name[:-2]
        extra = [f.format(base=base) for f in FLAG_SETS[flags]]
        local = run(
            ["gcc", *extra, "-DLUA_USE_LINUX", "-c", name, "-o", f"{base}.local.o"], lua_copy
        )
        local_deps = _deps_files(lua_copy, base)
        remote = run(
            [ccfarm_exe(), "gcc", *extra, "-DLUA_USE_LINUX", "-c", name, "-o", f"{base}.remote.o"],
            lua_copy,
            env,
        )
        assert remote.returncode == local.returncode == 0, remote.stderr.decode()
        assert b"compiled on " + daemon.spec.encode() in remote.stderr
        assert (lua_copy / f"{base}.remote.o").read_bytes() == (
            lua_copy / f"{base}.local.o"
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
    for candidate in (f"{base}.local.d", f"{base}.dep"):
        path = tree / candidate
        if path.exists():
            found[candidate] = path.read_bytes()
            path.unlink()
    return found


def _assert_same_deps(tree: Path, base: str, local: dict[str, bytes]) -> None:
    for name, data in local.items():
        remote_name = name.replace(".local.", ".remote.")
        text = (tree / remote_name).read_bytes()
        assert text == data.replace(f"{base}.local.o".encode(), f"{base}.remote.o".encode())


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


@pytest.mark.parametrize("extra", [[], ["-Wall", "-Wextra"], ["-Wall", "-g"]])
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
