"""A compile job as a plan: what to run where and what to send, decided without doing it.

Pure: no sockets, no processes, no files, no clock; the environment is the
Mapping passed in. The shell (`run.py`) carries the plan out and brings
back what only doing tells; each is answered here or in `fallback`:

    plan_job(inv, env, ...)          RunLocal (and why), or a JobPlan: the
                                     preprocessor's command, the settings
    JobPlan.remote(info, ...)        RemotePlan, once the compiler is known: the
                                     name to send, the command of each way
    RemotePlan.requests(host, ...)   the requests for one host, in order, given
                                     the preprocessed text
    files_to_send(text, job, cwd)    the files the exact way sends
    judge(request, status, ...)      keep the object, re-run here, the exact way,
                                     or the host failed
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Mapping

from ccfarm._record import record
from ccfarm.client.hosts.hostlist import CPU_COUNT
from ccfarm.client.job.fallback import RunLocal
from ccfarm.compiler.args import CompileJob, LocalOnly, analyse
from ccfarm.compiler.commands import (
    local_preprocess_argv,
    mentions_location_builtins,
    preprocessed_is_exact,
    reads_predefines,
    remote_argv_full,
    remote_argv_stripped,
    rewrite_compiler_name,
)

MYPY = False
if MYPY:  # types only (start-up time)
    from collections.abc import Callable
    from typing import Literal

    from ccfarm.client.hosts.hostlist import HostSpec
    from ccfarm.client.job.compilerinfo import CompilerInfo
    from ccfarm.client.job.invocation import Invocation

    Verdict = Literal["keep", "failed", "exact way", "host failed"]

#: set for the compilers ccfarm starts: a compiler that runs ccfarm again compiles here
SAFEGUARD = "CCFARM_SAFEGUARD"
#: with these set, the compile reads or writes things a daemon cannot see
LOCAL_ONLY_ENV = (
    "CPATH",
    "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH",
    "OBJC_INCLUDE_PATH",
    "DEPENDENCIES_OUTPUT",
    "SUNPRO_DEPENDENCIES",
    "GCC_EXEC_PREFIX",
    "COMPILER_PATH",
)
_SUFFIX = {"c++": ".ii", "objective-c": ".mi", "objective-c++": ".mii"}


# -- settings ------------------------------------------------------------------


@record
class Settings:
    """The client's knobs, read once from the environment."""

    fallback: bool  # compile here after a host failed (else exit 116)
    connect_timeout: float
    io_timeout: float
    backoff: float  # seconds a failed listed host is left alone
    pause: float  # between tries while every slot is busy
    verbose: bool
    lease_wait: float  # for a free slot, once the scheduler said the request waits
    scheduler_timeout: float  # connect to a scheduler, and its first answer
    checked_preprocessed: bool  # ccfarmd hosts: the cheap way first, where it is exact
    secret_file: str  # the farm secret's (CCFARM_SECRET_FILE; "": none)
    #: LZO bodies packed (CCFARM_COMPRESS=lzo), else stored: as fast as the link
    packed: bool = False
    #: TLS: (CCFARM_TLS_CERT, CCFARM_TLS_KEY, CCFARM_TLS_CA), each "" when not set
    tls: tuple[str, str, str] = ("", "", "")
    log: str = ""  # the wrapper's own messages go to this file, not stderr ("": stderr)
    #: niceness added to a compile the farm's choice keeps here (CCFARM_LOCAL_NICE)
    local_nice: int = 10


def read_settings(env: Mapping[str, str]) -> Settings:
    return Settings(
        fallback=_flag(env, "CCFARM_FALLBACK", _flag(env, "DISTCC_FALLBACK", True)),
        connect_timeout=_number(env, "CCFARM_CONNECT_TIMEOUT", 4.0),
        io_timeout=_number(env, "CCFARM_IO_TIMEOUT", _number(env, "DISTCC_IO_TIMEOUT", 300)),
        backoff=_number(env, "CCFARM_BACKOFF_PERIOD", _number(env, "DISTCC_BACKOFF_PERIOD", 60.0)),
        pause=_number(env, "DISTCC_PAUSE_TIME_MSEC", 1000.0) / 1000.0,
        verbose=_flag(env, "CCFARM_VERBOSE", _flag(env, "DISTCC_VERBOSE", False)),
        lease_wait=_number(env, "CCFARM_LEASE_WAIT", 60.0),
        scheduler_timeout=_number(env, "CCFARM_SCHEDULER_TIMEOUT", 2.0),
        checked_preprocessed=env.get("CCFARM_MODE", "auto") != "exact",
        secret_file=env.get("CCFARM_SECRET_FILE", ""),
        packed=env.get("CCFARM_COMPRESS", "off") == "lzo",
        tls=(
            env.get("CCFARM_TLS_CERT", ""),
            env.get("CCFARM_TLS_KEY", ""),
            env.get("CCFARM_TLS_CA", ""),
        ),
        log=env.get("CCFARM_LOG") or env.get("DISTCC_LOG") or "",
        local_nice=_niceness(env, "CCFARM_LOCAL_NICE", 10),
    )


def _niceness(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        value = int(env[name])
    except (KeyError, ValueError):
        return default
    return value if 0 <= value <= 19 else default


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    return default if value not in ("0", "1") else value == "1"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env[name])
    except (KeyError, ValueError):
        return default
    return value if value > 0 else default


# -- the plan ---------------------------------------------------------------------


@record
class JobPlan:
    """A job that may run elsewhere: what is known before the compiler is asked.

    The shell starts the local preprocessor from this at once, and asks for
    the compiler's identity (`remote`) while it runs.
    """

    job: CompileJob
    settings: Settings
    compiler_path: str  # the real compiler here
    preprocessed_suffix: str  # of the preprocessor's output file
    schedulers: str  # CCFARM_SCHEDULER ("": host lists only)
    colour: tuple[str, ...]  # options that make remote messages coloured as here

    def preprocessor_argv(self, output: str) -> list[str]:
        """The local preprocessor's command, writing the text to `output` (and the .d file)."""
        argv = local_preprocess_argv(self.job, output)
        argv[0] = self.compiler_path  # gcc finds its cc1 relative to argv[0]
        return argv

    def remote(
        self,
        info: CompilerInfo,
        env: Mapping[str, str],
        *,
        which: Callable[[str], str | None],
    ) -> RemotePlan:
        """Everything a remote attempt sends; `which(name)` finds a compiler on PATH."""
        from ccfarm.protocol import CLIENT_ENVIRONMENT

        job = self.job
        name = rewrite_compiler_name(
            posixpath.basename(job.argv[0]), which=which, target=info.identity.target
        )
        classic = remote_argv_stripped(job)
        exact = remote_argv_full(job, system_dirs=info.system_dirs, extra=self.colour)
        return RemotePlan(
            job=job,
            compiler=name,
            classic_argv=(name, *classic[1:]),
            exact_argv=(name, *exact[1:]),
            forwarded=tuple(f"{k}={env[k]}" for k in CLIENT_ENVIRONMENT if k in env),
            cheap=self.settings.checked_preprocessed and preprocessed_is_exact(job),
        )


def plan_job(
    inv: Invocation, env: Mapping[str, str], settings: Settings, *, terminal: bool
) -> RunLocal | JobPlan:
    """Compile here (and why), or the plan for elsewhere; `terminal`: stderr is a tty."""
    if env.get(SAFEGUARD):
        return RunLocal()
    analysis = analyse(inv.argv)
    # (a local compile holds one of this machine's local slots, as in distcc;
    # a compiler that ccfarm started, above, takes none: its caller holds one)
    if isinstance(analysis, LocalOnly):
        return RunLocal(verbose=f"not distributed: {analysis.reason}", local_slots=CPU_COUNT)
    named = [name for name in LOCAL_ONLY_ENV if name in env]
    if named:
        return RunLocal(verbose=f"not distributed: {' '.join(named)} set", local_slots=CPU_COUNT)
    return JobPlan(
        job=analysis,
        settings=settings,
        compiler_path=inv.compiler_path,
        preprocessed_suffix=_SUFFIX.get(analysis.language, ".i"),
        schedulers=env.get("CCFARM_SCHEDULER", ""),
        colour=_colour_flags(analysis, env, terminal),
    )


def _colour_flags(job: CompileJob, env: Mapping[str, str], terminal: bool) -> tuple[str, ...]:
    """Ask for colours remotely when a local run would colour (a terminal)."""
    if any(a.startswith(("-fdiagnostics-color", "-fno-diagnostics-color")) for a in job.argv):
        return ()
    if terminal and env.get("TERM", "dumb") != "dumb":
        return ("-fdiagnostics-color=always",)
    return ()


@record
class Request:
    """One request to a host: the command, and what goes with it."""

    version: int  # the protocol spoken
    argv: tuple[str, ...]  # the compiler name to send first
    env: tuple[str, ...]  # ENVV items ((): the version carries none)
    #: sources and headers (the host preprocesses, and reports the preprocessor's
    #: messages itself), else the preprocessed text (its messages are replayed from here)
    files: bool
    #: the cheap way: the preprocessed text to a ccfarmd, kept only if the compile
    #: succeeded without a word (else the exact way decides)
    cheap: bool = False


@record
class RemotePlan:
    """A job ready to send: the compiler name and the command lines, per way."""

    job: CompileJob
    compiler: str  # the name sent (distcc's cross-name rule applied)
    classic_argv: tuple[str, ...]  # for the preprocessed text: protocols 1, 2, the cheap way
    exact_argv: tuple[str, ...]  # for sources and headers: protocol 3, ccfarm's
    forwarded: tuple[str, ...]  # the client's environment items (ccfarm's protocols)
    cheap: bool  # these options allow the cheap way (and CCFARM_MODE does)

    def requests(
        self, host: HostSpec, *, express: bool, cpp_stderr: bytes, text: bytes
    ) -> Iterator[Request]:
        """The requests for `host`, in order: each next one only if `judge` asks for it.

        The cheap way first to a ccfarmd where it gives the local object: the
        options allow it, the local preprocessor was silent, and the code does
        not ask for its own column. Then the host's own way: ccfarm's
        protocol to a ccfarmd, else the host list's version (1, 2 or 3).
        An express job (a lease beyond the host's slots) says so to the daemon.
        """
        from ccfarm import protocol

        env = (*self.forwarded, f"{protocol.PRIORITY}=express") if express else self.forwarded
        if host.ccfarm and self.text_stands_for_source(cpp_stderr, text):
            yield Request(protocol.CCFARM_CPP, self.classic_argv, env, files=False, cheap=True)
        version = protocol.CCFARM if host.ccfarm else host.protocol
        if not protocol.sends_files(version):
            yield Request(version, self.classic_argv, (), files=False)
            return
        argv = self.exact_argv
        if reads_predefines(text):
            # -nostdinc also drops gcc's implicit stdc-predef.h; put it back first
            argv = (argv[0], "-include", "stdc-predef.h", *argv[1:])
        yield Request(version, argv, env if protocol.sends_env(version) else (), files=True)

    def text_stands_for_source(self, cpp_stderr: bytes, text: bytes) -> bool:
        """May a compile of the preprocessed text give the local object (the
        cheap way)? The options allow it, the local preprocessor was silent,
        and the code does not ask for its own column; the object is kept only
        if that compile says nothing either."""
        return self.cheap and not cpp_stderr and not mentions_location_builtins(text)

    def here_argv(self, compiler_path: str, text_path: str, output_path: str) -> list[str] | None:
        """The cheap way on this machine: compile the preprocessed text at
        `text_path` into `output_path` with the command a ccfarmd would run
        for it; None where a ccfarmd would refuse that command. (For a job the
        farm keeps here once its text is made: no second preprocessing.)"""
        from ccfarm import protocol
        from ccfarm.compiler.daemon_args import (
            Refusal,
            check_request_args,
            daemon_argv_preprocessed,
        )

        checked = check_request_args(self.classic_argv, version=protocol.CCFARM_CPP)
        if isinstance(checked, Refusal):
            return None
        argv = daemon_argv_preprocessed(checked, text_path, output_path)
        return [compiler_path, *argv[1:]]


def judge(request: Request, wait_status: int, *, quiet: bool) -> Verdict:
    """What a host's answer to `request` means; `quiet`: no stdout or stderr came."""
    if wait_status >> 8 >= 100 or wait_status & 0x7F:
        return "host failed"  # distcc's statuses 100 and up, or the compiler was killed
    if wait_status != 0:
        return "failed"  # a local re-run shows the local messages
    if request.cheap and not quiet:
        return "exact way"  # it said something: the exact way decides
    return "keep"


def host_failure(wait_status: int) -> str:
    return f"host could not run the compiler (status {wait_status:#x})"


def reply_note(request: Request, *, after_cheap: bool = False) -> str:
    """How the answer that was kept came (for the job's verbose line)."""
    if request.cheap:
        return " from preprocessed text"
    spoke = " after the preprocessed text said something" if after_cheap else ""
    return f" (protocol {request.version:#x}){spoke}"


# -- files to send ------------------------------------------------------------------

DIRECTORY_MARKER = ".ccfarm-dir"


def files_to_send(preprocessed: bytes, job: CompileJob, cwd: str) -> list[tuple[str, bool]]:
    """(absolute path, is an empty directory marker) of every file the daemon needs.

    The local preprocessor's line markers name every file it read; files read
    by `-imacros` leave none, so they come from the arguments. Where a path
    climbs with `..` through a directory, that directory must exist on the
    daemon: an empty marker file makes it.
    """
    from ccfarm.compiler.linemarkers import included_files

    names = [os.fsdecode(n) for n in included_files(preprocessed)]
    names += [job.argv[i + 1] for i, a in enumerate(job.argv[:-1]) if a == "-imacros"]
    seen: set[str] = set()
    files: list[tuple[str, bool]] = []
    for name in names:
        joined = posixpath.join(cwd, name)
        for directory in _climbed_directories(joined):
            marker = posixpath.join(directory, DIRECTORY_MARKER)
            if marker not in seen:
                seen.add(marker)
                files.append((marker, True))
        path = posixpath.normpath(joined)
        if path not in seen:
            seen.add(path)
            files.append((path, False))
    return files


def _climbed_directories(path: str) -> list[str]:
    """Directories that `..` components of `path` step out of."""
    if "/../" not in path and not path.endswith("/.."):
        return []
    parts = path.split("/")
    return [
        posixpath.normpath("/".join(parts[:i]) or "/")
        for i, p in enumerate(parts)
        if p == ".." and i > 0
    ]


__all__ = [
    "DIRECTORY_MARKER",
    "LOCAL_ONLY_ENV",
    "SAFEGUARD",
    "JobPlan",
    "RemotePlan",
    "Request",
    "Settings",
    "files_to_send",
    "host_failure",
    "judge",
    "plan_job",
    "read_settings",
    "reply_note",
]
