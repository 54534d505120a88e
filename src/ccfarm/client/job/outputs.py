"""Write results the way a compiler would, but never leave a partial file."""

from __future__ import annotations

import contextlib
import os
import stat


def write_atomically(path: str, data: bytes) -> None:
    """Write to a temporary name in the same directory, then rename.

    A path that exists and is not a regular file (`/dev/null`) is written in
    place, as the compiler would.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            with open(path, "wb") as f:
                f.write(data)
            return
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.ccfarm-{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
