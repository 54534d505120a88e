"""What the wrapper needs to know about a local compiler, cached on disk.

One `compiler -x LANG -E -v -` run tells the target triple and the default
system include directories; the answer is cached per compiler binary
(path, size, mtime), language and the options that move those directories.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ccfarm.compiler.args import system_include_dirs
from ccfarm.compiler.identity import parse_version_output

_DIR_OPTIONS = ("-m", "--sysroot", "-isysroot", "-nostdinc", "-stdlib", "-target", "--target",
                "-std=")


@dataclass(frozen=True)
class CompilerInfo:
    target: str
    system_dirs: tuple[str, ...]


def relevant_options(args: Sequence[str]) -> list[str]:
    return [a for a in args if a.startswith(_DIR_OPTIONS)]


def compiler_info(
    compiler_path: str, language: str, args: Sequence[str], cache_dir: str
) -> CompilerInfo:
    options = relevant_options(args)
    st = os.stat(compiler_path)
    key_text = "\0".join([compiler_path, str(st.st_size), str(st.st_mtime_ns), language, *options])
    key = hashlib.sha1(key_text.encode("utf-8", "surrogateescape")).hexdigest()
    path = os.path.join(cache_dir, f"compiler-{key}.json")
    try:
        with open(path) as f:
            data = json.load(f)
        return CompilerInfo(data["target"], tuple(data["system_dirs"]))
    except (OSError, ValueError, KeyError):
        pass
    proc = subprocess.run(
        [compiler_path, "-x", language, *options, "-E", "-v", "-"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C"}, check=False,
    )
    text = proc.stderr.decode("utf-8", "replace")
    info = CompilerInfo(parse_version_output(text).target, tuple(system_include_dirs(text)))
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump({"target": info.target, "system_dirs": list(info.system_dirs)}, f)
    os.replace(tmp, path)
    return info
