"""A job's private temporary directory, removed when the job ends.

Layout: `<ws>/in.<ext>` (versions 1/2), `<ws>/root/<client paths>` (version
3 and ccfarm), `<ws>/out.o`, `<ws>/out.d`. Files a client sends are written
only below the root and never through a symbolic link, whatever the names
and links in the request say.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from ccfarm.errors import RemoteProtocolError


class Workspace:
    def __init__(self, parent: str | None = None) -> None:
        self.path = tempfile.mkdtemp(prefix="ccfarmd-", dir=parent)
        self.root = os.path.join(self.path, "root")
        self.output = os.path.join(self.path, "out.o")
        self.deps = os.path.join(self.path, "out.d")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def write_input(self, suffix: str, data: bytes) -> str:
        path = os.path.join(self.path, "in" + suffix)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # -- version 3: mirror the client's files below the root -------------------

    def _parent_of(self, name: bytes) -> tuple[str, str]:
        """Create the directories of client path `name` below the root.

        Returns (parent directory, last component). Refuses `..`, empty
        names and any existing symbolic link on the way.
        """
        parts = [p for p in os.fsdecode(name).split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise RemoteProtocolError(f"refused path {name!r}")
        current = self.root
        os.makedirs(current, exist_ok=True)
        for part in parts[:-1]:
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise RemoteProtocolError(f"refused path {name!r}: crosses a link or file")
        return current, parts[-1]

    def add_file(self, name: bytes, data: bytes) -> None:
        parent, leaf = self._parent_of(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(os.path.join(parent, leaf), flags, 0o644)
        except FileExistsError:
            raise RemoteProtocolError(f"duplicate file {name!r}") from None
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def add_link(self, name: bytes, target: bytes) -> None:
        """A symlink; absolute targets are re-rooted, relative ones kept.

        Links may point outside the root (distcc's pump client links system
        include directories to the daemon's own); nothing is ever written
        through them (see `_parent_of`).
        """
        parent, leaf = self._parent_of(name)
        text = os.fsdecode(target)
        if text.startswith("/"):
            text = self.root + text
        try:
            os.symlink(text, os.path.join(parent, leaf))
        except FileExistsError:
            raise RemoteProtocolError(f"duplicate file {name!r}") from None

    def client_dir(self, cwd: bytes) -> str:
        """The mirror of the client's working directory, created if needed."""
        if not cwd.strip(b"/"):
            os.makedirs(self.root, exist_ok=True)
            return self.root
        parent, leaf = self._parent_of(cwd)
        path = os.path.join(parent, leaf)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path)
        else:
            if not stat.S_ISDIR(st.st_mode):
                raise RemoteProtocolError("client directory is not a directory")
        return path
