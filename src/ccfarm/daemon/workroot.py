"""The daemon's record of its job workspaces, cleaned on every way out.

Workspaces stay where they always were (`$TMPDIR/ccfarmd-XXXXXXXX`: the
length of that path shows in what gcc writes, such as where it wraps the
lines of a dependency file, so it matches distccd's). Each one has a
symbolic link to it in `$TMPDIR/ccfarmd-<listen>-<port>`, the daemon's own
directory, made at start (mode 0700) and locked (`flock`) while the daemon
runs: what a daemon killed with SIGKILL left is removed by the next one on
the same address and port, and a second daemon never cleans a live one's
jobs (it takes a fresh directory). The link of a workspace made ahead of
its job (the warm pool's) is named `ready.ccfarmd-XXXXXXXX` until a job
takes it. A link costs no file descriptor; a
workspace that cannot be removed now (no descriptors left: the removal
itself needs some) is removed later, at the latest at exit, which removes
the directory too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile

log = logging.getLogger("ccfarmd")
#: seconds between attempts at removing what could not be removed
SWEEP_DELAY = 2.0
#: the prefix of the links to workspaces made ahead of their job (`daemon/pool.py`)
READY = "ready."


class WorkRoot:
    def __init__(self, path: str, lock_fd: int | None) -> None:
        self.path = path
        self._lock_fd = lock_fd
        #: workspaces whose removal failed, to try again
        self.stale: set[str] = set()
        self._sweeping = False

    @classmethod
    def claim(cls, parent: str | None, name: str) -> WorkRoot:
        """The directory `name` below `parent` ($TMPDIR), emptied of what an
        earlier daemon left; a fresh one if it is in use or not ours."""
        parent = parent or tempfile.gettempdir()
        path = os.path.join(parent, name)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        fd = _lock(path)
        if fd is None:
            fresh = tempfile.mkdtemp(prefix=f"{name}.", dir=parent)
            log.warning("%s is in use or not this user's: job directories go to %s", path, fresh)
            return cls(fresh, _lock(fresh))
        root = cls(path, fd)
        left = os.listdir(path)
        for entry in left:
            link = os.path.join(path, entry)
            target = _target(link, parent)
            if target is not None:
                _rmtree(target)
            with contextlib.suppress(OSError):
                os.unlink(link) if os.path.islink(link) else shutil.rmtree(link)
        ready = len([e for e in left if e.startswith(READY)])
        if left:
            log.info(
                "removed %d job director(ies) an earlier daemon left (and %d ready one(s))",
                len(left) - ready,
                ready,
            )
        return root

    def track(self, workspace: str, *, ready: bool = False) -> None:
        """Note a new workspace (a link to it), so that no way out leaves it;
        `ready`: made ahead of its job (`handed` when a job takes it)."""
        name = (READY if ready else "") + os.path.basename(workspace)
        with contextlib.suppress(OSError):
            os.symlink(workspace, os.path.join(self.path, name))

    def handed(self, workspace: str) -> None:
        """A ready workspace is a job's now."""
        name = os.path.basename(workspace)
        with contextlib.suppress(OSError):
            os.rename(os.path.join(self.path, READY + name), os.path.join(self.path, name))

    def remove(self, path: str) -> bool:
        """Remove a workspace (and any that failed before); False if it stays."""
        self.sweep()
        if self._remove(path):
            return True
        self.stale.add(path)
        return False

    def _remove(self, path: str) -> bool:
        if not _rmtree(path):
            return False
        for name in (os.path.basename(path), READY + os.path.basename(path)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.path, name))
        return True

    def sweep(self) -> bool:
        """Try the failed removals again; True when none is left."""
        for old in list(self.stale):
            if self._remove(old):
                self.stale.discard(old)
        return not self.stale

    def sweep_later(self, loop: asyncio.AbstractEventLoop, delay: float = SWEEP_DELAY) -> None:
        """Sweep on `loop` after `delay` seconds, and again until nothing is left
        (once armed, further calls add nothing)."""
        if self._sweeping:
            return
        self._sweeping = True

        def sweep() -> None:
            self._sweeping = False
            if not self.sweep():
                self.sweep_later(loop, delay)

        loop.call_later(delay, sweep)

    def close(self) -> None:
        """At exit: remove every workspace still there, and the directory."""
        parent = os.path.dirname(self.path)
        for entry in os.listdir(self.path):
            target = _target(os.path.join(self.path, entry), parent)
            if target is not None:
                _rmtree(target)
        _rmtree(self.path)
        self.stale.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _lock(path: str) -> int | None:
    """A descriptor holding an exclusive lock on directory `path`, or None
    when it is a link, another user's, open to others, or locked already."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        os.close(fd)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _target(link: str, parent: str) -> str | None:
    """The workspace a link of ours names, if it is one: a directory
    `ccfarmd-*` right in `parent`, of this user, not itself a link."""
    try:
        target = os.readlink(link)
    except OSError:
        return None
    if os.path.dirname(target) != parent or not os.path.basename(target).startswith("ccfarmd-"):
        return None
    try:
        st = os.lstat(target)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return None
    return target


def _rmtree(path: str) -> bool:
    """True when `path` is gone (removed now, or not there)."""
    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)
