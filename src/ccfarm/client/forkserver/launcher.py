"""Build and install the native launcher (`launcher.c`) as the `ccfarm` command.

    python -m ccfarm.client.forkserver.launcher install [--bindir DIR] [--cc CC]

The launcher forwards each job to the fork server without starting a Python
interpreter, and runs the Python wrapper (`python -m ccfarm.client.main`)
for everything else. It is built for this interpreter and this install:
rebuild it after moving or reinstalling ccfarm (`scripts/setup.sh` does).
Without it, the `ccfarm` console script does the same, only slower to start.

A wheel cannot run code when it is installed, so the first `ccfarm` job
that starts a fork server builds it (`first_use`): once per install and
user, in place of the console script. If that fails, that job says so on
one line, and `ccfarm` stays the Python script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Mapping

from ccfarm.client.forkserver.wire import package_dir
from ccfarm.client.hosts.statedir import state_dir

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")


def c_string(text: str) -> str:
    """`text` as a C string literal."""
    out = []
    for byte in os.fsencode(text):
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def build(target: str, cc: str = "cc", quiet: bool = False) -> None:
    """Compile the launcher for this interpreter into `target` (atomically).

    `quiet` keeps the compiler's messages out of this process's stderr (a
    build's output) and puts them in the CalledProcessError.
    """
    tmp = f"{target}.build-{os.getpid()}"
    argv = [
        cc,
        "-O2",
        "-Wall",
        "-Wextra",
        f"-DCCFARM_PYTHON={c_string(sys.executable)}",
        f"-DCCFARM_PACKAGE={c_string(package_dir())}",
        "-o",
        tmp,
        SOURCE,
    ]
    try:
        if quiet:
            subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL)
        else:
            subprocess.run(argv, check=True)
        if os.path.exists(target):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777 | 0o111)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _console_script(argv0: str) -> str | None:
    """The Python `ccfarm` script this process runs as, or None (native, `python -m`)."""
    if os.sep not in argv0:
        return None
    path = os.path.realpath(argv0)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)  # pip's console scripts are a few lines
    except OSError:
        return None
    if not head.startswith(b"#!") or b"ccfarm.client.main" not in head:
        return None
    return path


def _reason(exc: OSError | subprocess.CalledProcessError) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"the C compiler exited {exc.returncode}"
    return str(exc)


def first_use(environ: Mapping[str, str], argv0: str) -> None:
    """Put the native launcher in place of the `ccfarm` script that runs, once.

    Called by a job that starts a fork server (not by every job). A marker
    in the state directory, made with O_EXCL, says it was tried: concurrent
    jobs of a `make -j` try once between them, and a failure is told once.
    """
    script = _console_script(argv0)
    if script is None:
        return
    import hashlib

    digest = hashlib.sha1(os.fsencode(script) + b"\0" + os.fsencode(sys.executable)).hexdigest()
    folder = state_dir(environ)
    marker = os.path.join(folder, f"native-launcher-{digest[:16]}")
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return  # tried before (or no state directory: the job matters more)
    with os.fdopen(fd, "w") as note:
        try:
            if not os.access(os.path.dirname(script), os.W_OK):
                raise OSError(f"{os.path.dirname(script)} is not writable")
            build(script, "cc", quiet=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            message = (
                f"ccfarm: note: `ccfarm` runs as a Python script, each job starts slower "
                f"(native launcher not built: {_reason(exc)}); "
                f"`{sys.executable} -m ccfarm.client.forkserver.launcher install` builds it\n"
            )
            sys.stderr.write(message)
            note.write(message)
        else:
            note.write(f"built {script}\n")


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m ccfarm.client.forkserver.launcher", description=__doc__
    )
    p.add_argument("command", choices=["install"])
    p.add_argument("--bindir", default=sysconfig.get_path("scripts"))
    p.add_argument("--cc", default=os.environ.get("CC", "cc"))
    args = p.parse_args(argv)
    target = os.path.join(args.bindir, "ccfarm")
    try:
        build(target, args.cc)
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.stderr.write(f"ccfarm: native launcher not built ({exc}); `ccfarm` stays Python\n")
        return 1
    print(f"installed the native launcher as {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
