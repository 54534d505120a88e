"""Client-side analysis of a compiler command line (pure: no I/O).

`analyse` decides whether a command can be distributed (every argument must
be `REMOTE` in the option table, `compiler/options.py`, plus distcc's rules
about the job's shape) and describes the job: source, output,
language, dependency file. `compiler/commands.py` builds the command lines
ccfarm runs for it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from ccfarm._record import record
from ccfarm.compiler import options

SOURCE_LANGUAGES = {
    ".c": "c",
    ".cc": "c++",
    ".cpp": "c++",
    ".cxx": "c++",
    ".cp": "c++",
    ".c++": "c++",
    ".C": "c++",
    ".m": "objective-c",
    ".mm": "objective-c++",
    ".M": "objective-c++",
    ".i": "c",
    ".ii": "c++",
    ".mi": "objective-c",
    ".mii": "objective-c++",
}
PREPROCESSED = frozenset({".i", ".ii", ".mi", ".mii"})
DISTRIBUTABLE_LANGUAGES = ("c", "c++", "objective-c", "objective-c++")

#: options whose operand may be the next argument (from the table)
TAKES_OPERAND = options.TAKES_OPERAND

#: dependency options: (exact flags without operand, flags with an operand)
DEP_FLAGS = frozenset({"-MD", "-MMD", "-MP", "-MG"})
DEP_OPERAND = frozenset({"-MF", "-MT", "-MQ"})


@record
class DepRequest:
    """The dependency file a local compile of the command would write."""

    system: bool  # -MD (True) or -MMD (False)
    file: str
    #: (target, quoted) from -MT / -MQ in order, else the compiler's default target
    targets: tuple[tuple[str, bool], ...]
    phony: bool  # -MP
    missing_ok: bool  # -MG


@record
class CompileJob:
    argv: tuple[str, ...]  # the user's command, `-Wp,` options expanded
    source: str
    source_index: int
    output: str
    output_given: bool
    mode: str  # "-c" or "-S"
    language: str
    preprocessed: bool
    deps: DepRequest | None

    @property
    def compiler(self) -> str:
        return self.argv[0]


@record
class LocalOnly:
    """The command must run on this machine, untouched; `reason` says why."""

    reason: str


def expand_wp(argv: Sequence[str]) -> list[str]:
    """Split `-Wp,a,b` the way the preprocessor sees it (`-Wp,-MD,f` = `-MD -MF f`)."""
    out: list[str] = []
    for arg in argv:
        if not arg.startswith("-Wp,"):
            out.append(arg)
            continue
        parts = arg[4:].split(",")
        if len(parts) == 2 and parts[0] in ("-MD", "-MMD"):
            out += [parts[0], "-MF", parts[1]]
        else:
            out += parts
    return out


def analyse(argv: Sequence[str]) -> CompileJob | LocalOnly:
    """Describe the job, or say why it must run locally."""
    args = expand_wp(argv)
    if len(args) < 2:
        return LocalOnly("no arguments")
    mode: str | None = None
    language: str | None = None
    source: tuple[int, str, str] | None = None  # index, name, language
    output: str | None = None
    for item in options.classify(args):
        arg = args[item.index]
        if item.place != options.REMOTE:
            return LocalOnly(f"{arg} is not distributed: {item.why}")
        if item.role == options.MODE:
            if mode is not None and mode != arg:
                return LocalOnly("both -c and -S")
            mode = arg
        elif item.role == options.OUTPUT:
            if output is not None:
                return LocalOnly("more than one output")
            output = item.operand
        elif item.role == options.LANGUAGE:
            if source is not None:
                return LocalOnly("-x after the source file")
            language = None if item.operand == "none" else item.operand
            if language is not None and language not in DISTRIBUTABLE_LANGUAGES:
                return LocalOnly(f"language {item.operand}")
        elif item.role == options.INPUT:
            ext = posixpath.splitext(arg)[1]
            if ext == ".o":
                return LocalOnly("an object file on the command line")
            if ext not in SOURCE_LANGUAGES and language is None:
                return LocalOnly(f"{arg} is not a C/C++ source")
            if source is not None:
                return LocalOnly("more than one source file")
            base = posixpath.basename(arg)
            if base.startswith(("conftest.", "tmp.conftest.")):
                return LocalOnly("autoconf probe")
            source = (item.index, arg, language or SOURCE_LANGUAGES[ext])
    if mode is None:
        return LocalOnly("not a compile-only command (no -c or -S)")
    if source is None:
        return LocalOnly("no source file")
    if output == "-":
        return LocalOnly("output to stdout")
    index, name, lang = source
    ext = posixpath.splitext(name)[1]
    given = output is not None
    if output is None:
        stem = posixpath.splitext(posixpath.basename(name))[0]
        output = stem + (".o" if mode == "-c" else ".s")
    return CompileJob(
        argv=tuple(args),
        source=name,
        source_index=index,
        output=output,
        output_given=given,
        mode=mode,
        language=lang,
        preprocessed=ext in PREPROCESSED,
        deps=_dep_request(args, name, output if given else None, _deps_via_wp(argv)),
    )


def _deps_via_wp(argv: Sequence[str]) -> bool:
    """True when -MD/-MMD reached the preprocessor directly (`-Wp,-MD,file`).

    The preprocessor then does not know the driver's -o, and its default
    rule target is the source's base name with `.o`.
    """
    return any(a.startswith(("-Wp,-MD,", "-Wp,-MMD,")) for a in argv)


def _dep_request(
    args: Sequence[str], source: str, output: str | None, via_wp: bool
) -> DepRequest | None:
    system: bool | None = None
    dep_file: str | None = None
    targets: list[tuple[str, bool]] = []
    phony = missing_ok = False
    for flag, operand in _dep_options(args):
        if flag == "-MD":
            system = True
        elif flag == "-MMD":
            system = False if system is None else system
        elif flag == "-MF":
            dep_file = operand
        elif flag in ("-MT", "-MQ"):
            assert operand is not None
            targets.append((operand, flag == "-MQ"))
        elif flag == "-MP":
            phony = True
        elif flag == "-MG":
            missing_ok = True
    if system is None:
        return None
    stem = posixpath.splitext(posixpath.basename(source))[0]
    if dep_file is None:
        dep_file = posixpath.splitext(output)[0] + ".d" if output is not None else stem + ".d"
    if not targets:
        default = output if output is not None and not via_wp else stem + ".o"
        targets = [(default, True)]
    return DepRequest(system, dep_file, tuple(targets), phony, missing_ok)


def _dep_options(args: Sequence[str]) -> list[tuple[str, str | None]]:
    """(flag, operand) for every dependency option, attached or separate."""
    found: list[tuple[str, str | None]] = []
    i = 1
    while i < len(args):
        arg = args[i]
        if arg in DEP_FLAGS:
            found.append((arg, None))
        elif arg in DEP_OPERAND and i + 1 < len(args):
            found.append((arg, args[i + 1]))
            i += 1
        elif arg[:3] in DEP_OPERAND and len(arg) > 3:
            found.append((arg[:3], arg[3:]))
        elif arg in TAKES_OPERAND:
            i += 1
        i += 1
    return found


def without_options(
    args: Sequence[str],
    drop_flags: frozenset[str],
    drop_operand: frozenset[str],
    drop_prefixes: tuple[str, ...] = (),
) -> list[str]:
    """argv[1:] minus the given options (with their operands)."""
    out: list[str] = []
    i = 1
    while i < len(args):
        arg = args[i]
        if arg in drop_operand:
            i += 2
            continue
        if arg in drop_flags or (drop_prefixes and arg.startswith(drop_prefixes)):
            i += 1
            continue
        out.append(arg)
        if arg in TAKES_OPERAND and i + 1 < len(args):
            out.append(args[i + 1])
            i += 1
        i += 1
    return out
