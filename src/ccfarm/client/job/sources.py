"""The files a daemon needs to preprocess a job itself (protocol 3 / ccfarm), read.

Which files they are is the plan's (`plan.files_to_send`, from the local
preprocessor's line markers); this reads each one's content. A file that
cannot be read (a pseudo name) is left out: the compile decides.
"""

from __future__ import annotations

import os

from ccfarm.client.job.plan import DIRECTORY_MARKER, files_to_send
from ccfarm.compiler.args import CompileJob
from ccfarm.protocol import FileEntry


def read_files(files: list[tuple[str, bool]]) -> list[FileEntry]:
    """An entry per (path, is an empty directory marker) that exists, with its content."""
    entries: list[FileEntry] = []
    for path, marker in files:
        if marker:
            entries.append(FileEntry(os.fsencode(path), b""))
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue  # not a real file (e.g. a pseudo name); the compile decides
        entries.append(FileEntry(os.fsencode(path), data))
    return entries


def entries(preprocessed: bytes, job: CompileJob, cwd: str) -> list[FileEntry]:
    return read_files(files_to_send(preprocessed, job, cwd))


__all__ = ["DIRECTORY_MARKER", "entries", "read_files"]
