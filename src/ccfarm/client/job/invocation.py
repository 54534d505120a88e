"""How the wrapper was called: explicit, implicit or masquerading.

ccfarm gcc -c x.c      explicit: the compiler is the first argument
ccfarm -c x.c          implicit: the compiler is `cc`
gcc -c x.c             masquerade: `gcc` is a link to ccfarm early on PATH
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ccfarm._record import record
from ccfarm.errors import CcfarmError

_SOURCE_OR_OBJECT = (
    ".c",
    ".cc",
    ".cpp",
    ".cxx",
    ".cp",
    ".c++",
    ".C",
    ".i",
    ".ii",
    ".m",
    ".mm",
    ".mi",
    ".mii",
    ".M",
    ".s",
    ".S",
    ".o",
)


@record
class Invocation:
    argv: tuple[str, ...]  # argv[0] is the compiler as the user named it
    compiler_path: str  # the real compiler to run locally (never ccfarm)


def _is_self(path: str) -> bool:
    return os.path.basename(os.path.realpath(path)).startswith("ccfarm")


def find_compiler(name: str, path_env: str, skip_dir: str | None = None) -> str | None:
    """The first `name` on PATH that is not ccfarm itself (and not in skip_dir)."""
    if "/" in name:
        return name if os.access(name, os.X_OK) and not _is_self(name) else None
    skip = os.path.realpath(skip_dir) if skip_dir else None
    for directory in path_env.split(os.pathsep):
        if not directory or (skip and os.path.realpath(directory) == skip):
            continue
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate) and not _is_self(candidate):
            return candidate
    return None


def resolve(argv: Sequence[str], env: Mapping[str, str]) -> Invocation:
    """Work out the compiler from how we were started."""
    path_env = env.get("PATH", os.defpath)
    me = os.path.basename(argv[0])
    if me.startswith("ccfarm"):
        rest = list(argv[1:])
        if not rest:
            raise CcfarmError("usage: ccfarm [COMPILER] ARGS... (see ccfarm --help)")
        first = rest[0]
        if first.startswith("-") or first.endswith(_SOURCE_OR_OBJECT):
            rest.insert(0, "cc")
        compiler, skip = rest[0], None
    else:  # masquerade: we are a link named like the compiler
        rest = [me, *argv[1:]]
        compiler = me
        skip = os.path.dirname(argv[0]) if "/" in argv[0] else None
    real = find_compiler(compiler, path_env, skip)
    if real is None:
        raise CcfarmError(f"compiler {compiler!r} not found on PATH")
    return Invocation(tuple(rest), real)
