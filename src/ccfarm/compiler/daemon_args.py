"""Daemon-side checks and rewriting of a request's command line (pure).

A client may be hostile and build its request by hand, so the daemon checks
every argument itself against the option table (`compiler/options.py`, the
one the wrapper uses): an argument that is not `REMOTE` is refused, and so
are paths in arguments that would lead out of the job's mirror
(`job_paths.climbs_out`). The command the daemon runs names only files of
the job: its own output, its own dependency file, the mirror.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from ccfarm.compiler import options
from ccfarm.compiler.args import LocalOnly, analyse, expand_wp
from ccfarm.compiler.job_paths import SYSTEM_HEADER_DIRS, climbs_out, names_module_cache, under
from ccfarm.protocol.events import sends_files

#: roles whose operand is a path the preprocessor opens
_PATH_ROLES = (options.INCLUDE_DIR, options.INCLUDE_FILE)
#: the daemon's last word on a preprocessed job's command line
NO_SOURCE_LINES = "-fno-diagnostics-show-caret"
#: what a preprocessed source (protocols 1/2) has no use for: dropped
_PREPROCESSOR_ROLES = (
    options.INCLUDE_DIR,
    options.DEP_FLAG,
    options.DEP_FILE,
    options.DEP_TARGET,
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
    system_deps: bool  # the client asked for -MD (else -MMD: system headers left out)


def check_request_args(
    argv: Sequence[str],
    *,
    version: int,
    cwd: str | None = None,
    max_args: int = 5000,
    max_bytes: int = 1 << 20,
) -> DaemonJob | Refusal:
    """The job, or why the daemon will not run it. `cwd` is the client's
    directory (protocol 3+), the base of relative paths."""
    if len(argv) > max_args or sum(len(a) for a in argv) > max_bytes:
        return Refusal("command line too long")
    if any("\0" in arg for arg in argv):
        return Refusal("NUL byte in an argument")
    files = sends_files(version)
    # `-Wp,` options are split as the preprocessor sees them (and then run
    # so, see `analyse`); a preprocessed source has no use for them
    seen = expand_wp(argv) if files else list(argv)
    for item in options.classify(seen):
        if item.place != options.REMOTE:
            return Refusal(f"{seen[item.index]!r} is not allowed on this host: {item.why}")
    job = analyse(argv)
    if isinstance(job, LocalOnly):
        return Refusal(job.reason)
    if job.argv != tuple(argv) and not files:
        return Refusal("-Wp, options make no sense with a preprocessed source")
    base = cwd if cwd is not None and cwd.startswith("/") else "/"
    output_index = None
    for item in options.classify(job.argv):
        if item.role == options.OUTPUT:
            output_index = item.index + item.width - 1
        elif item.role == options.INCLUDE_FILE and not files:
            return Refusal(f"{item.spelling} makes no sense with a preprocessed source")
        elif files and (item.role in _PATH_ROLES or item.role == options.INPUT):
            path = item.operand or ""
            if climbs_out(base, path) or names_module_cache(path):
                return Refusal(f"{path!r} leads out of the job's directory")
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
    # include directories and dependency options are the preprocessor's:
    # with a .i they do nothing, and the daemon runs no path it did not choose
    kept = [argv[0]]
    for item in options.classify(argv):
        if item.role not in _PREPROCESSOR_ROLES:
            kept += argv[item.index : item.index + item.width]
    # gcc would read the file a line marker names to show a line under a
    # message (`# 1 "/etc/shadow"`); the client's files are not here anyway
    argv = [*kept, NO_SOURCE_LINES]
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
    """Protocol 3+: the client's files are mirrored under `root`.

    Absolute paths get the root in front (relative ones are taken from the
    mirror of the client's directory, and `check_request_args` made sure
    that none climbs out); the client's dependency options go, and the
    daemon's own `-MD -MF deps_path` comes last: the daemon reads that list
    to check what the compile read (`job_paths.prerequisites`).
    """
    argv = _with_output(job, list(job.argv), output_path)
    out = [argv[0], f"-ffile-prefix-map={root}="]
    target: str | None = None
    for item in options.classify(argv):
        arg = argv[item.index]
        operand = item.operand or ""
        if item.role == options.DEP_TARGET:
            target = operand if target is None else f"{target} {operand}"
        elif item.role in (options.DEP_FLAG, options.DEP_FILE):
            pass
        elif item.role == options.INPUT and item.index == job.source_index:
            out.append(root + arg if arg.startswith("/") else arg)
        elif item.role in _PATH_ROLES and operand.startswith("/"):
            if item.width == 2:
                out += [arg, root + operand]
            else:
                out.append(item.spelling + root + operand)
        elif item.spelling in _PREFIX_MAPS and operand.startswith("/"):
            out.append(f"{item.spelling}{root}{operand}")
        else:
            out += argv[item.index : item.index + item.width]
    out += ["-MD", "-MF", deps_path]
    return RootedCommand(out, target if target is not None else job.output, _wants_system(job))


def _wants_system(job: DaemonJob) -> bool:
    """Did the client ask for system headers in its .d (-MD), or not (-MMD)?"""
    return "-MD" in job.argv


def rewrite_deps_text(
    text: bytes, *, root: bytes, target: bytes | None, system: bool = True
) -> bytes:
    """The daemon's .d with the root removed and the client's rule target;
    without `system` (the client asked for -MMD), files in the system header
    directories are left out (the daemon always writes -MD, see
    `daemon_argv_rooted`; a user header that only a system header includes
    stays in, which make does not mind)."""
    text = text.replace(root, b"")
    head, sep, rest = text.partition(b":")
    if not sep:
        return text
    if not system:
        kept = [
            name
            for name in rest.replace(b"\\\n", b" ").split()
            if not under(
                posixpath.normpath(name.decode("utf-8", "surrogateescape")), SYSTEM_HEADER_DIRS
            )
        ]
        rest = b"".join(b" " + name for name in kept) + b"\n"
    return (target if target is not None else head) + sep + rest
