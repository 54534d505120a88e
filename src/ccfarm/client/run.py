"""One compile job, start to end: decide, preprocess, send, write, replay.

Any failure on the remote path that is not the compiler's own verdict (the
host refused, vanished, timed out, spoke nonsense) backs the host off and
moves on: another host, or the local compiler. The build only ever sees
what a local compile would have shown.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence

from ccfarm.client import hosts as hostlist
from ccfarm.client import slots
from ccfarm.client.invocation import Invocation
from ccfarm.client.outputs import write_atomically
from ccfarm.client.transport import HostFailure, JobResult, run_remote
from ccfarm.compiler.args import (
    CompileJob,
    LocalOnly,
    analyse,
    local_preprocess_argv,
    remote_argv_full,
    remote_argv_stripped,
    rewrite_compiler_name,
)
from ccfarm.errors import CcfarmError

SAFEGUARD = "CCFARM_SAFEGUARD"
EXIT_NO_HOSTS = 116
MAX_HOSTS_TRIED = 3
#: variables sent with the ccfarm protocol so remote output matches local
FORWARDED_ENV = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "SOURCE_DATE_EPOCH",
                 "GCC_COLORS", "GCC_URLS", "TERM_URLS", "TERM")


def warn(message: str) -> None:
    sys.stderr.write(f"ccfarm: warning: {message}\n")
    sys.stderr.flush()


class _LocalPreprocessFailed(CcfarmError):
    pass


class Settings:
    """The client's knobs, read once from the environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.fallback = _flag(env, "CCFARM_FALLBACK", _flag(env, "DISTCC_FALLBACK", True))
        self.connect_timeout = _number(env, "CCFARM_CONNECT_TIMEOUT", 4.0)
        self.io_timeout = _number(env, "CCFARM_IO_TIMEOUT", _number(env, "DISTCC_IO_TIMEOUT", 300))
        self.backoff = _number(env, "CCFARM_BACKOFF_PERIOD",
                               _number(env, "DISTCC_BACKOFF_PERIOD", 60.0))
        self.pause = _number(env, "DISTCC_PAUSE_TIME_MSEC", 1000.0) / 1000.0
        self.verbose = _flag(env, "CCFARM_VERBOSE", _flag(env, "DISTCC_VERBOSE", False))


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    return default if value not in ("0", "1") else value == "1"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env[name])
    except (KeyError, ValueError):
        return default
    return value if value > 0 else default


def compile_job(inv: Invocation, env: Mapping[str, str]) -> int:
    """Run the job somewhere; return the exit status the build must see."""
    settings = Settings(env)
    if env.get(SAFEGUARD):
        return exec_local(inv, env, None)
    analysis = analyse(inv.argv)
    if isinstance(analysis, LocalOnly):
        _verbose(settings, f"local: {analysis.reason}")
        return exec_local(inv, env, None)
    try:
        listing = hostlist.hosts_from_environment(env, read_file=_read_text)
    except hostlist.HostListError as exc:
        warn(f"bad host list ({exc}); compiling locally")
        listing = None
    if listing is None or not any(h.kind == "tcp" for h in listing.hosts):
        return run_local(inv, env, listing, settings)
    state = slots.state_dir(env)
    tried: list[hostlist.HostSpec] = []
    for _ in range(MAX_HOSTS_TRIED):
        candidates = [h for h in listing.hosts if h not in tried]
        slot = slots.acquire_slot(
            state, candidates, now=time.time(), backoff_period=settings.backoff,
            sleep=time.sleep, pause=settings.pause, deadline=None, rng=random.Random(),
            randomize=listing.randomize,
        )
        if slot is None:
            break
        if slot.spec.kind == "local":
            return exec_local(inv, env, slot)
        with slot:
            try:
                outcome = _distribute(inv, analysis, slot.spec, env, settings)
            except HostFailure as exc:
                slots.mark_backoff(state, slot.spec)
                tried.append(slot.spec)
                if not settings.fallback:
                    warn(f"{slot.spec.text} failed ({exc}); CCFARM_FALLBACK=0, giving up")
                    return EXIT_NO_HOSTS
                warn(f"{slot.spec.text} failed ({exc}); compiling {analysis.source} "
                     f"{'elsewhere' if len(tried) < MAX_HOSTS_TRIED else 'locally'}")
                continue
            except _LocalPreprocessFailed:
                return exec_local(inv, env, None)  # shows the preprocessor's own errors
        slots.clear_backoff(state, slot.spec)
        if outcome is not None:
            return outcome
        # the remote compiler failed: re-run here so the messages are the local ones
        return exec_local(inv, env, None)
    return run_local(inv, env, listing, settings)


def _distribute(
    inv: Invocation, job: CompileJob, spec: hostlist.HostSpec, env: Mapping[str, str],
    settings: Settings,
) -> int | None:
    """Compile on `spec`; the exit status, or None when the compile failed there."""
    from ccfarm import protocol

    version = protocol.CCFARM if spec.ccfarm else spec.protocol
    with tempfile.TemporaryDirectory(prefix="ccfarm-") as tmp:
        i_path = os.path.join(tmp, "pp" + _preprocessed_suffix(job))
        cpp_stderr = _preprocess(inv, job, i_path, env)
        with open(i_path, "rb") as f:
            preprocessed = f.read()
    info = _compiler_info(inv, job, env)
    name = rewrite_compiler_name(os.path.basename(job.argv[0]), which=_which(env),
                                 target=info.target)
    if protocol.sends_files(version):
        from ccfarm.client import sources

        argv = remote_argv_full(job, system_dirs=info.system_dirs, extra=_color_flags(job, env))
        header = protocol.JobHeader(
            version, _encode([name, *argv[1:]]), os.fsencode(os.getcwd()),
            _encode(f"{k}={env[k]}" for k in FORWARDED_ENV if k in env)
            if version == protocol.CCFARM else (),
        )
        files = sources.entries(preprocessed, job, os.getcwd())
        request = protocol.encode_request(header, files=files)
    else:
        argv = remote_argv_stripped(job)
        header = protocol.JobHeader(version, _encode([name, *argv[1:]]))
        request = protocol.encode_request(header, source=preprocessed)
    result = run_remote(spec.host, spec.port, request, version,
                        connect_timeout=settings.connect_timeout, io_timeout=settings.io_timeout)
    _verbose(settings, f"{job.source} compiled on {spec.text} (protocol {version:#x}), "
                       f"status {result.wait_status:#x}")
    if result.wait_status != 0:
        if result.wait_status >> 8 >= 100 or result.wait_status & 0x7F:
            raise HostFailure(f"host could not run the compiler (status {result.wait_status:#x})")
        return None
    return _deliver(job, result, b"" if protocol.sends_files(version) else cpp_stderr)


def _deliver(job: CompileJob, result: JobResult, cpp_stderr: bytes) -> int | None:
    try:
        write_atomically(job.output, result.obj)
    except OSError:
        return None  # let the local compiler report it exactly
    _write(sys.stdout, result.stdout)
    _write(sys.stderr, cpp_stderr + result.stderr)
    return 0


def _preprocess(inv: Invocation, job: CompileJob, i_path: str, env: Mapping[str, str]) -> bytes:
    argv = local_preprocess_argv(job, i_path)
    proc = subprocess.run(
        [inv.compiler_path, *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, env={**env, SAFEGUARD: "1"}, check=False,
    )
    if proc.returncode != 0:
        raise _LocalPreprocessFailed()
    return proc.stderr


def _compiler_info(inv: Invocation, job: CompileJob, env: Mapping[str, str]):  # type: ignore[no-untyped-def]
    from ccfarm.client.compilerinfo import compiler_info

    return compiler_info(inv.compiler_path, job.language, job.argv[1:],
                         os.path.join(slots.state_dir(env), "cache"))


def _color_flags(job: CompileJob, env: Mapping[str, str]) -> list[str]:
    """Ask for colours remotely when a local run would colour (a terminal)."""
    if any(a.startswith(("-fdiagnostics-color", "-fno-diagnostics-color")) for a in job.argv):
        return []
    if os.isatty(2) and env.get("TERM", "dumb") != "dumb":
        return ["-fdiagnostics-color=always"]
    return []


def _preprocessed_suffix(job: CompileJob) -> str:
    return {"c++": ".ii", "objective-c": ".mi", "objective-c++": ".mii"}.get(job.language, ".i")


def run_local(
    inv: Invocation, env: Mapping[str, str], listing: hostlist.HostList | None, settings: Settings
) -> int:
    """Compile here, holding one of this machine's local slots."""
    limit = listing.local_slots if listing is not None else 0
    if limit <= 0:
        return exec_local(inv, env, None)
    slot = slots.acquire_local_slot(
        slots.state_dir(env), limit, sleep=time.sleep, pause=settings.pause, deadline=None
    )
    return exec_local(inv, env, slot)


def exec_local(inv: Invocation, env: Mapping[str, str], slot: slots.Slot | None) -> int:
    """Replace this process with the real compiler (a held slot stays locked)."""
    if slot is not None:
        os.set_inheritable(slot.fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(inv.compiler_path, list(inv.argv), {**env, SAFEGUARD: "1"})
    return 127  # not reached


def _which(env: Mapping[str, str]):  # type: ignore[no-untyped-def]
    from ccfarm.client.invocation import find_compiler

    path = env.get("PATH", os.defpath)
    return lambda name: find_compiler(name, path)


def _encode(items: Sequence[str] | object) -> tuple[bytes, ...]:
    return tuple(os.fsencode(s) for s in items)  # type: ignore[attr-defined]


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _write(stream: object, data: bytes) -> None:
    if data:
        out = stream.buffer  # type: ignore[attr-defined]
        out.write(data)
        out.flush()


def _verbose(settings: Settings, message: str) -> None:
    if settings.verbose:
        sys.stderr.write(f"ccfarm: {message}\n")
