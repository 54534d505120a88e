"""Client-side analysis of a compiler command line (pure: no I/O).

`analyse` decides whether a command can be distributed, with distcc's rules
plus a few more conservative ones, and describes the job: source, output,
language, dependency file. `compiler/commands.py` builds the command lines
ccfarm runs for it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from ccfarm._record import record

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

#: options whose operand is the next argument
TAKES_OPERAND = frozenset(
    {
        "-o",
        "-x",
        "-MF",
        "-MT",
        "-MQ",
        "-I",
        "-D",
        "-U",
        "-include",
        "-imacros",
        "-isystem",
        "-iquote",
        "-idirafter",
        "-iprefix",
        "-iwithprefix",
        "-iwithprefixbefore",
        "-isysroot",
        "-imultilib",
        "-L",
        "-l",
        "-A",
        "-aux-info",
        "-Xpreprocessor",
        "-Xassembler",
        "-Xlinker",
        "-Xclang",
        "-u",
        "-T",
        "-z",
        "-e",
        "--param",
        "-target",
        "--target",
        "-arch",
        "--sysroot",
        "-dumpdir",
        "-dumpbase",
        "-dumpbase-ext",
        "-wrapper",
        "-specs",
        "--specs",
        "-G",
    }
)

#: dependency options: (exact flags without operand, flags with an operand)
DEP_FLAGS = frozenset({"-MD", "-MMD", "-MP", "-MG"})
DEP_OPERAND = frozenset({"-MF", "-MT", "-MQ"})

#: prefixes that make a job run locally (they load code, read or write
#: files the job names, or need this machine)
_LOCAL_PREFIXES = (
    "-fplugin",
    "-specs",
    "--specs",
    "-B",
    "-save-temps",
    "--save-temps",
    "-fdump-",
    "-dumpdir",
    "-dumpbase",
    "-iplugindir",
    "-fprofile-",
    "-fauto-profile",
    "-fcallgraph-info",
    "-fstack-usage",
    "-fdiagnostics-format=sarif",
    "-Xpreprocessor",
    "-Xassembler",
    "-Xclang",
    "--sysroot",
    "-isysroot",
    "-fdirectives-only",
    "-fpreprocessed",
    "-traditional",
    "-no-integrated-cpp",
    "-frepo",
    "-dr",
    "-ftest-coverage",
    "--coverage",
    "-fprofile-arcs",
    "-aux-info",
    "-wrapper",
    "-march=native",
    "-mtune=native",
    "-mcpu=native",
    "-flto",
    "-fsanitize-blacklist",
    "-fsanitize-ignorelist",
    "-fsanitize-coverage-allowlist",
    "-fsanitize-coverage-ignorelist",
    "-fcompare-debug",
    "-M",
    "-E",
    "--help",
    "--version",
    "-v",
    "-###",
    "-print-",
    "-dump",
    "-fsyntax-only",
)
_DEP_OK = frozenset({"-MD", "-MMD", "-MG", "-MP", "-MF", "-MT", "-MQ"})


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


def _local_reason(arg: str) -> str | None:
    if arg == "-" or arg.startswith("@"):
        return f"argument {arg!r}"
    if arg.startswith("-M") and arg not in _DEP_OK and not arg.startswith(("-MF", "-MT", "-MQ")):
        return f"{arg} (dependency generation only)"
    if arg.startswith("-Wa,") and (",-a" in arg or "--MD" in arg or "@" in arg):
        return f"{arg} (assembler writes or reads files)"
    if arg.startswith(_LOCAL_PREFIXES) and not arg.startswith(
        ("-MF", "-MT", "-MQ", "-MD", "-MMD", "-MP", "-MG")
    ):
        return f"{arg} is not distributed"
    return None


def analyse(argv: Sequence[str]) -> CompileJob | LocalOnly:
    """Describe the job, or say why it must run locally."""
    args = expand_wp(argv)
    if len(args) < 2:
        return LocalOnly("no arguments")
    mode: str | None = None
    language: str | None = None
    source: tuple[int, str, str] | None = None  # index, name, language
    output: str | None = None
    i = 1
    while i < len(args):
        arg = args[i]
        reason = _local_reason(arg)
        if reason is not None:
            return LocalOnly(reason)
        if arg in ("-c", "-S"):
            if mode is not None and mode != arg:
                return LocalOnly("both -c and -S")
            mode = arg
        elif (
            arg in TAKES_OPERAND
            or (arg.startswith("-x") and len(arg) > 2)
            or (arg.startswith("-o") and len(arg) > 2)
        ):
            if arg in TAKES_OPERAND:
                if i + 1 >= len(args):
                    return LocalOnly(f"{arg} without operand")
                operand = args[i + 1]
                i += 1
            else:
                operand = arg[2:]
            if arg.startswith("-o"):
                if output is not None:
                    return LocalOnly("more than one output")
                output = operand
            elif arg.startswith("-x"):
                if source is not None:
                    return LocalOnly("-x after the source file")
                language = None if operand == "none" else operand
                if language is not None and language not in DISTRIBUTABLE_LANGUAGES:
                    return LocalOnly(f"language {operand}")
        elif not arg.startswith("-"):
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
            source = (i, arg, language or SOURCE_LANGUAGES[ext])
        i += 1
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
