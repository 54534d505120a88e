"""The option table (compiler/options.py): every row and family by each of
its spellings, the issue's attacks, the daemon's filter, fuzzing, and the
copy of the table in docs/security.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm.compiler import options
from ccfarm.compiler.args import CompileJob, LocalOnly, analyse
from ccfarm.compiler.daemon_args import (
    DaemonJob,
    Refusal,
    check_request_args,
    daemon_argv_preprocessed,
)
from ccfarm.compiler.options import LOCAL, REFUSED, REMOTE, TABLE, classify

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
SAMPLE_VALUE = "v"


def words(text: str) -> list[str]:
    return text.split()


def place(*args: str) -> str:
    items = classify(["gcc", *args])
    assert items, args
    return items[0].place


@pytest.mark.parametrize("spec", TABLE, ids=lambda s: s.spelling)
def test_every_row_by_each_spelling(spec: options.Spec) -> None:
    if spec.form == options.FLAG:
        spellings = [[spec.spelling]]
    elif spec.form == options.SEPARATE:
        spellings = [[spec.spelling, SAMPLE_VALUE]]
    elif spec.form == options.JOINED:
        spellings = [[spec.spelling + _sample(spec)]]
    else:
        spellings = [[spec.spelling, SAMPLE_VALUE], [spec.spelling + SAMPLE_VALUE]]
    for argv in spellings:
        (item,) = classify(["gcc", *argv])
        assert item.spelling == spec.spelling, argv
        assert item.role == spec.role
        assert item.width == len(argv)
        if spec.spelling in _VALUE_DECIDES:
            continue
        assert item.place == spec.place, argv


#: rows whose place depends on the value (checked below)
_VALUE_DECIDES = {
    "-fopt-info",
    "-fprofile",
    "-fsave-optimization-record",
    "-ftime-trace",
    "-Wa,",
    "-fdiagnostics-format=",
    "--param=",
    "--param",
}


def _sample(spec: options.Spec) -> str:
    return {"-Wa,": "--noexecstack", "-fdiagnostics-format=": "text"}.get(
        spec.spelling, SAMPLE_VALUE
    )


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        # the list, every spelling
        (["-fmodules-ts"], REFUSED),
        (["-fmodule-mapper=|/bin/sh x"], REFUSED),
        (["-fmodule-header"], REFUSED),
        (["-fmodule-only"], REFUSED),
        (["-fmodules"], REFUSED),
        (["-fimplicit-modules"], REFUSED),
        (["-Mmodules"], REFUSED),
        (["--output=/abs"], LOCAL),
        (["--output", "/abs"], LOCAL),
        (["--out=/abs"], LOCAL),  # gcc accepts abbreviations of long options
        (["--outp", "/abs"], LOCAL),
        (["-Wa,-MD,/abs"], REFUSED),
        (["-Wa,--MD,/abs"], REFUSED),
        (["-Wa,-a=/abs"], REFUSED),
        (["-Wa,-al"], REFUSED),
        (["-Wa,@/abs"], REFUSED),
        (["-Wa,-I/abs"], REFUSED),
        (["-Wa,--noexecstack,-MD"], REFUSED),
        (["-Wa,--noexecstack"], REMOTE),
        (["-Wa,--compress-debug-sections=zlib"], REMOTE),
        (["-Wa,--compress-debug-sections=/x"], REFUSED),
        (["-Xassembler", "-MD"], REFUSED),
        (["-Wl,-z,now"], LOCAL),
        (["-Xlinker", "-z"], LOCAL),
        (["-fdump-tree-all"], REFUSED),
        (["-fdump-rtl-all=/abs"], REFUSED),
        (["-fdump-ipa-all"], REFUSED),
        (["-fopt-info"], LOCAL),
        (["-fopt-info-all"], LOCAL),
        (["-fopt-info-all=/abs"], REFUSED),
        (["-fopt-info-vec-missed=/abs"], REFUSED),
        (["-time"], LOCAL),
        (["-time=/abs"], REFUSED),
        (["-save-temps"], REFUSED),
        (["-save-temps=obj"], REFUSED),
        (["--save-temps"], REFUSED),
        (["-dumpdir", "/abs"], REFUSED),
        (["--dumpdir", "/abs"], REFUSED),
        (["--dumpdir=/abs"], REFUSED),
        (["-dumpbase", "x"], REFUSED),
        (["-dumpbase-ext", ".c"], REFUSED),
        (["--dumpbase=x"], REFUSED),
        (["-dumpmachine"], LOCAL),
        (["-fprofile-generate=/abs"], REFUSED),
        (["-fprofile-use=/abs"], REFUSED),
        (["-fprofile-dir=/abs"], REFUSED),
        (["-fprofile-arcs"], LOCAL),
        (["-fprofile-instr-generate"], LOCAL),
        (["-fauto-profile=/abs"], REFUSED),
        (["-fplugin=/abs.so"], REFUSED),
        (["-fplugin-arg-x-y=z"], REFUSED),
        (["-fpass-plugin=/abs.so"], REFUSED),
        (["-specs=/abs"], REFUSED),
        (["-specs", "/abs"], REFUSED),
        (["--specs=/abs"], REFUSED),
        (["-B/abs/"], REFUSED),
        (["-B", "/abs/"], REFUSED),
        (["-wrapper", "/bin/sh,-c,x"], REFUSED),
        (["@/abs"], REFUSED),
        (["-fcallgraph-info"], LOCAL),
        (["-fcallgraph-info=su,da"], LOCAL),
        (["-fstack-usage"], LOCAL),
        (["-aux-info", "/abs"], REFUSED),
        (["-aux-info=/abs"], REFUSED),
        (["-fdiagnostics-format=sarif-file"], REFUSED),
        (["-fdiagnostics-format=json-file"], REFUSED),
        (["-fdiagnostics-format=json"], REMOTE),
        (["-fdiagnostics-color=always"], REMOTE),
        (["-fdiagnostics-urls=/abs"], LOCAL),
        (["-frecord-gcc-switches"], REMOTE),
        (["-iplugindir=/abs"], REFUSED),
        (["-fsanitize-blacklist=/abs"], REFUSED),
        (["-fsanitize-ignorelist=/abs"], REFUSED),
        (["-fsanitize-coverage-allowlist=/abs"], REFUSED),
        (["-fsanitize=address"], REMOTE),
        (["-fsanitize-recover=all"], REMOTE),
        (["-fself-test=/abs"], REFUSED),
        (["-fvtv-counts"], REFUSED),
        (["-freport-bug"], REFUSED),
        (["-ftime-trace"], LOCAL),
        (["-ftime-trace=/abs"], REFUSED),
        (["-fsave-optimization-record"], LOCAL),
        (["-fsave-optimization-record=yaml"], REFUSED),
        (["-Xclang", "-load"], REFUSED),
        (["-mllvm", "-x"], REFUSED),
        (["--config=/abs"], REFUSED),
        (["-include-pch", "/abs"], REFUSED),
        (["-gmodules"], REFUSED),
        # what real builds use stays remote
        (["-O2"], REMOTE),
        (["-Os"], REMOTE),
        (["-O"], REMOTE),
        (["-g"], REMOTE),
        (["-g3"], REMOTE),
        (["-ggdb"], REMOTE),
        (["-gdwarf-4"], REMOTE),
        (["-gz=zlib"], REMOTE),
        (["-gno-record-gcc-switches"], REMOTE),
        (["-gsplit-dwarf"], LOCAL),
        (["-Wall"], REMOTE),
        (["-Wextra"], REMOTE),
        (["-W"], REMOTE),
        (["-Werror=format-security"], REMOTE),
        (["-Wno-error=unused"], REMOTE),
        (["-Wformat=2"], REMOTE),
        (["-Wshorten-64-to-32"], REMOTE),  # clang's
        (["-fPIC"], REMOTE),
        (["-fno-omit-frame-pointer"], REMOTE),
        (["-fstack-protector-strong"], REMOTE),
        (["-fvisibility=hidden"], REMOTE),
        (["-fcf-protection=full"], REMOTE),
        (["-fno-exceptions"], REMOTE),
        (["-fcall-saved-rbx"], REMOTE),
        (["-fdebug-prefix-map=/a=/b"], REMOTE),
        (["-ffile-prefix-map=/a=."], REMOTE),
        (["-finstrument-functions-exclude-file-list=/a/b"], LOCAL),
        (["-fexec-charset=UTF-8"], REMOTE),
        (["-finput-charset=/abs/module"], LOCAL),
        (["-fno-lto"], REMOTE),
        (["-flto"], LOCAL),
        (["-fbogus-option"], LOCAL),
        (["-march=x86-64-v2"], REMOTE),
        (["-march=native"], LOCAL),
        (["-mtune=native"], LOCAL),
        (["-mavx2"], REMOTE),
        (["-mno-red-zone"], REMOTE),
        (["-mthumb"], REMOTE),
        (["-mbogus"], LOCAL),
        (["--param=max-inline-insns-single=100"], REMOTE),
        (["--param", "max-inline-insns-single=100"], REMOTE),
        (["--param=bogus=1"], LOCAL),
        (["--param", "max-inline-insns-single=/x"], LOCAL),
        (["-std=c11"], REMOTE),
        (["-std=gnu++20"], REMOTE),
        (["-pthread"], REMOTE),
        (["-pipe"], REMOTE),
        (["-DX=1"], REMOTE),
        (["-D", "X"], REMOTE),
        (["-UX"], REMOTE),
        (["-Iinc"], REMOTE),
        (["-isystem", "/usr/include"], REMOTE),
        (["-include", "config.h"], REMOTE),
        (["-iprefix", "/x"], LOCAL),
        (["--sysroot=/x"], LOCAL),
        (["-isysroot", "/x"], LOCAL),
        (["-E"], LOCAL),
        (["-M"], LOCAL),
        (["-v"], LOCAL),
        (["--version"], LOCAL),
        (["--help=common"], LOCAL),
        (["-print-file-name=x"], LOCAL),
        (["-"], LOCAL),
        (["-dA"], REMOTE),
        (["-dM"], LOCAL),
        (["-H"], LOCAL),
    ],
)
def test_spellings(argv: list[str], where: str) -> None:
    assert place(*argv) == where


def test_unknown_is_local_everywhere() -> None:
    for arg in (
        "-zzz",
        "--zzz",
        "-Zzz",
        "-fzzz",
        "-mzzz",
        "-gzzz",
        "-Qzzz",
        "-O9x",
        "-W@x",
        "-W/x",
    ):
        assert place(arg) == LOCAL, arg


def test_operands_are_consumed() -> None:
    items = classify(["gcc", "-o", "-fplugin=x", "-D", "-wrapper", "-c", "x.c"])
    assert [(i.spelling, i.operand) for i in items] == [
        ("-o", "-fplugin=x"),
        ("-D", "-wrapper"),
        ("-c", None),
        ("", "x.c"),
    ]
    # an option without its operand is not guessed at
    assert classify(["gcc", "-o"])[0].place == LOCAL


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from([s.spelling for s in TABLE]),
            st.sampled_from(["-c", "x.c", "-o", "x.o", "-fPIC", "-O2", "-Wall", "-I", "--param"]),
        ),
        max_size=30,
    )
)
def test_classifier_is_total(args: list[str]) -> None:
    argv = ["gcc", *args]
    items = classify(argv)
    # every argument is covered once, in order
    covered = [i for item in items for i in range(item.index, item.index + item.width)]
    assert covered == list(range(1, len(argv)))
    assert all(item.place in (REMOTE, LOCAL, REFUSED) for item in items)
    assert isinstance(analyse(argv), CompileJob | LocalOnly)
    for version in (1, 2, 3):
        result = check_request_args(argv, version=version, cwd="/home/u")
        assert isinstance(result, DaemonJob | Refusal)
        if isinstance(result, DaemonJob):
            # whatever the daemon accepts, the table says is remote
            assert all(i.place == REMOTE for i in classify(result.argv))


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize(
    "bad",
    [
        ["-fmodules-ts", "-fmodule-mapper=|/bin/sh x"],
        ["--output=/abs"],
        ["-fopt-info-all=/abs"],
        ["-time=/abs"],
        ["-Wa,-MD,/abs"],
        ["-wrapper", "/bin/sh"],
        ["@/etc/passwd"],
        ["-fbogus"],
        ["-fdump-tree-all"],
        ["-Xassembler", "--MD"],
    ],
)
def test_daemon_refuses(bad: list[str], version: int) -> None:
    source = "x.cc" if version == 3 else "x.ii"
    argv = ["g++", *bad, "-c", source, "-o", "x.o"]
    assert isinstance(check_request_args(argv, version=version, cwd="/home/u"), Refusal)


@pytest.mark.parametrize(
    "argv",
    [
        "gcc -include ../../../../etc/passwd -c x.c",
        "gcc -imacros ../../../../../etc/passwd -c x.c",
        "gcc -include/../../etc/passwd -c x.c",
        "gcc -I../../../../etc -c x.c",
        "gcc -isystem /../../etc -c x.c",
        "gcc -c ../../../../../etc/x.c",
        "gcc -c /a/../../etc/x.c",
        "gcc -iquote gcm.cache -c x.c",
    ],
)
def test_daemon_refuses_paths_out_of_the_mirror(argv: str) -> None:
    assert isinstance(check_request_args(argv.split(), version=3, cwd="/home/u"), Refusal)


def test_daemon_splits_wp_options() -> None:
    """Protocol 3: `-Wp,` options are checked (and run) as the preprocessor sees them."""
    job = check_request_args(words("gcc -Wp,-MD,x.d -c x.c -o x.o"), version=3, cwd="/u")
    assert isinstance(job, DaemonJob) and job.argv[1:4] == ("-MD", "-MF", "x.d")
    for bad in ("-Wp,-include,../../../../etc/passwd", "-Wp,-fplugin=x.so", "-Wp,-dumpdir,/x"):
        assert isinstance(
            check_request_args(["gcc", bad, "-c", "x.c"], version=3, cwd="/u"), Refusal
        )
    # a preprocessed source has no use for them
    assert isinstance(check_request_args(words("gcc -Wp,-MD,x.d -c x.i"), version=1), Refusal)


def test_daemon_accepts_paths_inside() -> None:
    argv = words("gcc -I../inc -include ../cfg.h -isystem /usr/include -c ../src/x.c -o x.o")
    assert isinstance(check_request_args(argv, version=3, cwd="/home/u/build"), DaemonJob)


def test_preprocessed_job_runs_no_client_path() -> None:
    """Protocols 1/2: include directories and dependency options go (a .i needs none)."""
    argv = words("gcc -I/etc -iquote /root -isystem /x -MD -MF /abs.d -MT t -O2 -c x.i -o x.o")
    job = check_request_args(argv, version=1)
    assert isinstance(job, DaemonJob)
    ran = daemon_argv_preprocessed(job, "/w/in.i", "/w/out.o")
    assert ran == ["gcc", "-O2", "-c", "/w/in.i", "-o", "/w/out.o", "-fno-diagnostics-show-caret"]


def test_docs_table_is_the_code() -> None:
    text = DOCS.read_text()
    section = text.split("## Compile options", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    assert options.markdown_table() in section, "regenerate: python -m ccfarm.compiler.options"
