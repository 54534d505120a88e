"""Real C code bases, fetched by package name (never committed).

Lua's sources ship inside the `lupa` sdist on PyPI (several Lua versions
under `third-party/`). We download that sdist with pip, unpack the Lua
trees and write our own small Makefile for each (Lua's own development
makefile wants `-march=native` and readline).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass

LUPA_VERSION = "2.8"
LUPA_SDIST = f"lupa-{LUPA_VERSION}.tar.gz"
LUPA_SHA256 = "d8022641b9ec8ecf2c5ecbe9f47e5a70e0b87c4b5ae921b92cb02a638e0acd08"
LUA_TREES = ("lua54", "lua53", "lua55", "lua51", "lua52")
#: files that are not part of the library or interpreter build
_SKIP = {"onelua.c", "ltests.c", "luac.c", "lua.c", "print.c", "lbitlib.c.orig"}


@dataclass(frozen=True)
class LuaTree:
    name: str
    path: str
    sources: tuple[str, ...]  # library sources (file names in `path`)


def default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ccfarm", "codebases")


def fetch_lupa(cache: str | None = None) -> str:
    """Download and unpack the lupa sdist once; return the unpacked directory."""
    cache = cache or default_cache()
    os.makedirs(cache, exist_ok=True)
    unpacked = glob.glob(os.path.join(cache, "lupa-*", "third-party"))
    if unpacked:
        return os.path.dirname(unpacked[0])
    archive = os.path.join(cache, LUPA_SDIST)
    if not os.path.exists(archive):
        _download_sdist(archive)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if "/third-party/lua5" in m.name]
        tar.extractall(cache, members=members, filter="data")
    return os.path.dirname(glob.glob(os.path.join(cache, "lupa-*", "third-party"))[0])


def _download_sdist(archive: str) -> None:
    """The sdist by its name from the package index (PEP 691), checked against
    its known digest. `pip download` would first build the package's metadata,
    which compiles Cython from source: minutes on a fresh machine."""
    import hashlib
    import json
    import urllib.request

    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    try:
        request = urllib.request.Request(f"{index}/lupa/", headers=accept)
        with urllib.request.urlopen(request, timeout=60) as reply:
            files = json.load(reply)["files"]
        (url,) = [f["url"] for f in files if f["filename"] == LUPA_SDIST]
        with urllib.request.urlopen(url, timeout=300) as reply:
            data = reply.read()
    except (OSError, ValueError, KeyError) as exc:  # an index without PEP 691: pip's way
        sys.stderr.write(f"note: {index} did not give {LUPA_SDIST} ({exc}); using pip\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
            + ["--no-binary", "lupa", "-d", os.path.dirname(archive), f"lupa=={LUPA_VERSION}"],
            check=True,
        )
        with open(archive, "rb") as downloaded:
            data = downloaded.read()
    if hashlib.sha256(data).hexdigest() != LUPA_SHA256:
        raise RuntimeError(f"{LUPA_SDIST}: unexpected SHA-256 digest; not using it")
    tmp = f"{archive}.{os.getpid()}"
    with open(tmp, "wb") as out:
        out.write(data)
    os.replace(tmp, archive)


def lua_trees(root: str, names: tuple[str, ...] = LUA_TREES) -> list[LuaTree]:
    trees = []
    for name in names:
        path = os.path.join(root, "third-party", name)
        if not os.path.isdir(path):
            continue
        sources = sorted(
            f
            for f in os.listdir(path)
            if f.endswith(".c") and f not in _SKIP and os.path.isfile(os.path.join(path, f))
        )
        trees.append(LuaTree(name, path, tuple(sources)))
    return trees


MAKEFILE = """\
# Written by ccfarm's demo: builds the Lua library and interpreter.
CC ?= cc
CFLAGS ?= -O2 -Wall
CPPFLAGS += -DLUA_USE_LINUX
OBJS = {objs}

all: lua

lua: lua.o liblua.a
\t$(CC) -o $@ lua.o liblua.a -lm -ldl

liblua.a: $(OBJS)
\tar rcs $@ $(OBJS)

%.o: %.c
\t$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

clean:
\trm -f lua lua.o liblua.a $(OBJS) *.d
"""


def prepare_build(tree: LuaTree, build_dir: str) -> str:
    """Copy a tree's sources into `build_dir` with our Makefile; return the dir."""
    import shutil

    if os.path.isdir(build_dir):
        shutil.rmtree(build_dir)
    shutil.copytree(
        tree.path,
        build_dir,
        ignore=shutil.ignore_patterns(
            "testes",
            "manual",
            ".git",
            "*.o",
            "makefile",  # make would prefer "makefile"
        ),
    )
    objs = " ".join(s[:-2] + ".o" for s in tree.sources)
    with open(os.path.join(build_dir, "Makefile"), "w") as f:
        f.write(MAKEFILE.format(objs=objs))
    return build_dir
