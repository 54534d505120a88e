"""The daemon's compiler allow-list.

A request names its compiler in argv[0]. The daemon runs it only if that
name is on the allow-list, and then runs the program of that name found on
its own search path (never a path the client chose). By default the list
holds gcc, g++, cc, c++, clang, clang++ and their versioned and
target-prefixed names (x86_64-linux-gnu-gcc-12, ...) found on the search
path or in distcc's masquerade directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_NAME_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*-)?(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+|c89-gcc|c99-gcc)"
    r"(?:-[0-9][0-9.]*)?$"
)
MASQUERADE_DIRS = ("/usr/lib/distcc", "/usr/lib/ccache")
_TRUSTED_PREFIXES = ("/usr/bin/", "/bin/")


@dataclass(frozen=True)
class CompilerAllowList:
    names: frozenset[str]
    search_path: tuple[str, ...]

    @classmethod
    def discover(
        cls,
        search_path: Sequence[str],
        extra: Iterable[str] = (),
        only: Iterable[str] | None = None,
    ) -> CompilerAllowList:
        """Scan `search_path` and the masquerade dirs, or take `only` verbatim."""
        if only is not None:
            return cls(frozenset(only) | frozenset(extra), tuple(search_path))
        found: set[str] = set(extra)
        for directory in (*search_path, *MASQUERADE_DIRS):
            try:
                entries = os.listdir(directory)
            except OSError:
                continue
            found.update(e for e in entries if DEFAULT_NAME_PATTERN.match(e))
        return cls(frozenset(found), tuple(search_path))

    def check(self, argv0: str) -> str:
        """The bare compiler name for argv0, or raise ValueError with a reason."""
        name = argv0
        for prefix in _TRUSTED_PREFIXES:
            if name.lower().startswith(prefix):
                name = name[len(prefix) :]
                break
        if "/" in name:
            raise ValueError(f"compiler {argv0!r} must not be a path")
        if name not in self.names:
            raise ValueError(f"compiler {argv0!r} is not on this host's allow-list")
        return name

    def resolve(self, name: str) -> str:
        """Absolute path of the real compiler `name` (skipping masquerade links)."""
        for directory in self.search_path:
            if directory in MASQUERADE_DIRS or not directory.startswith("/"):
                continue
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                target = os.path.basename(os.path.realpath(candidate))
                if target.startswith(("distcc", "ccfarm", "ccache")):
                    continue
                return candidate
        raise ValueError(f"compiler {name!r} is allowed but not installed on this host")
