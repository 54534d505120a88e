"""The command lines ccfarm runs for a job (pure: no I/O): the local
preprocessor's, the remote compile's for each way (the preprocessed text, or
the sources with the compiler's own include directories), and whether the
preprocessed way gives the local object exactly.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence

from ccfarm.compiler.args import DEP_FLAGS, DEP_OPERAND, CompileJob, without_options

_OUTPUT_AND_DEPS = frozenset({"-o", *DEP_OPERAND})
_DEP_ATTACHED = ("-MF", "-MT", "-MQ")


def _strip_output_and_deps(job: CompileJob, extra_flags: frozenset[str] = frozenset()) -> list[str]:
    """argv[1:] without -o (both forms), dependency options and `extra_flags`."""
    return without_options(
        job.argv, DEP_FLAGS | extra_flags, _OUTPUT_AND_DEPS, (*_DEP_ATTACHED, "-o")
    )


def local_preprocess_argv(job: CompileJob, i_path: str) -> list[str]:
    """Preprocess to `i_path`; also write the user's .d exactly as the compile would."""
    argv = [job.argv[0], *_strip_output_and_deps(job, frozenset({"-c", "-S"}))]
    if job.deps is not None:
        d = job.deps
        argv += ["-MD" if d.system else "-MMD", "-MF", d.file]
        for target, quoted in d.targets:
            argv += ["-MQ" if quoted else "-MT", target]
        if d.phony:
            argv.append("-MP")
        if d.missing_ok:
            argv.append("-MG")
    return [*argv, "-E", "-o", i_path]


_STRIP_OPERAND = frozenset(
    {
        "-D",
        "-I",
        "-U",
        "-L",
        "-l",
        "-MF",
        "-MT",
        "-MQ",
        "-include",
        "-imacros",
        "-iprefix",
        "-iwithprefix",
        "-isystem",
        "-iwithprefixbefore",
        "-idirafter",
    }
)
_STRIP_PREFIX = (
    "-Wp,",
    "-Wl,",
    "-D",
    "-U",
    "-I",
    "-l",
    "-L",
    "-MF",
    "-MT",
    "-MQ",
    "-isystem",
    "-stdlib",
)
_STRIP_EXACT = frozenset({"-undef", "-nostdinc", "-nostdinc++", "-MD", "-MMD", "-MG", "-MP"})


def remote_argv_stripped(job: CompileJob) -> list[str]:
    """Protocols 1/2: the daemon gets a .i, so preprocessor options go (distcc's rule)."""
    rest = without_options(job.argv, _STRIP_EXACT, _STRIP_OPERAND, _STRIP_PREFIX)
    argv = [job.argv[0], *rest]
    if not job.output_given:
        argv += ["-o", job.output]
    return argv


def remote_argv_full(
    job: CompileJob, *, system_dirs: Sequence[str] | None, extra: Sequence[str] = ()
) -> list[str]:
    """Protocol 3 / ccfarm: the daemon preprocesses, so keep everything but .d options."""
    rest = without_options(job.argv, DEP_FLAGS, DEP_OPERAND, _DEP_ATTACHED)
    argv = [job.argv[0], *rest]
    if not job.output_given:
        argv += ["-o", job.output]
    if system_dirs is not None:
        argv.append("-nostdinc")
        for directory in system_dirs:
            argv += ["-isystem", directory]
    return [*argv, *extra]


def rewrite_compiler_name(name: str, *, which: Callable[[str], str | None], target: str) -> str:
    """distcc's cross-name rule: `gcc` becomes `<target>-gcc` when that exists."""
    base = posixpath.basename(name)
    is_gnu = base in ("gcc", "g++") or base.startswith(("gcc-", "g++-"))
    if not is_gnu or not target:
        return base
    qualified = f"{target}-{base}"
    return qualified if which(qualified) else base


def system_include_dirs(verbose_stderr: str) -> list[str]:
    """Default `#include <...>` directories from `cc -E -v` output."""
    dirs: list[str] = []
    inside = False
    for line in verbose_stderr.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside and line.startswith(" "):
            path = line.strip().removesuffix(" (framework directory)")
            dirs.append(posixpath.normpath(path))
    return dirs


#: options under which compiling the preprocessed text can give other bytes
#: than a local compile: they record command lines or source locations
#: (columns move when macros are expanded), or re-read the input's charset
_LOCATION_SENSITIVE = (
    "-g",
    "-fsanitize",
    "-fopenmp",
    "-fopenacc",
    "-frecord-gcc-switches",
    "-finput-charset",
    "-fanalyzer",
    "-x",
)


def preprocessed_is_exact(job: CompileJob) -> bool:
    """Does compiling the local preprocessor's output give the local object?

    Checked with gcc 12 over real code (docs/design.md): yes when optimising
    and without debug info. At -O0 and -Og gcc places no-ops by source
    location, and debug info records columns, both of which macro expansion
    moves. The caller still checks the text (`mentions_location_builtins`)
    and accepts the result only when neither compile said anything.
    """
    if job.mode != "-c" or job.preprocessed or job.language not in ("c", "c++"):
        return False
    level = None
    for arg in job.argv[1:]:
        if arg.startswith(_LOCATION_SENSITIVE) and arg != "-g0":
            return False
        if arg.startswith("-O"):
            level = arg[2:]
    return level is not None and level not in ("0", "g")


def mentions_location_builtins(text: bytes) -> bool:
    """Does preprocessed code ask for its own column (C++20 source_location)?"""
    return b"__builtin_COLUMN" in text or b"__builtin_source_location" in text


def reads_predefines(preprocessed: bytes) -> bool:
    """Did the local compile include gcc's implicit `stdc-predef.h`?"""
    from ccfarm.compiler.linemarkers import included_files

    return any(n.endswith(b"/stdc-predef.h") for n in included_files(preprocessed[:65536]))
