"""A job's private temporary directory, removed when the job ends.

Layout: `<ws>/in.<ext>` (versions 1/2), `<ws>/root/<client paths>` (version
3 and ccfarm), `<ws>/out.o`, `<ws>/out.d`. Files a client sends are written
only below the root and never through a symbolic link, whatever the names
and links in the request say. Links stay inside the root (but for
distcc-pump's links of system include directories, `job_paths`), and after a
compile `reads_outside` says whether it read anything else.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from ccfarm.compiler.job_paths import (
    SYSTEM_HEADER_DIRS,
    climbs_out,
    is_system_link,
    message_paths,
    names_module_cache,
    prerequisites,
    read_allowed,
)
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
        if not parts or ".." in parts or names_module_cache("/".join(parts)):
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
        """A symlink that stays inside the root: absolute targets are
        re-rooted, relative ones must not climb out. The one exception is
        distcc-pump's link of a system include directory to the host's own
        (`job_paths.is_system_link`). Nothing is ever written through a link
        (see `_parent_of`), and what the compile read is checked after it
        (`reads_outside`), links or not.
        """
        parent, leaf = self._parent_of(name)
        client = os.fsdecode(name)
        text = os.fsdecode(target)
        if "\0" in text or not text:
            raise RemoteProtocolError(f"refused link {name!r}")
        if text.startswith("/"):
            if climbs_out("/", text) or names_module_cache(text):
                raise RemoteProtocolError(f"refused link {name!r}: leads out of the job")
            text = self.root + text
        elif climbs_out(os.path.dirname("/" + client.strip("/")), text):
            depth = len([p for p in os.path.realpath(self.root).split("/") if p])
            if not is_system_link(client, text, depth):
                raise RemoteProtocolError(f"refused link {name!r}: leads out of the job")
        elif names_module_cache(text):
            raise RemoteProtocolError(f"refused link {name!r}")
        try:
            os.symlink(text, os.path.join(parent, leaf))
        except FileExistsError:
            raise RemoteProtocolError(f"duplicate file {name!r}") from None

    def messages_name_outside(self, messages: bytes, cwd: str) -> str | None:
        """A file outside the job and the system header directories that a
        message's location names (the compiler read it to show its line)."""
        inside = os.path.realpath(self.path)
        system = tuple(os.path.realpath(d) for d in SYSTEM_HEADER_DIRS)
        for name in message_paths(messages):
            resolved = os.path.realpath(os.path.join(cwd, name))
            if os.path.isfile(resolved) and not read_allowed(resolved, inside, system):
                return name.replace(self.root, "")
        return None

    def reads_outside(self, cwd: str) -> str | None:
        """After a protocol-3 compile: the first file it read outside the
        root and the system header directories, or a reason when the
        daemon's dependency list is missing or unclear; None when all is in.
        """
        try:
            with open(self.deps, "rb") as f:
                raw = f.read()
        except OSError:
            return "(no dependency list)"
        names = prerequisites(raw, self.output)
        if names is None:
            return "(a dependency list it cannot read)"
        root = os.path.realpath(self.root)
        system = tuple(os.path.realpath(d) for d in SYSTEM_HEADER_DIRS)
        for name in names:
            resolved = os.path.realpath(os.path.join(cwd, name))
            if not os.path.exists(resolved) or not read_allowed(resolved, root, system):
                return name.replace(self.root, "")
        return None

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
