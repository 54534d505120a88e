"""What the wrapper needs to know about a local compiler, cached on disk.

One `compiler -x LANG -E -v -` run tells the target triple and the default
system include directories; the answer is cached per compiler binary
(path, size, mtime), language and the options that move those directories.
The cache file repeats its full key, so a name collision is only a miss.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Sequence

from ccfarm._record import record
from ccfarm.model import CompilerIdentity

_DIR_OPTIONS = (
    "-m",
    "--sysroot",
    "-isysroot",
    "-nostdinc",
    "-stdlib",
    "-target",
    "--target",
    "-std=",
)


@record
class CompilerInfo:
    identity: CompilerIdentity
    system_dirs: tuple[str, ...]


def relevant_options(args: Sequence[str]) -> list[str]:
    return [a for a in args if a.startswith(_DIR_OPTIONS)]


def compiler_info(
    compiler_path: str, language: str, args: Sequence[str], cache_dir: str
) -> CompilerInfo:
    options = relevant_options(args)
    st = os.stat(compiler_path)
    key = "\0".join([compiler_path, str(st.st_size), str(st.st_mtime_ns), language, *options])
    path = os.path.join(cache_dir, f"compiler-{zlib.crc32(key.encode('utf-8', 'replace')):08x}")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().split("\n")
        if lines[0] == key.replace("\n", " "):
            identity = CompilerIdentity.parse(lines[1])
            return CompilerInfo(identity, tuple(x for x in lines[2:] if x))
    except (OSError, IndexError, ValueError):
        pass
    info = _probe(compiler_path, language, options)
    tmp = f"{path}.{os.getpid()}"
    try:  # best effort: an unwritable state directory only costs the probe next time
        os.makedirs(cache_dir, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            lines = [key.replace("\n", " "), info.identity.text(), *info.system_dirs]
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return info


def _probe(compiler_path: str, language: str, options: list[str]) -> CompilerInfo:
    import subprocess  # these only on a cache miss (start-up time)

    from ccfarm.compiler.commands import system_include_dirs
    from ccfarm.compiler.identity import parse_version_output

    proc = subprocess.run(
        [compiler_path, "-x", language, *options, "-E", "-v", "-"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C"},
        check=False,
    )
    text = proc.stderr.decode("utf-8", "replace")
    return CompilerInfo(parse_version_output(text), tuple(system_include_dirs(text)))
