"""The files a daemon needs to preprocess a job itself (protocol 3 / ccfarm).

The local preprocessor already told us every file it opened (its line
markers); we send each one, with its content, at its absolute client path.
Files read by `-imacros` leave no line marker, so they are added from the
arguments. Where a path climbs with `..` through a directory, that
directory must exist on the daemon: an empty marker file makes it.
"""

from __future__ import annotations

import os

from ccfarm.compiler.args import CompileJob
from ccfarm.compiler.linemarkers import included_files
from ccfarm.protocol import FileEntry

DIRECTORY_MARKER = ".ccfarm-dir"


def reads_predefines(preprocessed: bytes) -> bool:
    """Did the local compile include gcc's implicit `stdc-predef.h`?"""
    return any(n.endswith(b"/stdc-predef.h") for n in included_files(preprocessed[:65536]))


def _imacros(argv: tuple[str, ...]) -> list[str]:
    found = []
    for i, arg in enumerate(argv):
        if arg == "-imacros" and i + 1 < len(argv):
            found.append(argv[i + 1])
    return found


def entries(preprocessed: bytes, job: CompileJob, cwd: str) -> list[FileEntry]:
    names = [os.fsdecode(n) for n in included_files(preprocessed)]
    names += _imacros(job.argv)
    seen: set[str] = set()
    files: list[FileEntry] = []
    for name in names:
        joined = os.path.join(cwd, name)
        for directory in _climbed_directories(joined):
            marker = os.path.join(directory, DIRECTORY_MARKER)
            if marker not in seen:
                seen.add(marker)
                files.append(FileEntry(os.fsencode(marker), b""))
        path = os.path.normpath(joined)
        if path in seen:
            continue
        seen.add(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue  # not a real file (e.g. a pseudo name); the compile decides
        files.append(FileEntry(os.fsencode(path), data))
    return files


def _climbed_directories(path: str) -> list[str]:
    """Directories that `..` components of `path` step out of."""
    if "/../" not in path and not path.endswith("/.."):
        return []
    parts = path.split("/")
    found = []
    for i, part in enumerate(parts):
        if part == ".." and i > 0:
            found.append(os.path.normpath("/".join(parts[:i]) or "/"))
    return found
