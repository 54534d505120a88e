"""Which paths a protocol-3 job may name and read (pure: strings only).

The daemon mirrors the client's files under a private root and runs the
compiler in the mirror of the client's directory. Nothing a request names may
lead out of that mirror: paths in arguments and link targets are checked
here by their words (`climbs_out`), and after the compile every file the
compiler says it read (its `-MD` list, `prerequisites`) must be inside the
mirror or in the host's system header directories (`read_allowed`, on paths
the shell has resolved with `realpath`). The one link allowed to leave the
mirror is distcc's pump link of a system include directory to the same
directory of the host (`is_system_link`).
"""

from __future__ import annotations

import posixpath

#: where a compile may read the host's own headers (the compiler's default
#: include directories on Debian, Fedora and the like; distcc-pump links them)
SYSTEM_HEADER_DIRS = (
    "/usr/include",
    "/usr/local/include",
    "/usr/lib/gcc",
    "/usr/lib/gcc-cross",
    "/usr/lib64/gcc",
    "/usr/lib/clang",
    "/usr/lib64/clang",
)
#: a directory name that C++ modules write into; never accepted in a request
MODULE_CACHE = "gcm.cache"


def climbs_out(base: str, path: str) -> bool:
    """Does `path`, taken from directory `base` (absolute), go above `/`?

    Word by word, as the kernel walks it inside a mirror with no links:
    `/a/../..` and, from `/a`, `../../x` climb out; `/a/../b` does not.
    """
    depth = 0 if path.startswith("/") else _depth(base)
    for part in path.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


def _depth(path: str) -> int:
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth = max(0, depth - 1)
        elif part not in ("", "."):
            depth += 1
    return depth


def names_module_cache(name: str) -> bool:
    return MODULE_CACHE in name.split("/")


def under(path: str, directories: tuple[str, ...]) -> bool:
    """Is normalised absolute `path` one of `directories` or below one?"""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in directories)


def is_system_link(name: str, target: str, mirror_depth: int) -> bool:
    """distcc-pump's link of a system include directory to the host's own.

    `name` is the link's client path (`/usr/include`), `target` the link's
    text (`../../../..../usr/include`), `mirror_depth` how many directories
    the mirror's root is below the host's `/`. Allowed only when the target
    lands on the host's directory of the same name, a system one.
    """
    if not target or target.startswith("/"):
        return False
    here = posixpath.dirname(posixpath.normpath("/" + name.lstrip("/")))
    climbs = 0
    for part in target.split("/"):
        if part == "..":
            climbs += 1
        else:
            break
    if climbs < _depth(here) + mirror_depth:
        return False
    rest = target.split("/")[climbs:]
    if ".." in rest:
        return False
    landed = posixpath.normpath("/" + "/".join(rest))
    return landed == posixpath.normpath("/" + name.lstrip("/")) and under(
        landed, SYSTEM_HEADER_DIRS
    )


def prerequisites(deps: bytes, target: str) -> list[str] | None:
    """The files of the one rule gcc wrote for `target` with `-MD`, or None
    when the text is not plainly that (escapes, `$`): a name
    with a space or a backslash cannot be told apart from two names, so the
    daemon does not guess."""
    text = deps.decode("utf-8", "surrogateescape")
    head = target + ":"
    if not text.startswith(head):
        return None
    rest = text[len(head) :].replace("\\\n", " ")
    if "\\" in rest or "$" in rest:
        return None
    return rest.split()


def read_allowed(resolved: str, root: str, system_dirs: tuple[str, ...]) -> bool:
    """May the compile have read `resolved` (a realpath)?"""
    return under(resolved, (root,)) or under(resolved, system_dirs)


def message_paths(messages: bytes) -> list[str]:
    """Every name a compiler message may give as a location (`FILE:LINE:`).

    gcc shows the source line under a message by reading the file the
    location names, and a line marker (`# 1 "/etc/shadow"`, `#line`, also
    built by macros) can name any file, so the daemon checks those names
    too. A name may itself hold `:12:`, so every prefix before a `:LINE:`
    counts: the daemon refuses if any of them is a file outside the job.
    """
    names: list[str] = []
    text = messages.decode("utf-8", "surrogateescape")
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        for lead in ("In file included from ", "from "):
            if stripped.startswith(lead):
                stripped = stripped[len(lead) :]
                break
        start = 0
        while (colon := stripped.find(":", start)) != -1:
            end = colon + 1
            while end < len(stripped) and stripped[end].isdigit():
                end += 1
            if end > colon + 1 and end < len(stripped) and stripped[end] in ":,":
                names.append(stripped[:colon])
            start = colon + 1
    return [n for n in dict.fromkeys(names) if n]
