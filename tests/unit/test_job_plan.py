"""The wrapper's job as a pure plan: every decision from argv, environment and
compiler identity to what is sent where, and what follows each step."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccfarm import protocol
from ccfarm.client.hosts.hostlist import CPU_COUNT, HostList, HostSpec, parse_entry, parse_hosts
from ccfarm.client.job import fallback
from ccfarm.client.job.compilerinfo import CompilerInfo
from ccfarm.client.job.fallback import (
    COMPILE_FAILED,
    COMPILED,
    EXIT_NO_HOSTS,
    MAX_HOSTS_TRIED,
    PREPROCESSOR_FAILED,
    SCHEDULER_TRIES,
    Exit,
    HostRoute,
    NextHost,
    RunLocal,
    Tries,
    UseHostLists,
)
from ccfarm.client.job.invocation import Invocation
from ccfarm.client.job.plan import (
    DIRECTORY_MARKER,
    LOCAL_ONLY_ENV,
    SAFEGUARD,
    JobPlan,
    RemotePlan,
    Request,
    files_to_send,
    judge,
    plan_job,
    read_settings,
    reply_note,
)
from ccfarm.model import CompilerIdentity, LeaseGranted

GCC = CompilerInfo(
    CompilerIdentity("gcc", "12.2.0", "x86_64-linux-gnu"),
    ("/usr/lib/gcc/x86_64-linux-gnu/12/include", "/usr/include"),
)
TARGET_GCC = "x86_64-linux-gnu-gcc"
#: a preprocessed text that read gcc's implicit predefines header
PREDEF = b'# 0 "x.c"\n# 0 "<built-in>"\n# 1 "/usr/include/stdc-predef.h" 1 3 4\nint x;\n'
PLAIN = b'# 0 "x.c"\nint x;\n'


def plan_for(
    cmd: str, env: dict[str, str] | None = None, *, terminal: bool = False
) -> JobPlan | RunLocal:
    env = env or {}
    argv = tuple(cmd.split())
    return plan_job(
        Invocation(argv, "/usr/bin/" + argv[0]), env, read_settings(env), terminal=terminal
    )


def job_plan(cmd: str, env: dict[str, str] | None = None, *, terminal: bool = False) -> JobPlan:
    plan = plan_for(cmd, env, terminal=terminal)
    assert isinstance(plan, JobPlan), plan
    return plan


def remote_for(
    cmd: str,
    env: dict[str, str] | None = None,
    *,
    terminal: bool = False,
    on_path: tuple[str, ...] = (),
) -> RemotePlan:
    env = env or {}
    plan = job_plan(cmd, env, terminal=terminal)
    return plan.remote(GCC, env, which=lambda n: f"/usr/bin/{n}" if n in on_path else None)


def requests(
    remote: RemotePlan,
    entry: str,
    *,
    express: bool = False,
    cpp_stderr: bytes = b"",
    text: bytes = PLAIN,
) -> list[Request]:
    host = parse_entry(entry)
    return list(remote.requests(host, express=express, cpp_stderr=cpp_stderr, text=text))


# -- compile here, and why ------------------------------------------------------------


def test_safeguard_compiles_here_silently() -> None:
    assert plan_for("gcc -O2 -c x.c", {SAFEGUARD: "1"}) == RunLocal()
    assert isinstance(plan_for("gcc -O2 -c x.c", {SAFEGUARD: ""}), JobPlan)  # empty: unset


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        ("gcc x.c -o x", "not a compile-only command (no -c or -S)"),
        ("gcc -c conftest.c", "autoconf probe"),
        ("gcc -march=native -c x.c", "-march=native is not distributed: this machine's CPU"),
        ("gcc -c x.c y.c", "more than one source file"),
        ("gcc", "no arguments"),
    ],
)
def test_analysis_says_local(cmd: str, reason: str) -> None:
    # a local compile like any other: it holds a local slot
    assert plan_for(cmd) == RunLocal(verbose=f"not distributed: {reason}", local_slots=CPU_COUNT)


@pytest.mark.parametrize("name", LOCAL_ONLY_ENV)
def test_compiler_environment_variables_keep_the_job_here(name: str) -> None:
    assert plan_for("gcc -O2 -c x.c", {name: ""}) == RunLocal(
        verbose=f"not distributed: {name} set", local_slots=CPU_COUNT
    )


def test_safeguard_goes_before_the_analysis() -> None:
    assert plan_for("gcc x.c -o x", {SAFEGUARD: "1", "CPATH": "/x"}) == RunLocal()


# -- settings ------------------------------------------------------------------------------


def test_settings_defaults_and_distcc_names() -> None:
    s = read_settings({})
    assert (s.fallback, s.verbose, s.checked_preprocessed) == (True, False, True)
    assert (s.connect_timeout, s.io_timeout, s.backoff, s.pause, s.lease_wait) == (
        4.0,
        300,
        60.0,
        1.0,
        60.0,
    )
    distcc = read_settings(
        {
            "DISTCC_FALLBACK": "0",
            "DISTCC_VERBOSE": "1",
            "DISTCC_IO_TIMEOUT": "7",
            "DISTCC_BACKOFF_PERIOD": "9",
            "DISTCC_PAUSE_TIME_MSEC": "250",
        }
    )
    assert (distcc.fallback, distcc.verbose, distcc.io_timeout, distcc.backoff, distcc.pause) == (
        False,
        True,
        7.0,
        9.0,
        0.25,
    )
    both = read_settings({"DISTCC_FALLBACK": "0", "CCFARM_FALLBACK": "1", "CCFARM_MODE": "exact"})
    assert both.fallback and not both.checked_preprocessed
    assert s.scheduler_timeout == 2.0
    assert read_settings({"CCFARM_SCHEDULER_TIMEOUT": "0.5"}).scheduler_timeout == 0.5
    # LZO bodies stored unless asked to pack (the codec is slower than a wired link)
    assert not s.packed and read_settings({"CCFARM_COMPRESS": "lzo"}).packed
    assert not read_settings({"CCFARM_COMPRESS": "yes"}).packed
    # a compile the scheduler keeps here goes 10 nicer; 0 to 19, else the default
    assert s.local_nice == 10
    for value, nice in (("0", 0), ("19", 19), ("20", 10), ("-5", 10), ("high", 10), ("", 10)):
        assert read_settings({"CCFARM_LOCAL_NICE": value}).local_nice == nice, value


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "CCFARM_FALLBACK",
                "DISTCC_FALLBACK",
                "CCFARM_VERBOSE",
                "CCFARM_CONNECT_TIMEOUT",
                "CCFARM_IO_TIMEOUT",
                "DISTCC_IO_TIMEOUT",
                "CCFARM_BACKOFF_PERIOD",
                "DISTCC_PAUSE_TIME_MSEC",
                "CCFARM_LEASE_WAIT",
                "CCFARM_SCHEDULER_TIMEOUT",
                "CCFARM_MODE",
            ]
        ),
        st.one_of(st.sampled_from(["0", "1", "", "-1", "2.5", "nan", "inf", "x"]), st.text()),
    )
)
def test_any_settings_parse(env: dict[str, str]) -> None:
    s = read_settings(env)
    flags = [env.get(n) for n in ("CCFARM_FALLBACK", "DISTCC_FALLBACK")]
    assert s.fallback is next((f == "1" for f in flags if f in ("0", "1")), True)
    for value in (
        s.connect_timeout,
        s.io_timeout,
        s.backoff,
        s.pause,
        s.lease_wait,
        s.scheduler_timeout,
    ):
        assert value > 0  # anything else gives the default


# -- the plan before the compiler is known ----------------------------------------------


@pytest.mark.parametrize(
    ("source", "suffix"),
    [("x.c", ".i"), ("x.cc", ".ii"), ("x.m", ".mi"), ("x.mm", ".mii"), ("x.i", ".i")],
)
def test_preprocessor_command(source: str, suffix: str) -> None:
    plan = job_plan(f"gcc -O2 -MD -c {source} -o out/x.o")
    assert plan.preprocessed_suffix == suffix
    argv = plan.preprocessor_argv("/tmp/p" + suffix)
    assert argv[0] == "/usr/bin/gcc"  # the real compiler: gcc finds cc1 beside it
    assert argv[-3:] == ["-E", "-o", "/tmp/p" + suffix]
    assert "-c" not in argv and "out/x.o" not in argv[:-4]
    assert argv[argv.index("-MF") + 1] == "out/x.d"  # the .d file is written here


def test_plan_holds_job_settings_and_schedulers() -> None:
    plan = job_plan("gcc -O2 -c x.c", {"CCFARM_SCHEDULER": "s1,s2:3634", "CCFARM_FALLBACK": "0"})
    assert plan.schedulers == "s1,s2:3634"
    assert not plan.settings.fallback
    assert (plan.job.source, plan.job.output, plan.compiler_path) == ("x.c", "x.o", "/usr/bin/gcc")
    assert job_plan("gcc -O2 -c x.c").schedulers == ""


@pytest.mark.parametrize(
    ("cmd", "term", "terminal", "colour"),
    [
        ("gcc -c x.c", "xterm", True, ("-fdiagnostics-color=always",)),
        ("gcc -c x.c", "xterm", False, ()),
        ("gcc -c x.c", "dumb", True, ()),
        ("gcc -c x.c", None, True, ()),
        ("gcc -fdiagnostics-color=never -c x.c", "xterm", True, ()),
        ("gcc -fno-diagnostics-color -c x.c", "xterm", True, ()),
    ],
)
def test_colour_as_a_local_run_would(
    cmd: str, term: str | None, terminal: bool, colour: tuple[str, ...]
) -> None:
    env = {"TERM": term} if term else {}
    assert job_plan(cmd, env, terminal=terminal).colour == colour


# -- the remote plan ---------------------------------------------------------------------------


def test_remote_plan_commands() -> None:
    remote = remote_for(
        "gcc -O2 -Iinc -DX=1 -MD -c x.c", {"LANG": "de_DE.UTF-8", "HOME": "/h"}, terminal=True
    )
    assert remote.compiler == "gcc"
    assert remote.classic_argv == ("gcc", "-O2", "-c", "x.c", "-o", "x.o")
    assert remote.exact_argv == (
        "gcc",
        "-O2",
        "-Iinc",
        "-DX=1",
        "-c",
        "x.c",
        "-o",
        "x.o",
        "-nostdinc",
        "-isystem",
        "/usr/lib/gcc/x86_64-linux-gnu/12/include",
        "-isystem",
        "/usr/include",
    )  # no colour: TERM is not set
    assert remote.forwarded == ("LANG=de_DE.UTF-8",)
    assert remote.cheap


def test_remote_plan_colour_and_forwarded_order() -> None:
    env = {"TERM": "xterm", "SOURCE_DATE_EPOCH": "1", "LC_ALL": "C", "PATH": "/bin"}
    remote = remote_for("gcc -O2 -c x.c", env, terminal=True)
    assert remote.exact_argv[-1] == "-fdiagnostics-color=always"
    assert "-fdiagnostics-color=always" not in remote.classic_argv
    assert remote.forwarded == tuple(
        f"{k}={env[k]}" for k in protocol.CLIENT_ENVIRONMENT if k in env
    )


def test_cross_compiler_name() -> None:
    assert remote_for("gcc -O2 -c x.c", on_path=(TARGET_GCC,)).compiler == TARGET_GCC
    remote = remote_for("/opt/bin/gcc -O2 -c x.c", on_path=(TARGET_GCC,))
    assert remote.classic_argv[0] == remote.exact_argv[0] == TARGET_GCC
    assert remote_for("gcc -O2 -c x.c").compiler == "gcc"  # not on PATH: the plain name
    assert remote_for("cc -O2 -c x.c", on_path=("x86_64-linux-gnu-cc",)).compiler == "cc"


@pytest.mark.parametrize(
    ("cmd", "env", "cheap"),
    [
        ("gcc -O2 -c x.c", {}, True),
        ("gcc -Os -c x.cc", {}, True),
        ("gcc -O0 -c x.c", {}, False),
        ("gcc -Og -c x.c", {}, False),
        ("gcc -c x.c", {}, False),
        ("gcc -O2 -g -c x.c", {}, False),
        ("gcc -O2 -g0 -c x.c", {}, True),
        ("gcc -O2 -fsanitize=address -c x.c", {}, False),
        ("gcc -O2 -S x.c", {}, False),
        ("gcc -O2 -c x.i", {}, False),
        ("gcc -O2 -c x.m", {}, False),
        ("gcc -O2 -c x.c", {"CCFARM_MODE": "exact"}, False),
        ("gcc -O2 -c x.c", {"CCFARM_MODE": "auto"}, True),
    ],
)
def test_cheap_way_allowed(cmd: str, env: dict[str, str], cheap: bool) -> None:
    assert remote_for(cmd, env).cheap is cheap


# -- requests per host ------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "version"), [("h", 1), ("h,lzo", 2)])
def test_distcc_hosts_get_the_preprocessed_text(entry: str, version: int) -> None:
    remote = remote_for("gcc -O2 -c x.c", {"LANG": "C"})
    assert requests(remote, entry, text=PREDEF) == [
        Request(version, remote.classic_argv, (), files=False)
    ]


def test_pump_host_gets_sources_without_environment() -> None:
    remote = remote_for("gcc -O2 -c x.c", {"LANG": "C"})
    assert requests(remote, "h,lzo,cpp") == [
        Request(protocol.PUMP, remote.exact_argv, (), files=True)
    ]


def test_ccfarm_host_cheap_way_first_then_exact() -> None:
    remote = remote_for("gcc -O2 -c x.c", {"LANG": "C"})
    assert requests(remote, "h,ccfarm") == [
        Request(protocol.CCFARM_CPP, remote.classic_argv, ("LANG=C",), files=False, cheap=True),
        Request(protocol.CCFARM, remote.exact_argv, ("LANG=C",), files=True),
    ]
    listed = parse_hosts("h", ccfarm=True).hosts[0]  # CCFARM_HOSTS
    assert list(remote.requests(listed, express=False, cpp_stderr=b"", text=PLAIN)) == requests(
        remote, "h,ccfarm"
    )


@pytest.mark.parametrize(
    ("cmd", "env", "cpp_stderr", "text"),
    [
        ("gcc -O0 -c x.c", {}, b"", PLAIN),  # options that move code by column
        ("gcc -O2 -c x.c", {"CCFARM_MODE": "exact"}, b"", PLAIN),
        ("gcc -O2 -c x.c", {}, b"x.c:1: warning: W\n", PLAIN),  # the preprocessor spoke
        ("gcc -O2 -c x.cc", {}, b"", b"int c = __builtin_COLUMN();\n"),
        ("gcc -O2 -c x.cc", {}, b"", b"auto l = __builtin_source_location();\n"),
    ],
)
def test_ccfarm_host_exact_way_only(
    cmd: str, env: dict[str, str], cpp_stderr: bytes, text: bytes
) -> None:
    remote = remote_for(cmd, env)
    sent = requests(remote, "h,ccfarm", cpp_stderr=cpp_stderr, text=text)
    assert [(r.version, r.files, r.cheap) for r in sent] == [(protocol.CCFARM, True, False)]
    assert not remote.text_stands_for_source(cpp_stderr, text)  # nor here


def test_the_cheap_way_here_runs_what_a_ccfarmd_would() -> None:
    remote = remote_for("gcc -O2 -Iinc -DX=1 -MD -c src/x.c -o out/x.o", {"LANG": "C"})
    assert remote.text_stands_for_source(b"", PLAIN)
    argv = remote.here_argv("/usr/bin/gcc", "/t/ccfarm-1.i", "/t/ccfarm-1.o")
    assert argv == [
        "/usr/bin/gcc",
        "-O2",
        "-c",
        "/t/ccfarm-1.i",
        "-o",
        "/t/ccfarm-1.o",
        "-fno-diagnostics-show-caret",
    ]
    # no -o: the output still goes where asked
    implied = remote_for("gcc -O2 -c x.c").here_argv("/usr/bin/gcc", "/t/a.i", "/t/a.o")
    assert implied is not None and implied[-3:] == ["-o", "/t/a.o", "-fno-diagnostics-show-caret"]
    # a command a ccfarmd refuses is not run here this way either
    refused = RemotePlan(**{**vars(remote), "classic_argv": ("gcc", "-O2", "-c", "x.c", "-B/x")})
    assert refused.here_argv("/usr/bin/gcc", "/t/a.i", "/t/a.o") is None


def test_express_tells_the_daemon_both_ways() -> None:
    remote = remote_for("gcc -O2 -c x.c", {"LANG": "C"})
    cheap, exact = requests(remote, "h,ccfarm", express=True)
    assert cheap.env == exact.env == ("LANG=C", "CCFARM_PRIORITY=express")
    assert requests(remote, "h,lzo", express=True)[0].env == ()  # protocol 2 carries none


def test_predefines_come_back_first_in_the_exact_way() -> None:
    remote = remote_for("gcc -O2 -c x.c")
    cheap, exact = requests(remote, "h,ccfarm", text=PREDEF)
    assert exact.argv == (remote.exact_argv[0], "-include", "stdc-predef.h", *remote.exact_argv[1:])
    assert cheap.argv == remote.classic_argv  # the text has them already
    (pump,) = requests(remote, "h,lzo,cpp", text=PREDEF)
    assert pump.argv[1:3] == ("-include", "stdc-predef.h")
    assert requests(remote, "h,lzo,cpp", text=PLAIN)[0].argv == remote.exact_argv


def test_exact_way_is_planned_only_when_asked_for() -> None:
    remote = remote_for("gcc -O2 -c x.c")
    ways = remote.requests(parse_entry("h,ccfarm"), express=False, cpp_stderr=b"", text=PLAIN)
    assert next(ways).cheap  # the exact way (a scan of the text) waits for the next()


# -- judging answers -------------------------------------------------------------------------

CHEAP = Request(protocol.CCFARM_CPP, ("gcc",), (), files=False, cheap=True)
EXACT = Request(protocol.CCFARM, ("gcc",), (), files=True)
CLASSIC = Request(protocol.LZO, ("gcc",), (), files=False)


@pytest.mark.parametrize(
    ("request_", "status", "quiet", "verdict"),
    [
        (CHEAP, 0, True, "keep"),
        (CHEAP, 0, False, "exact way"),
        (CHEAP, 1 << 8, True, "failed"),
        (CHEAP, 1 << 8, False, "failed"),
        (EXACT, 0, False, "keep"),  # its warnings are the local ones
        (EXACT, 1 << 8, False, "failed"),
        (CLASSIC, 0, False, "keep"),
        (CLASSIC, 99 << 8, True, "failed"),
        (CLASSIC, 100 << 8, True, "host failed"),
        (EXACT, 116 << 8, True, "host failed"),
        (CHEAP, 9, True, "host failed"),  # killed by a signal
        (EXACT, 0x8B, True, "host failed"),  # a signal with a core dump
    ],
)
def test_judge(request_: Request, status: int, quiet: bool, verdict: str) -> None:
    assert judge(request_, status, quiet=quiet) == verdict


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 0xFFFF), st.booleans(), st.sampled_from([CHEAP, EXACT, CLASSIC]))
def test_judge_any_status(status: int, quiet: bool, request_: Request) -> None:
    verdict = judge(request_, status, quiet=quiet)
    assert (verdict == "host failed") == (status >> 8 >= 100 or bool(status & 0x7F))
    if verdict != "host failed":
        assert (verdict == "failed") == (status != 0)
        assert (verdict == "exact way") == (status == 0 and request_.cheap and not quiet)


def test_reply_notes() -> None:
    assert reply_note(CHEAP) == " from preprocessed text"
    assert reply_note(EXACT) == " (protocol 0x43460001)"
    assert reply_note(EXACT, after_cheap=True) == (
        " (protocol 0x43460001) after the preprocessed text said something"
    )
    assert reply_note(CLASSIC) == " (protocol 0x2)"


# -- files to send ------------------------------------------------------------------------------


def test_files_to_send() -> None:
    job = job_plan("gcc -imacros m.h -c x.c").job
    text = (
        b'# 0 "x.c"\n# 0 "<built-in>"\n# 1 "inc/../inc/a.h" 1\nint a;\n'
        b'# 1 "/abs/b.h" 1\n# 2 "x.c" 2\n# 1 "/w/src//"\n'
    )
    assert files_to_send(text, job, "/w/src") == [
        ("/w/src/x.c", False),
        (f"/w/src/inc/{DIRECTORY_MARKER}", True),
        ("/w/src/inc/a.h", False),
        ("/abs/b.h", False),
        ("/w/src/m.h", False),
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "..", ".", "c.h"]), min_size=1, max_size=5).map(
            "/".join
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_files_to_send_are_absolute_and_once(names: list[str], absolute: bool) -> None:
    job = job_plan("gcc -c x.c").job
    text = b"".join(f'# 1 "{"/" if absolute else ""}{n}" 1\n'.encode() for n in names)
    files = files_to_send(text, job, "/w")
    paths = [p for p, _ in files]
    assert len(paths) == len(set(paths))
    assert all(p.startswith("/") and "/../" not in p for p in paths)
    for path, marker in files:
        assert marker == path.endswith("/" + DIRECTORY_MARKER)


# -- where a job goes without a host ----------------------------------------------------------


def test_route_hosts() -> None:
    assert fallback.route_hosts(None, "bad slot count") == RunLocal(
        warning="bad host list (bad slot count); compiling locally",
        verbose="bad host list (bad slot count)",
        local_slots=CPU_COUNT,
    )
    assert fallback.route_hosts(None, source="x.c") == RunLocal(
        warning="failed to distribute x.c (no host list), running locally instead",
        verbose="no host list",
        local_slots=CPU_COUNT,
    )
    only_here = parse_hosts("localhost/3 --localslots=5")  # here on purpose: no warning
    assert fallback.route_hosts(only_here) == RunLocal(
        verbose="the host list names only localhost", local_slots=5
    )
    down = parse_hosts("h1,down")
    assert fallback.route_hosts(down, source="x.c") == RunLocal(
        warning="failed to distribute x.c (every listed host is down), running locally instead",
        verbose="every listed host is down",
        local_slots=CPU_COUNT,
    )
    unsupported = parse_hosts("me@h1 h2,auth h3,down")
    assert fallback.route_hosts(unsupported, source="x.c") == RunLocal(
        warning="failed to distribute x.c (ssh and ,auth hosts are not supported"
        " (me@h1 h2,auth)), running locally instead",
        verbose="ssh and ,auth hosts are not supported (me@h1 h2,auth)",
        local_slots=CPU_COUNT,
    )
    mixed = parse_hosts("me@h1 h2 --localslots=2")
    route = fallback.route_hosts(mixed)
    assert route == HostRoute(mixed, verbose="skipping ssh and ,auth hosts (not supported): me@h1")
    assert isinstance(route, HostRoute)
    assert route.tries == Tries(hosts=MAX_HOSTS_TRIED, local_slots=2)
    assert fallback.route_hosts(parse_hosts("h2")) == HostRoute(parse_hosts("h2"))


def test_empty_lists_zeroconf_and_failed_schedulers_warn_once() -> None:
    for text, reason in (
        ("", "empty host list"),
        ("  # nothing\n", "empty host list"),
        ("+zeroconf", "empty host list (+zeroconf is not supported)"),
    ):
        assert fallback.route_hosts(parse_hosts(text), source="x.c") == RunLocal(
            warning=f"failed to distribute x.c ({reason}), running locally instead",
            verbose=reason,
            local_slots=CPU_COUNT,
        )
    failed = "no scheduler answered (s:3634: timed out), marked for 60 s"
    here = parse_hosts("localhost/2")  # on purpose, but a scheduler failed first
    assert fallback.route_hosts(here, source="x.c", before=(failed,)) == RunLocal(
        warning=f"failed to distribute x.c ({failed}; the host list names only localhost),"
        " running locally instead",
        verbose=f"{failed}; the host list names only localhost",
        local_slots=2,
    )
    assert fallback.route_hosts(parse_hosts("h1 +zeroconf"), before=(failed,)) == HostRoute(
        parse_hosts("h1 +zeroconf"), verbose=f"{failed}; skipping +zeroconf (not supported)"
    )
    assert parse_hosts("+zeroconf").zeroconf and not parse_hosts("h1").zeroconf


def test_no_free_host_compiles_here_in_the_local_slots() -> None:
    backed_off = "every listed host failed lately (backed off)"
    assert fallback.no_free_host(Tries(3, 4), source="x.c") == RunLocal(
        warning=f"failed to distribute x.c ({backed_off}), running locally instead",
        verbose=backed_off,
        local_slots=4,
    )
    assert fallback.no_free_host(SCHEDULER_TRIES, tried=1) == RunLocal(
        verbose="the other listed hosts failed lately (backed off)", local_slots=CPU_COUNT
    )


def test_scheduler_answers() -> None:
    assert fallback.after_no_lease(False, "s:3634: refused", backoff=60) == UseHostLists(
        verbose="no scheduler answered (s:3634: refused), marked for 60 s"
    )
    assert fallback.after_no_lease(False, "s:3634: refused") == UseHostLists(
        verbose="no scheduler answered (s:3634: refused)"
    )
    assert fallback.after_no_lease(True, "no host for gcc") == RunLocal(
        verbose="the scheduler found no host (no host for gcc)", local_slots=CPU_COUNT
    )
    assert fallback.kept_local("no free host") == (
        "a local slot was free and the scheduler kept it here (no free host)"
    )
    grant = LeaseGranted(7, 8, "fast", "10.0.0.2", 4000, express=True)
    assert fallback.leased_host(grant) == HostSpec(
        "fast", "tcp", "10.0.0.2", 4000, 1, 3, ccfarm=True
    )
    assert fallback.lease_note(0.01234) == "leased in 0.012 s"
    assert fallback.lease_note(1.5) == "waited 1500 ms for a free host"
    assert fallback.lease_compiler(GCC.identity) == GCC.identity
    assert fallback.lease_compiler(CompilerIdentity("unknown", "", "x")) is None


def test_schedulers_that_failed_lately_are_skipped() -> None:
    a, b = ("a", 3634), ("b", 4000)
    assert fallback.schedulers_to_ask([a, b], [False, False]) == [a, b]
    assert fallback.schedulers_to_ask([a, b], [True, False]) == [b]  # the next one at once
    assert fallback.schedulers_to_ask([a, b], [True, True]) == UseHostLists(
        verbose="scheduler failed lately, skipped (backoff: a:3634 b:4000)"
    )
    assert fallback.schedulers_to_ask([], []) == []  # asking none: "no scheduler configured"


def test_a_lost_lease_is_a_failed_host_not_reported() -> None:
    lost = fallback.host_failed("lease revoked: host gone", lease_lost=True)
    assert (lost.outcome, lost.lease_lost) == ("host failed", True)
    assert not fallback.host_failed("timed out").lease_lost


def test_a_leased_host_is_a_ccfarmd() -> None:
    remote = remote_for("gcc -O2 -c x.c")
    host = fallback.leased_host(LeaseGranted(1, 2, "h", "127.0.0.1", 3633))
    sent = list(remote.requests(host, express=False, cpp_stderr=b"", text=PLAIN))
    assert [r.version for r in sent] == [protocol.CCFARM_CPP, protocol.CCFARM]


# -- after an attempt -------------------------------------------------------------------------

LISTED = Tries(hosts=MAX_HOSTS_TRIED, local_slots=4)


def after(
    attempt: fallback.Attempt, tried: int, tries: Tries, env: dict[str, str] | None = None
) -> Exit | RunLocal | NextHost:
    plan = job_plan("gcc -O2 -c x.c", env)
    return fallback.after_attempt(plan, attempt, host="h1", tried=tried, tries=tries)


@pytest.mark.parametrize("tries", [LISTED, SCHEDULER_TRIES])
def test_after_an_answer(tries: Tries) -> None:
    assert after(COMPILED, 1, tries) == Exit(0)
    # the local messages, in a local slot like every local compile
    assert after(COMPILE_FAILED, 1, tries) == RunLocal(
        verbose="h1 failed it; compiled again here for the messages", local_slots=tries.local_slots
    )
    assert after(PREPROCESSOR_FAILED, 1, tries) == RunLocal(
        verbose="the preprocessor failed; compiled again here for the messages",
        local_slots=tries.local_slots,
    )


def test_failed_hosts_then_here() -> None:
    failed = fallback.host_failed("timed out")
    elsewhere = "h1 failed (timed out); compiling x.c elsewhere"
    why = "h1 failed (timed out)"
    assert after(failed, 1, LISTED) == NextHost(warning=elsewhere, verbose=why)
    assert after(failed, 2, LISTED) == NextHost(warning=elsewhere, verbose=why)
    assert after(failed, 3, LISTED) == RunLocal(
        warning="h1 failed (timed out); compiling x.c locally", verbose=why, local_slots=4
    )
    plan = job_plan("gcc -O2 -c x.c")
    reported = fallback.after_attempt(
        plan, failed, host="h1", tried=1, tries=SCHEDULER_TRIES, reported=True
    )
    assert reported == RunLocal(
        warning="h1 failed (timed out); compiling x.c locally",
        verbose="h1 failed (timed out) and was reported to the scheduler",
        local_slots=CPU_COUNT,
    )


@pytest.mark.parametrize("tries", [LISTED, SCHEDULER_TRIES])
@pytest.mark.parametrize("env", [{"CCFARM_FALLBACK": "0"}, {"DISTCC_FALLBACK": "0"}])
def test_no_fallback_exits_116(tries: Tries, env: dict[str, str]) -> None:
    failed = fallback.host_failed("cannot connect: Connection refused")
    assert after(failed, 1, tries, env) == Exit(
        EXIT_NO_HOSTS,
        warning="h1 failed (cannot connect: Connection refused); CCFARM_FALLBACK=0, giving up",
        verbose="h1 failed (cannot connect: Connection refused); CCFARM_FALLBACK=0",
    )
    assert EXIT_NO_HOSTS == 116
    # a compile error is no host failure
    assert isinstance(after(COMPILE_FAILED, 1, tries, env), RunLocal)
    lost = fallback.host_failed("lease revoked: host gone", lease_lost=True)
    assert after(lost, 1, tries, env) == Exit(
        EXIT_NO_HOSTS,
        warning="h1 failed (lease revoked: host gone); CCFARM_FALLBACK=0, giving up",
        verbose="h1 failed (lease revoked: host gone), the scheduler knew; CCFARM_FALLBACK=0",
    )


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(0, 8),
    st.booleans(),
    st.sampled_from([COMPILED, COMPILE_FAILED, PREPROCESSOR_FAILED, fallback.host_failed("x")]),
)
def test_after_attempt_any(
    tried: int, hosts: int, local_slots: int, allowed: bool, attempt: fallback.Attempt
) -> None:
    tries = Tries(hosts, local_slots)
    decision = after(attempt, tried, tries, {"CCFARM_FALLBACK": "1" if allowed else "0"})
    if attempt == COMPILED:
        assert decision == Exit(0)
    elif attempt.outcome != "host failed":
        assert isinstance(decision, RunLocal) and decision.local_slots == local_slots
        assert not decision.warning  # the local compiler's messages say it all
    elif not allowed:
        assert isinstance(decision, Exit) and decision.status == 116
    elif tried < hosts:
        assert isinstance(decision, NextHost)
    else:
        assert isinstance(decision, RunLocal) and decision.local_slots == local_slots
    assert "\n" not in decision.verbose and "\n" not in decision.warning


def test_a_listed_job_walks_three_hosts_then_compiles_here() -> None:
    """The host-list loop, decisions only: three failures, then a local slot."""
    plan = job_plan("gcc -O2 -c x.c")
    route = fallback.route_hosts(HostList(tuple(parse_entry(h) for h in ("a", "b", "c", "d"))))
    assert isinstance(route, HostRoute)
    said = []
    for tried, host in enumerate(("a", "b", "c", "d"), start=1):
        decision = fallback.after_attempt(
            plan, fallback.host_failed("timed out"), host=host, tried=tried, tries=route.tries
        )
        said.append(decision.warning)
        if not isinstance(decision, NextHost):
            break
    assert said == [
        "a failed (timed out); compiling x.c elsewhere",
        "b failed (timed out); compiling x.c elsewhere",
        "c failed (timed out); compiling x.c locally",
    ]
    assert decision == RunLocal(
        warning=said[-1], verbose="c failed (timed out)", local_slots=CPU_COUNT
    )


# -- purity -------------------------------------------------------------------------------


def test_the_plan_does_no_io() -> None:
    """Planning a job end to end imports nothing that talks to the world."""
    code = """
import sys
from ccfarm.client.hosts.hostlist import parse_entry
from ccfarm.client.job import fallback, plan
from ccfarm.client.job.compilerinfo import CompilerInfo
from ccfarm.client.job.invocation import Invocation
from ccfarm.model import CompilerIdentity
env = {"LANG": "C"}
p = plan.plan_job(Invocation(("gcc", "-O2", "-c", "x.c"), "/usr/bin/gcc"), env,
                  plan.read_settings(env), terminal=False)
r = p.remote(CompilerInfo(CompilerIdentity("gcc", "12", "t"), ("/usr/include",)), env,
             which=lambda n: None)
reqs = list(r.requests(parse_entry("h,ccfarm"), express=True, cpp_stderr=b"", text=b"int x;"))
plan.files_to_send(b'# 1 "a.h" 1\\n', p.job, "/w")
failed = fallback.host_failed("x")
fallback.after_attempt(p, failed, host="h", tried=1, tries=fallback.SCHEDULER_TRIES)
loaded = {"socket", "_socket", "subprocess", "select", "selectors", "fcntl",
          "ccfarm.client.hosts.slots", "ccfarm.client.job.run", "ccfarm.client.job.lease",
          "ccfarm.client.job.transport"}
print(sorted(loaded & set(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
