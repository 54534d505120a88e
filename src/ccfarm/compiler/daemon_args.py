"""Daemon-side checks and rewriting of a request's command line (pure).

The daemon runs the client's scanner (`args.analyse`) on what it received:
anything the client should have kept local is refused, and so is anything
that would make the compiler load code or touch files the client chose.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from ccfarm.compiler.args import (
    DEP_FLAGS,
    DEP_OPERAND,
    TAKES_OPERAND,
    LocalOnly,
    analyse,
)
from ccfarm.protocol.events import sends_files

#: options refused outright (they load code or name files on the daemon)
_FORBIDDEN_PREFIXES = (
    "-fplugin",
    "-specs",
    "--specs",
    "-B",
    "-wrapper",
    "@",
    "-iplugindir",
    "-fdump-",
    "-save-temps",
    "--save-temps",
    "-aux-info",
    "-dumpdir",
    "-dumpbase",
    "-fsanitize-blacklist",
    "-fsanitize-ignorelist",
    "-fsanitize-coverage-allowlist",
    "-fsanitize-coverage-ignorelist",
    "-fprofile-",
    "-fauto-profile",
    "-fcallgraph-info",
    "-Xassembler",
    "-Xlinker",
    "-Wl,",
    "--sysroot",
    "-isysroot",
    "-fdiagnostics-format=sarif",
    "-Xpreprocessor",
    "-Xclang",
    "-fcompare-debug",
)
#: with a preprocessed input (protocols 1/2) nothing may be read from the daemon's disk
_PREPROCESSED_FORBIDDEN = ("-include", "-imacros")
#: include-path options whose absolute operand is re-rooted (protocol 3+)
_ROOTED_OPERAND = (
    "-I",
    "-include",
    "-imacros",
    "-idirafter",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-isystem",
    "-iquote",
)
_PREFIX_MAPS = (
    "-fdebug-prefix-map=",
    "-fmacro-prefix-map=",
    "-ffile-prefix-map=",
    "-fprofile-prefix-map=",
)
_SUFFIX = {
    ".c": ".i",
    ".cc": ".ii",
    ".cpp": ".ii",
    ".cxx": ".ii",
    ".cp": ".ii",
    ".c++": ".ii",
    ".C": ".ii",
    ".ii": ".ii",
    ".i": ".i",
    ".m": ".mi",
    ".mi": ".mi",
    ".mm": ".mii",
    ".M": ".mii",
    ".mii": ".mii",
}
_PREPROCESSED_LANGUAGE = {
    "c": "cpp-output",
    "c++": "c++-cpp-output",
    "objective-c": "objective-c-cpp-output",
    "objective-c++": "objective-c++-cpp-output",
}


@dataclass(frozen=True)
class Refusal:
    reason: str


@dataclass(frozen=True)
class DaemonJob:
    argv: tuple[str, ...]
    source_index: int
    output_index: int | None  # index of the -o operand (or the -oFILE argument)
    output: str  # the client's output name
    mode: str
    language: str
    input_suffix: str


@dataclass(frozen=True)
class RootedCommand:
    argv: list[str]
    dep_target: str  # the rule target for the .d reply (client's name)


def check_request_args(
    argv: Sequence[str], *, version: int, max_args: int = 5000, max_bytes: int = 1 << 20
) -> DaemonJob | Refusal:
    if len(argv) > max_args or sum(len(a) for a in argv) > max_bytes:
        return Refusal("command line too long")
    for arg in argv[1:]:
        if arg.startswith(_FORBIDDEN_PREFIXES):
            return Refusal(f"{arg!r} is not allowed on this host")
        if "\0" in arg:
            return Refusal("NUL byte in an argument")
        if not sends_files(version) and arg.startswith(_PREPROCESSED_FORBIDDEN):
            return Refusal(f"{arg!r} makes no sense with a preprocessed source")
    job = analyse(argv)
    if isinstance(job, LocalOnly):
        return Refusal(job.reason)
    if job.argv != tuple(argv) and not sends_files(version):
        return Refusal("-Wp, options make no sense with a preprocessed source")
    output_index = None
    for i, arg in enumerate(job.argv):
        if arg == "-o":
            output_index = i + 1
        elif arg.startswith("-o") and len(arg) > 2:
            output_index = i
        elif arg in TAKES_OPERAND:
            continue
    suffix = _SUFFIX.get(posixpath.splitext(job.source)[1], ".tmp")
    return DaemonJob(
        job.argv, job.source_index, output_index, job.output, job.mode, job.language, suffix
    )


def _with_output(job: DaemonJob, argv: list[str], output_path: str) -> list[str]:
    if job.output_index is None:
        return [*argv, "-o", output_path]
    if argv[job.output_index].startswith("-o") and job.argv[job.output_index - 1] != "-o":
        argv[job.output_index] = "-o" + output_path
    else:
        argv[job.output_index] = output_path
    return argv


def daemon_argv_preprocessed(job: DaemonJob, input_path: str, output_path: str) -> list[str]:
    """Protocols 1/2: compile the received .i into `output_path`."""
    argv = list(job.argv)
    argv[job.source_index] = input_path
    argv = _with_output(job, argv, output_path)
    # an explicit `-x c` would make gcc preprocess the .i again
    for i, arg in enumerate(argv[:-1]):
        if arg == "-x" and argv[i + 1] in _PREPROCESSED_LANGUAGE:
            argv[i + 1] = _PREPROCESSED_LANGUAGE[argv[i + 1]]
        elif arg.startswith("-x") and arg[2:] in _PREPROCESSED_LANGUAGE:
            argv[i] = "-x" + _PREPROCESSED_LANGUAGE[arg[2:]]
    return argv


def daemon_argv_rooted(
    job: DaemonJob, *, root: str, output_path: str, deps_path: str
) -> RootedCommand:
    """Protocol 3+: the client's files are mirrored under `root`."""
    argv = _with_output(job, list(job.argv), output_path)
    out = [argv[0], f"-ffile-prefix-map={root}="]
    target: str | None = None
    system_deps = False
    i = 1
    while i < len(argv):
        arg = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if arg in DEP_OPERAND and nxt is not None:
            if arg in ("-MT", "-MQ"):
                target = nxt if target is None else f"{target} {nxt}"
            i += 2
            continue
        if arg[:3] in DEP_OPERAND and len(arg) > 3:
            if arg[:3] in ("-MT", "-MQ"):
                target = arg[3:] if target is None else f"{target} {arg[3:]}"
            i += 1
            continue
        if arg in DEP_FLAGS:
            system_deps = system_deps or arg == "-MD"
            i += 1
            continue
        if i == job.source_index and arg.startswith("/"):
            out.append(root + arg)
        elif arg in _ROOTED_OPERAND and nxt is not None:
            out += [arg, root + nxt if nxt.startswith("/") else nxt]
            i += 2
            continue
        elif arg.startswith(_ROOTED_OPERAND) and _attached_absolute(arg):
            flag = next(
                p for p in sorted(_ROOTED_OPERAND, key=len, reverse=True) if arg.startswith(p)
            )
            out.append(flag + root + arg[len(flag) :])
        elif arg.startswith(_PREFIX_MAPS) and arg.partition("=")[2].startswith("/"):
            flag, _, mapping = arg.partition("=")
            out.append(f"{flag}={root}{mapping}")
        else:
            out.append(arg)
            if arg in TAKES_OPERAND and nxt is not None:
                out.append(nxt)
                i += 1
        i += 1
    out += ["-MD" if system_deps else "-MMD", "-MF", deps_path]
    return RootedCommand(out, target if target is not None else job.output)


def _attached_absolute(arg: str) -> bool:
    for flag in sorted(_ROOTED_OPERAND, key=len, reverse=True):
        if arg.startswith(flag):
            return arg[len(flag) :].startswith("/")
    return False


def rewrite_deps_text(text: bytes, *, root: bytes, target: bytes | None) -> bytes:
    """The daemon's .d with the root removed and the client's rule target."""
    text = text.replace(root, b"")
    if target is None:
        return text
    head, sep, rest = text.partition(b":")
    return target + sep + rest if sep else text
