"""Build and install the native launcher (`launcher.c`) as the `ccfarm` command.

    python -m ccfarm.client.forkserver.launcher install [--bindir DIR] [--cc CC]

The launcher forwards each job to the fork server without starting a Python
interpreter, and runs the Python wrapper (`python -m ccfarm.client.main`)
for everything else. It is built for this interpreter and this install:
rebuild it after moving or reinstalling ccfarm (`scripts/setup.sh` does).
Without it, the `ccfarm` console script does the same, only slower to start.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig

from ccfarm.client.forkserver.wire import package_dir

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


def build(target: str, cc: str = "cc") -> None:
    """Compile the launcher for this interpreter into `target` (atomically)."""
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
        subprocess.run(argv, check=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
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
