"""The one table of compiler options, for the wrapper and the daemon (pure).

Every argument of a gcc or clang command line gets a `Classified`: where the
job may run (`REMOTE`; `LOCAL`: this machine only; `REFUSED`: never on a
compile host, it would run code or touch files the command names) and what
it is to the job (`role`). An option that is not in the table is `LOCAL`:
the wrapper compiles it here, the daemon refuses it. The wrapper
(`compiler/args.py`) and the daemon (`compiler/daemon_args.py`) both read
this table, so what one sends the other accepts; docs/security.md shows it
(`markdown_table`, checked by the tests).

Lookup order: the exact spelling, then the longest table prefix, then the
families (`-f<name>`, `-m<name>`, `--param`, `-W<name>`, `-g<name>`, `-O`)
whose names come from gcc's own option list (`_gcc_names`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ccfarm._record import record
from ccfarm.compiler import _gcc_names


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


GCC_F_NAMES = _words(_gcc_names.GCC_F_NAMES)
GCC_M_NAMES = _words(_gcc_names.GCC_M_NAMES)
GCC_PARAMS = _words(_gcc_names.GCC_PARAMS)

REMOTE = "remote"
LOCAL = "local"
REFUSED = "refused"

# forms: how an option takes its operand
FLAG = "flag"  # alone: `-c`
SEPARATE = "separate"  # the next argument: `-wrapper CMD`
JOINED = "joined"  # glued on: `-std=c11`, `-fdump-tree-all`
EITHER = "joined or separate"  # `-I dir` or `-Idir`

# roles the analyses care about ("" for none)
OUTPUT = "output"
LANGUAGE = "language"
MODE = "mode"
DEP_FLAG = "dep-flag"
DEP_FILE = "dep-file"
DEP_TARGET = "dep-target"
INCLUDE_FILE = "include-file"  # read by the preprocessor
INCLUDE_DIR = "include-dir"  # searched by the preprocessor
INPUT = "input"  # not an option: a source file
ASSEMBLER = "assembler"  # -Wa,
PREPROCESSOR = "preprocessor"  # -Wp,


@record
class Spec:
    """One row of the table."""

    spelling: str
    form: str
    place: str
    role: str
    why: str


class Classified:
    """What one argument (with its operand, if separate) is.

    A plain slotted class, not a `@record`: the wrapper makes one per
    argument of every job, and this one is ten times cheaper to make.
    """

    __slots__ = ("index", "width", "spelling", "operand", "place", "role", "why")

    def __init__(
        self,
        index: int,
        width: int,  # arguments used: 1, or 2 with a separate operand
        spelling: str,  # the table row (or family) that matched
        operand: str | None,
        place: str,
        role: str,
        why: str,
    ) -> None:
        self.index = index
        self.width = width
        self.spelling = spelling
        self.operand = operand
        self.place = place
        self.role = role
        self.why = why

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Classified) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"Classified({fields})"


_ROWS: tuple[tuple[str, str, str, str, str], ...] = (
    # -- what the job is --------------------------------------------------------
    ("-c", FLAG, REMOTE, MODE, "compile only"),
    ("-S", FLAG, REMOTE, MODE, "compile to assembler"),
    ("-o", EITHER, REMOTE, OUTPUT, "the output; the daemon writes its own file"),
    ("-x", EITHER, REMOTE, LANGUAGE, "the source language"),
    ("-E", FLAG, LOCAL, "", "preprocessing only"),
    ("-M", FLAG, LOCAL, "", "dependency generation only"),
    ("-MM", FLAG, LOCAL, "", "dependency generation only"),
    ("-fsyntax-only", FLAG, LOCAL, "", "no output to send back"),
    ("--output", SEPARATE, LOCAL, "", "long spelling of -o"),
    ("--output=", JOINED, LOCAL, "", "long spelling of -o"),
    ("-", FLAG, LOCAL, "", "source on stdin"),
    ("-pipe", FLAG, REMOTE, "", "pipes between the compiler's stages"),
    # -- dependency files: written on this machine --------------------------------
    ("-MD", FLAG, REMOTE, DEP_FLAG, "the .d is written locally (the daemon drops it)"),
    ("-MMD", FLAG, REMOTE, DEP_FLAG, "as -MD"),
    ("-MP", FLAG, REMOTE, DEP_FLAG, "as -MD"),
    ("-MG", FLAG, REMOTE, DEP_FLAG, "as -MD"),
    ("-MF", EITHER, REMOTE, DEP_FILE, "the .d file; the daemon drops it and writes its own"),
    ("-MT", EITHER, REMOTE, DEP_TARGET, "a rule target, not a file"),
    ("-MQ", EITHER, REMOTE, DEP_TARGET, "a rule target, not a file"),
    ("-Mmodules", FLAG, REFUSED, "", "C++ modules read and write module files"),
    ("-Mno-modules", FLAG, REFUSED, "", "C++ modules"),
    # -- the preprocessor ---------------------------------------------------------
    ("-D", EITHER, REMOTE, "", "macro"),
    ("-U", EITHER, REMOTE, "", "macro"),
    ("-A", EITHER, REMOTE, "", "assertion"),
    ("-undef", FLAG, REMOTE, "", "no predefined macros"),
    ("-I", EITHER, REMOTE, INCLUDE_DIR, "include directory; kept inside the job's mirror"),
    ("-isystem", EITHER, REMOTE, INCLUDE_DIR, "include directory; kept inside the mirror"),
    ("-iquote", EITHER, REMOTE, INCLUDE_DIR, "include directory; kept inside the mirror"),
    ("-idirafter", EITHER, REMOTE, INCLUDE_DIR, "include directory; kept inside the mirror"),
    ("-include", EITHER, REMOTE, INCLUDE_FILE, "read first; kept inside the mirror"),
    ("-imacros", EITHER, REMOTE, INCLUDE_FILE, "read first; kept inside the mirror"),
    ("-nostdinc", FLAG, REMOTE, "", "no system include directories"),
    ("-nostdinc++", FLAG, REMOTE, "", "no C++ system include directories"),
    ("-C", FLAG, REMOTE, "", "keep comments (with -E)"),
    ("-CC", FLAG, REMOTE, "", "keep comments (with -E)"),
    ("-P", FLAG, REMOTE, "", "no line markers (with -E)"),
    ("-trigraphs", FLAG, REMOTE, "", "language"),
    ("-iprefix", EITHER, LOCAL, "", "a path prefix glued to -iwithprefix"),
    ("-iwithprefix", EITHER, LOCAL, "", "a directory under -iprefix"),
    ("-iwithprefixbefore", EITHER, LOCAL, "", "a directory under -iprefix"),
    ("-isysroot", EITHER, LOCAL, "", "this machine's system root"),
    ("--sysroot", SEPARATE, LOCAL, "", "this machine's system root"),
    ("--sysroot=", JOINED, LOCAL, "", "this machine's system root"),
    ("-imultilib", EITHER, LOCAL, "", "this machine's system directories"),
    ("-imultiarch", EITHER, LOCAL, "", "this machine's system directories"),
    ("-F", EITHER, LOCAL, "", "framework directory"),
    ("-iframework", EITHER, LOCAL, "", "framework directory"),
    ("-H", FLAG, LOCAL, "", "prints the headers it reads"),
    ("-traditional", FLAG, LOCAL, "", "traditional preprocessor"),
    ("-traditional-cpp", FLAG, LOCAL, "", "traditional preprocessor"),
    ("-no-integrated-cpp", FLAG, LOCAL, "", "a separate preprocessor run"),
    ("-fdirectives-only", FLAG, LOCAL, "", "preprocessor mode"),
    ("-fpreprocessed", FLAG, LOCAL, "", "preprocessor mode"),
    ("-Xpreprocessor", SEPARATE, LOCAL, "", "an unchecked preprocessor option"),
    ("-Wp,", JOINED, LOCAL, PREPROCESSOR, "split into its options before the table is read"),
    ("--", JOINED, LOCAL, "", "gcc's long option spellings and abbreviations"),
    ("--dumpdir", JOINED, REFUSED, "", "where auxiliary files go"),
    ("--dumpbase", JOINED, REFUSED, "", "names auxiliary files"),
    # -- code loaded or run, files read or written where the command says ---------
    ("@", JOINED, REFUSED, "", "response file: reads any file"),
    ("-B", EITHER, REFUSED, "", "runs compiler programs from a directory"),
    ("-wrapper", SEPARATE, REFUSED, "", "runs a program"),
    ("-specs", EITHER, REFUSED, "", "spec files run programs"),
    ("-specs=", JOINED, REFUSED, "", "spec files run programs"),
    ("--specs", SEPARATE, REFUSED, "", "spec files run programs"),
    ("--specs=", JOINED, REFUSED, "", "spec files run programs"),
    ("-fplugin", JOINED, REFUSED, "", "loads code"),
    ("-fpass-plugin=", JOINED, REFUSED, "", "loads code"),
    ("-iplugindir", JOINED, REFUSED, "", "where plugins are loaded from"),
    ("-fmodule", JOINED, REFUSED, "", "C++ modules: mapper programs, gcm.cache writes"),
    ("-fimplicit-module", JOINED, REFUSED, "", "C++ modules"),
    ("-fprebuilt-module-path=", JOINED, REFUSED, "", "C++ modules"),
    ("-flang-info-", JOINED, REFUSED, "", "C++ modules"),
    ("-fdeps-", JOINED, REFUSED, "", "writes a dependency file it names"),
    ("-fdump-", JOINED, REFUSED, "", "writes dump files"),
    ("-fopt-info", JOINED, REFUSED, "", "writes the file it names (without =: local)"),
    ("-fprofile", JOINED, REFUSED, "", "reads or writes profile files (without =: local)"),
    ("-fauto-profile", JOINED, REFUSED, "", "reads a profile file"),
    ("-fself-test", JOINED, REFUSED, "", "reads a directory"),
    ("-fvtv-", JOINED, REFUSED, "", "writes log files"),
    ("-freport-bug", FLAG, REFUSED, "", "writes a report file on a crash"),
    ("-fcrash-diagnostics", JOINED, REFUSED, "", "writes files on a crash"),
    ("-fsave-optimization-record", JOINED, REFUSED, "", "writes a record (without =: local)"),
    ("-foptimization-record-", JOINED, REFUSED, "", "writes a record file"),
    ("-ftime-trace", JOINED, REFUSED, "", "writes a trace (without =: local)"),
    ("-fsanitize-blacklist=", JOINED, REFUSED, "", "reads a file"),
    ("-fsanitize-ignorelist=", JOINED, REFUSED, "", "reads a file"),
    ("-fsanitize-system-ignorelist=", JOINED, REFUSED, "", "reads a file"),
    ("-fsanitize-coverage-allowlist=", JOINED, REFUSED, "", "reads a file"),
    ("-fsanitize-coverage-ignorelist=", JOINED, REFUSED, "", "reads a file"),
    ("-fsanitize-coverage-whitelist=", JOINED, REFUSED, "", "reads a file"),
    ("-fsanitize-coverage-blacklist=", JOINED, REFUSED, "", "reads a file"),
    ("-fthinlto-index=", JOINED, REFUSED, "", "reads a file"),
    ("-fembed-offload-object=", JOINED, REFUSED, "", "reads a file"),
    ("-fbuild-session-file=", JOINED, REFUSED, "", "reads a file"),
    ("-ivfsoverlay", EITHER, REFUSED, "", "reads a file"),
    ("-include-pch", EITHER, REFUSED, "", "reads a file"),
    ("-resource-dir", EITHER, REFUSED, "", "the compiler's own directory"),
    ("--config", JOINED, REFUSED, "", "clang reads a configuration file"),
    ("--gcc-toolchain=", JOINED, REFUSED, "", "runs programs from a directory"),
    ("--gcc-install-dir=", JOINED, REFUSED, "", "runs programs from a directory"),
    ("-working-directory", EITHER, REFUSED, "", "changes where paths point"),
    ("-serialize-diagnostics", SEPARATE, REFUSED, "", "writes the file it names"),
    ("--serialize-diagnostics", SEPARATE, REFUSED, "", "writes the file it names"),
    ("-save-temps", JOINED, REFUSED, "", "writes intermediate files"),
    ("--save-temps", JOINED, REFUSED, "", "writes intermediate files"),
    ("-time", FLAG, LOCAL, "", "times the compiler's stages"),
    ("-time=", JOINED, REFUSED, "", "writes the file it names"),
    ("-dumpdir", EITHER, REFUSED, "", "where auxiliary files go"),
    ("-dumpbase", JOINED, REFUSED, "", "names auxiliary files"),
    ("-dumpbase-ext", EITHER, REFUSED, "", "names auxiliary files"),
    ("-aux-info", JOINED, REFUSED, "", "writes the file it names"),
    ("-Xassembler", SEPARATE, REFUSED, "", "an unchecked assembler option"),
    ("-Xclang", SEPARATE, REFUSED, "", "an unchecked compiler option"),
    ("-mllvm", SEPARATE, REFUSED, "", "an unchecked back-end option"),
    ("-Wa,", JOINED, REMOTE, ASSEMBLER, "assembler options, each checked (`ASSEMBLER_OPTIONS`)"),
    # -- extra files beside the output, or this machine's state ---------------------
    ("-fcallgraph-info", JOINED, LOCAL, "", "writes a .ci file beside the output"),
    ("-fstack-usage", FLAG, LOCAL, "", "writes a .su file beside the output"),
    ("-gsplit-dwarf", FLAG, LOCAL, "", "writes a .dwo file beside the output"),
    ("-ftest-coverage", FLAG, LOCAL, "", "writes a .gcno file"),
    ("--coverage", FLAG, LOCAL, "", "profiling files"),
    ("-flto", JOINED, LOCAL, "", "link-time optimisation"),
    ("-fcompare-debug", JOINED, LOCAL, "", "compiles twice, writes files"),
    ("-frepo", FLAG, LOCAL, "", "writes .rpo files"),
    ("-fuse-ld=", JOINED, LOCAL, "", "link option"),
    ("-fdiagnostics-generate-patch", FLAG, LOCAL, "", "quotes the source files it patches"),
    (
        "-fdiagnostics-format=",
        JOINED,
        REMOTE,
        "",
        "text, json or json-stderr (the others write files or quote sources)",
    ),
    ("-d", JOINED, LOCAL, "", "dumps (-dA, -dp and -dP are remote)"),
    ("-dA", FLAG, REMOTE, "", "annotates the assembler output"),
    ("-dp", FLAG, REMOTE, "", "annotates the assembler output"),
    ("-dP", FLAG, REMOTE, "", "annotates the assembler output"),
    ("-dump", JOINED, LOCAL, "", "prints facts about the compiler"),
    ("-print-", JOINED, LOCAL, "", "prints facts about the compiler"),
    ("--help", JOINED, LOCAL, "", "prints help"),
    ("--version", FLAG, LOCAL, "", "prints the version"),
    ("--target-help", FLAG, LOCAL, "", "prints help"),
    ("-v", FLAG, LOCAL, "", "prints the commands it runs"),
    ("-###", FLAG, LOCAL, "", "prints the commands it would run"),
    ("-Q", FLAG, LOCAL, "", "prints functions and statistics"),
    ("-pass-exit-codes", FLAG, LOCAL, "", "exit codes of stages"),
    ("-arch", SEPARATE, LOCAL, "", "Apple multi-architecture build"),
    ("-G", EITHER, LOCAL, "", "target small-data size"),
    # -- link options: inert in a compile -------------------------------------------
    ("-Wl,", JOINED, LOCAL, "", "linker options"),
    ("-Xlinker", SEPARATE, LOCAL, "", "linker option"),
    ("-l", EITHER, REMOTE, "", "library, unused by -c"),
    ("-L", EITHER, REMOTE, "", "library directory, unused by -c"),
    ("-T", EITHER, LOCAL, "", "linker script"),
    ("-e", EITHER, LOCAL, "", "entry point"),
    ("-u", EITHER, LOCAL, "", "undefined symbol"),
    ("-z", EITHER, LOCAL, "", "linker keyword"),
    # -- language, warnings, code generation ----------------------------------------
    ("-std=", JOINED, REMOTE, "", "language standard"),
    ("--param", SEPARATE, REMOTE, "", "tuning parameter from gcc's list"),
    ("--param=", JOINED, REMOTE, "", "tuning parameter from gcc's list"),
    ("-W", FLAG, REMOTE, "", "warnings"),
    ("-ansi", FLAG, REMOTE, "", "language standard"),
    ("-pedantic", FLAG, REMOTE, "", "warnings"),
    ("-pedantic-errors", FLAG, REMOTE, "", "warnings"),
    ("-w", FLAG, REMOTE, "", "no warnings"),
    ("-p", FLAG, REMOTE, "", "profiling code (no files at compile time)"),
    ("-pg", FLAG, REMOTE, "", "profiling code (no files at compile time)"),
    ("-pthread", FLAG, REMOTE, "", "threads"),
    ("-fcolor-diagnostics", FLAG, REMOTE, "", "clang: colours"),
    ("-fno-color-diagnostics", FLAG, REMOTE, "", "clang: colours"),
    ("-ferror-limit=", JOINED, REMOTE, "", "clang: error limit"),
    ("-fdebug-prefix-map=", JOINED, REMOTE, "", "a rewrite of recorded paths, opens nothing"),
    ("-fmacro-prefix-map=", JOINED, REMOTE, "", "a rewrite of recorded paths, opens nothing"),
    ("-ffile-prefix-map=", JOINED, REMOTE, "", "a rewrite of recorded paths, opens nothing"),
    ("-fdebug-compilation-dir=", JOINED, REMOTE, "", "clang: recorded directory, opens nothing"),
    ("-stdlib=", JOINED, REMOTE, "", "clang: C++ library"),
    ("-target", SEPARATE, REMOTE, "", "clang: target"),
    ("--target=", JOINED, REMOTE, "", "clang: target"),
    ("-no-canonical-prefixes", FLAG, REMOTE, "", "driver paths"),
    ("-gline-tables-only", FLAG, REMOTE, "", "clang: debug info"),
    ("-gline-directives-only", FLAG, REMOTE, "", "clang: debug info"),
    ("-gmodules", FLAG, REFUSED, "", "clang: reads module files"),
    ("-gembed-source", FLAG, REMOTE, "", "clang: debug info"),
    ("-fstandalone-debug", FLAG, REMOTE, "", "clang: debug info"),
    ("-fno-standalone-debug", FLAG, REMOTE, "", "clang: debug info"),
    # link-only driver flags, inert with -c
    *(
        (flag, FLAG, REMOTE, "", "link option, unused by -c")
        for flag in (
            "-shared",
            "-static",
            "-static-pie",
            "-static-libgcc",
            "-static-libstdc++",
            "-shared-libgcc",
            "-pie",
            "-no-pie",
            "-rdynamic",
            "-s",
            "-nostdlib",
            "-nostdlib++",
            "-nodefaultlibs",
            "-nostartfiles",
            "-nolibc",
        )
    ),
)

#: options that only change the assembler's messages or output format
ASSEMBLER_OPTIONS = frozenset(
    {
        "--noexecstack",
        "--execstack",
        "-W",
        "--no-warn",
        "--warn",
        "--fatal-warnings",
        "-g",
        "--gen-debug",
        "--gdwarf-2",
        "--gdwarf-3",
        "--gdwarf-4",
        "--gdwarf-5",
        "--gdwarf-sections",
        "--compress-debug-sections",
        "--nocompress-debug-sections",
        "--32",
        "--64",
        "--x32",
        "-mshared",
        "-mno-shared",
        "-msse2avx",
        "-mbranches-within-32B-boundaries",
        "-O",
        "-O0",
        "-O1",
        "-O2",
    }
)
_ASSEMBLER_VALUES = {
    "--compress-debug-sections=": ("none", "zlib", "zlib-gnu", "zlib-gabi", "zstd"),
    "-mrelax-relocations=": ("yes", "no"),
    "-mx86-used-note=": ("yes", "no"),
    "-momit-lock-prefix=": ("yes", "no"),
    "-mfence-as-lock-add=": ("yes", "no"),
}
_DIAGNOSTICS_FORMATS = ("text", "json", "json-stderr")
#: -f options that take a value glued on without `=` (gcc's `-fcall-saved-REG`, ...)
_F_JOINED = tuple(sorted(n for n in GCC_F_NAMES if n.endswith("-")))
_G_NAMES = _words(
    """
    ant as-loc-support as-locview-support btf coff coff1 coff2 coff3 column-info ctf
    describe-dies dwarf dwarf32 dwarf64 dwarf-2 dwarf-3 dwarf-4 dwarf-5 gdb gdb0 gdb1 gdb2 gdb3
    gnu-pubnames inline-points internal-reset-location-views pubnames record-gcc-switches
    stabs stabs+ statement-frontiers strict-dwarf toggle variable-location-views vms
    xcoff xcoff+ z 0 1 2 3 codeview dwarf-aranges full used
    """
)
#: values that name nothing on disk
_GZ = frozenset({"z=none", "z=zlib", "z=zlib-gnu", "z=zstd"})
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_VALUE_CHARS = _ALNUM | frozenset("+_.,:=-")
_WARNING_CHARS = _ALNUM | frozenset("+_.=-")


def _plain(value: str) -> bool:
    """Does a value name nothing on disk (no `/`, no spaces, no quotes)?"""
    return all(ch in _VALUE_CHARS for ch in value)


def _warning(arg: str) -> bool:
    """`-W[no-][error=]NAME[=VALUE]` with a plain name."""
    name = arg[2:].removeprefix("no-").removeprefix("error=")
    return bool(name) and name[0] in _ALNUM and all(ch in _WARNING_CHARS for ch in name)


def _opt_level(arg: str) -> bool:
    level = arg[2:]
    return level in ("", "s", "z", "g", "fast") or level.isascii() and level.isdigit()


TABLE: tuple[Spec, ...] = tuple(Spec(*row) for row in _ROWS)
#: spellings whose operand is the next argument when not glued on
TAKES_OPERAND = frozenset(s.spelling for s in TABLE if s.form in (SEPARATE, EITHER))
_EXACT: dict[str, Spec] = {s.spelling: s for s in TABLE if s.form != JOINED}
_BY_HEAD: dict[str, tuple[Spec, ...]] = {}
for _spec in sorted(
    (s for s in TABLE if s.form in (JOINED, EITHER)), key=lambda s: -len(s.spelling)
):
    _head = _spec.spelling[:2]
    _BY_HEAD[_head] = (*_BY_HEAD.get(_head, ()), _spec)
del _spec, _head


def classify(argv: Sequence[str]) -> list[Classified]:
    """Every argument after the compiler's name, in order (total: never raises)."""
    out: list[Classified] = []
    i = 1
    while i < len(argv):
        item = classify_at(argv, i)
        out.append(item)
        i += item.width
    return out


def classify_at(argv: Sequence[str], i: int) -> Classified:
    arg = argv[i]
    if not arg.startswith("-") or arg == "-":
        if arg == "-":
            return Classified(i, 1, "-", None, LOCAL, "", "source on stdin")
        if arg.startswith("@"):
            return Classified(i, 1, "@", arg[1:], REFUSED, "", "response file: reads any file")
        return Classified(i, 1, "", arg, REMOTE, INPUT, "an input file")
    spec = _EXACT.get(arg)
    if spec is not None:
        if spec.form == FLAG:
            return Classified(i, 1, arg, None, spec.place, spec.role, spec.why)
        if i + 1 >= len(argv):
            return Classified(i, 1, arg, None, LOCAL, "", f"{arg} without its operand")
        operand = argv[i + 1]
        if arg == "--param" and not _param_ok(operand):
            return Classified(i, 2, arg, operand, LOCAL, "", "a parameter not in the table")
        return Classified(i, 2, arg, operand, spec.place, spec.role, spec.why)
    for spec in _BY_HEAD.get(arg[:2], ()):
        if arg.startswith(spec.spelling):
            return _joined(i, arg, spec)
    return _family(i, arg)


def _joined(i: int, arg: str, spec: Spec) -> Classified:
    value = arg[len(spec.spelling) :]
    place, why = spec.place, spec.why
    if spec.spelling in ("-fopt-info", "-fprofile", "-fsave-optimization-record", "-ftime-trace"):
        if "=" not in value:
            place = LOCAL
    elif spec.role == ASSEMBLER:
        bad = [a for a in value.split(",") if not assembler_option_ok(a)]
        if bad:
            place, why = REFUSED, f"assembler option {bad[0]!r} is not known to be safe"
    elif spec.spelling == "--param=" and not _param_ok(value):
        place, why = LOCAL, "a parameter not in the table"
    elif spec.spelling == "-fdiagnostics-format=" and value not in _DIAGNOSTICS_FORMATS:
        place, why = REFUSED, "writes a file"
    elif spec.spelling in ("-std=", "-stdlib=", "--target=", "-ferror-limit=") and not (
        _plain(value)
    ):
        place, why = LOCAL, "an unusual value"
    return Classified(i, 1, spec.spelling, value, place, spec.role, why)


def _param_ok(setting: str) -> bool:
    name, eq, _ = setting.partition("=")
    return bool(eq) and name in GCC_PARAMS and _plain(setting)


def assembler_option_ok(option: str) -> bool:
    if option in ASSEMBLER_OPTIONS:
        return True
    for prefix, values in _ASSEMBLER_VALUES.items():
        if option.startswith(prefix):
            return option[len(prefix) :] in values
    return False


def _family(i: int, arg: str) -> Classified:
    def found(spelling: str, place: str, why: str) -> Classified:
        return Classified(i, 1, spelling, None, place, "", why)

    if arg.startswith("-f"):
        name, eq, value = arg[2:].partition("=")
        negated = name.startswith("no-")
        base = name[3:] if negated else name
        known = base in GCC_F_NAMES or (not eq and base.startswith(_F_JOINED))
        if not known:
            return found("-f<name>", LOCAL, f"{arg} is not in the table")
        if eq and (negated or not _plain(value)):
            return found("-f<name>=", LOCAL, "a value that may name a file")
        return found("-f<name>", REMOTE, "gcc option")
    if arg.startswith("-m"):
        name, eq, value = arg[2:].partition("=")
        base = name[3:] if name.startswith("no-") else name
        if base not in GCC_M_NAMES and base not in _OTHER_TARGETS:
            return found("-m<name>", LOCAL, f"{arg} is not in the table")
        if value == "native":
            return found("-m<name>=native", LOCAL, "this machine's CPU")
        if eq and not _plain(value):
            return found("-m<name>=", LOCAL, "an unusual value")
        return found("-m<name>", REMOTE, "target option")
    if arg.startswith("-W"):
        if _warning(arg):
            return found("-W<name>", REMOTE, "warning option: changes messages only")
        return found("-W<name>", LOCAL, "an unusual warning option")
    if arg.startswith("-g"):
        name = arg[2:]
        base = name[3:] if name.startswith("no-") else name
        if name == "" or base in _G_NAMES or name in _GZ:
            return found("-g<name>", REMOTE, "debug info")
        return found("-g<name>", LOCAL, f"{arg} is not in the table")
    if arg.startswith("-O") and _opt_level(arg):
        return found("-O<level>", REMOTE, "optimisation level")
    return found("", LOCAL, f"{arg} is not in the table")


#: a few target options of other architectures than gcc 12's x86 list
_OTHER_TARGETS = _words(
    """
    thumb arm fpu float-abi abi cpu arch tune unaligned-access general-regs-only
    branch-protection cmodel strict-align little-endian big-endian relax explicit-relocs
    save-restore riscv-attribute outline-atomics sve-vector-bits
    """
)

#: the rows docs/security.md shows for the families
FAMILY_ROWS: tuple[tuple[str, str, str], ...] = (
    (
        "-f<name>[=value], -fno-<name>",
        REMOTE,
        "gcc's own list; a value with / or other path characters is local",
    ),
    (
        "-m<name>[=value], -mno-<name>",
        REMOTE,
        "gcc's x86 list and common ARM/RISC-V names; =native is local",
    ),
    ("-W<name>[=value], -Wno-, -Werror=", REMOTE, "warnings change messages only"),
    ("-g, -g<name>, -gno-<name>", REMOTE, "debug info (-gsplit-dwarf: local)"),
    ("-O, -O<n>, -Os, -Oz, -Og, -Ofast", REMOTE, "optimisation level"),
    ("any other option", LOCAL, "not in the table: compiled locally, refused by ccfarmd"),
)


def markdown_table() -> str:
    """The table as docs/security.md shows it."""
    lines = ["| option | form | where | what |", "|---|---|---|---|"]
    for spec in TABLE:
        shown = spec.spelling.replace("|", "\\|")
        lines.append(f"| `{shown}` | {spec.form} | {spec.place} | {spec.why} |")
    for spelling, place, why in FAMILY_ROWS:
        lines.append(f"| `{spelling}` | family | {place} | {why} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
