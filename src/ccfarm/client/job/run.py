"""One compile job, start to end: decide, preprocess, send, write, replay.

Any failure on the remote path that is not the compiler's own verdict (the
host refused, vanished, timed out, spoke nonsense) backs the host off and
moves on: another host, or the local compiler. The build only ever sees
what a local compile would have shown.

Start-up matters (this runs once per job): the local preprocessor is
started as soon as the job is known to be distributable, and the rest
(host choice, protocol imports, connecting) happens while it runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Mapping

from ccfarm.client.hosts import hostlist, slots
from ccfarm.client.job.invocation import Invocation, find_compiler
from ccfarm.client.job.process import Spawned, spawn, temp_path
from ccfarm.compiler.args import CompileJob, LocalOnly, analyse, local_preprocess_argv
from ccfarm.errors import CcfarmError, HostFailure

MYPY = False
if MYPY:  # imported only when used (start-up time)
    from ccfarm.client.job.compilerinfo import CompilerInfo
    from ccfarm.client.job.transport import JobResult

SAFEGUARD = "CCFARM_SAFEGUARD"
EXIT_NO_HOSTS = 116
MAX_HOSTS_TRIED = 3
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


def warn(message: str) -> None:
    sys.stderr.write(f"ccfarm: warning: {message}\n")
    sys.stderr.flush()


class _LocalPreprocessFailed(CcfarmError):
    pass


class Settings:
    """The client's knobs, read once from the environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.fallback = _flag(env, "CCFARM_FALLBACK", _flag(env, "DISTCC_FALLBACK", True))
        self.connect_timeout = _number(env, "CCFARM_CONNECT_TIMEOUT", 4.0)
        self.io_timeout = _number(env, "CCFARM_IO_TIMEOUT", _number(env, "DISTCC_IO_TIMEOUT", 300))
        self.backoff = _number(
            env, "CCFARM_BACKOFF_PERIOD", _number(env, "DISTCC_BACKOFF_PERIOD", 60.0)
        )
        self.pause = _number(env, "DISTCC_PAUSE_TIME_MSEC", 1000.0) / 1000.0
        self.verbose = _flag(env, "CCFARM_VERBOSE", _flag(env, "DISTCC_VERBOSE", False))
        self.lease_wait = _number(env, "CCFARM_LEASE_WAIT", 60.0)
        #: ccfarmd hosts: compile the preprocessed text where that is exact
        self.checked_preprocessed = env.get("CCFARM_MODE", "auto") != "exact"


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    return default if value not in ("0", "1") else value == "1"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env[name])
    except (KeyError, ValueError):
        return default
    return value if value > 0 else default


class _Preprocessing:
    """The local preprocessor run, started early, collected when needed."""

    def __init__(self, inv: Invocation, job: CompileJob, env: Mapping[str, str]) -> None:
        suffix = {"c++": ".ii", "objective-c": ".mi", "objective-c++": ".mii"}
        self.path = temp_path(suffix.get(job.language, ".i"), env)
        argv = local_preprocess_argv(job, self.path)
        argv[0] = inv.compiler_path  # gcc finds its cc1 relative to argv[0]
        self.proc: Spawned = spawn(inv.compiler_path, argv, {**env, SAFEGUARD: "1"})
        self._output: tuple[bytes, bytes] | None = None
        _live.append(self)

    def result(self) -> tuple[bytes, bytes]:
        """(preprocessed text, preprocessor stderr); raises if it failed."""
        if self._output is None:
            code, stderr = self.proc.wait()
            if code != 0:
                raise _LocalPreprocessFailed()
            with open(self.path, "rb") as f:
                self._output = (f.read(), stderr)
        return self._output

    def discard(self) -> None:
        self.proc.wait()  # first: the preprocessor could create the file again
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with contextlib.suppress(ValueError):
            _live.remove(self)


#: preprocessor runs not discarded yet (exec_local ends them: no `finally` runs after exec)
_live: list[_Preprocessing] = []


def compile_job(inv: Invocation, env: Mapping[str, str]) -> int:
    """Run the job somewhere; return the exit status the build must see."""
    settings = Settings(env)
    if env.get(SAFEGUARD):
        return exec_local(inv, env, None)
    analysis = analyse(inv.argv)
    if isinstance(analysis, LocalOnly):
        _verbose(settings, f"local: {analysis.reason}")
        return exec_local(inv, env, None)
    if any(name in env for name in LOCAL_ONLY_ENV):
        _verbose(settings, "local: compiler environment variables set")
        return exec_local(inv, env, None)
    if env.get("CCFARM_SCHEDULER"):
        cpp = _Preprocessing(inv, analysis, env)
        try:
            status = _via_scheduler(inv, analysis, cpp, env, settings)
        finally:
            cpp.discard()
        if status is not None:
            return status
    try:
        listing = hostlist.hosts_from_environment(env, read_file=_read_text)
    except hostlist.HostListError as exc:
        warn(f"bad host list ({exc}); compiling locally")
        listing = None
    unsupported = [h.text for h in listing.hosts if _unsupported(h)] if listing else []
    if listing is None or not any(h.kind == "tcp" and h.usable for h in listing.hosts):
        if unsupported:
            warn(f"ssh and ,auth hosts are not supported ({' '.join(unsupported)}); compiling here")
        return run_local(inv, env, listing, settings)
    if unsupported:
        _verbose(settings, f"skipping ssh and ,auth hosts (not supported): {' '.join(unsupported)}")
    cpp = _Preprocessing(inv, analysis, env)
    try:
        return _run_remote_or_local(inv, analysis, listing, cpp, env, settings)
    finally:
        cpp.discard()


def _via_scheduler(
    inv: Invocation,
    job: CompileJob,
    cpp: _Preprocessing,
    env: Mapping[str, str],
    settings: Settings,
) -> int | None:
    """Lease a host from the scheduler and compile there.

    None when no scheduler answered: the caller then uses the host lists.
    """
    from ccfarm.client.job.lease import NoLease, parse_schedulers, request_lease

    info = _compiler_info(inv, job, env)
    compiler = info.identity if info.identity.known else None
    # Preprocess before asking: a slot leased now would sit idle, kept from
    # other builds, while this machine preprocesses (slow when it is busy).
    # Its size tells the scheduler roughly what the job costs: big jobs go
    # to fast hosts.
    try:
        size = len(cpp.result()[0])
    except _LocalPreprocessFailed:
        return exec_local(inv, env, None)  # shows the preprocessor's own errors
    asked = time.monotonic()
    try:
        lease = request_lease(
            parse_schedulers(env["CCFARM_SCHEDULER"]),
            compiler,
            wait=settings.lease_wait,
            size=size,
        )
    except NoLease as exc:
        if not exc.answered:
            _verbose(settings, f"no scheduler answered ({exc}); using host lists")
            return None
        _verbose(settings, f"local: the scheduler found no host ({exc})")
        return exec_local(inv, env, None)
    grant = lease.grant
    _verbose(
        settings,
        f"{job.source}: {grant.host} leased in {time.monotonic() - asked:.3f} s"
        + (" (express)" if grant.express else ""),
    )
    spec = hostlist.HostSpec(grant.host, "tcp", grant.address, grant.port, 1, 3, ccfarm=True)
    try:
        status = _distribute(inv, job, spec, cpp, info, env, settings, express=grant.express)
    except _LocalPreprocessFailed:
        return exec_local(inv, env, None)
    except HostFailure as exc:
        if not settings.fallback:
            warn(f"{grant.host} failed ({exc}); CCFARM_FALLBACK=0, giving up")
            return EXIT_NO_HOSTS
        warn(f"{grant.host} failed ({exc}); compiling {job.source} locally")
        return exec_local(inv, env, None)
    finally:
        lease.release()
    return status if status is not None else exec_local(inv, env, None)


def _run_remote_or_local(
    inv: Invocation,
    job: CompileJob,
    listing: hostlist.HostList,
    cpp: _Preprocessing,
    env: Mapping[str, str],
    settings: Settings,
) -> int:
    state = slots.state_dir(env)
    tried: list[hostlist.HostSpec] = []
    info: CompilerInfo | None = None
    while len(tried) < MAX_HOSTS_TRIED:
        candidates = [h for h in listing.hosts if h not in tried]
        try:
            slot = slots.acquire_slot(
                state,
                candidates,
                now=time.time(),
                backoff_period=settings.backoff,
                sleep=time.sleep,
                pause=settings.pause,
                randomize=listing.randomize,
            )
        except OSError as exc:  # the slot locks live there
            warn(f"state directory {state} unusable ({exc.strerror}); compiling locally")
            return exec_local(inv, env, None)
        if slot is None or slot.spec is None:
            break
        if slot.spec.kind == "local":
            cpp.discard()
            return exec_local(inv, env, slot)
        spec = slot.spec
        with slot:
            try:
                info = info or _compiler_info(inv, job, env)
                status = _distribute(inv, job, spec, cpp, info, env, settings)
            except _LocalPreprocessFailed:
                return exec_local(inv, env, None)  # shows the preprocessor's own errors
            except HostFailure as exc:
                slots.mark_backoff(state, spec)
                tried.append(spec)
                if not settings.fallback:
                    warn(f"{spec.text} failed ({exc}); CCFARM_FALLBACK=0, giving up")
                    return EXIT_NO_HOSTS
                where = "elsewhere" if len(tried) < MAX_HOSTS_TRIED else "locally"
                warn(f"{spec.text} failed ({exc}); compiling {job.source} {where}")
                continue
        slots.clear_backoff(state, spec)
        if status is not None:
            return status
        # the remote compiler failed: re-run here so the messages are the local ones
        return exec_local(inv, env, None)
    return run_local(inv, env, listing, settings)


def _distribute(
    inv: Invocation,
    job: CompileJob,
    spec: hostlist.HostSpec,
    cpp: _Preprocessing,
    info: CompilerInfo,
    env: Mapping[str, str],
    settings: Settings,
    *,
    express: bool = False,
) -> int | None:
    """Compile on `spec`; the exit status, or None when the compile failed there.

    An express job (a lease beyond the host's slots) tells the daemon so in
    the environment items of ccfarm's protocols.
    """
    from ccfarm import protocol
    from ccfarm.compiler.args import remote_argv_full, remote_argv_stripped, rewrite_compiler_name

    version = protocol.CCFARM if spec.ccfarm else spec.protocol
    path = env.get("PATH", os.defpath)
    name = rewrite_compiler_name(
        os.path.basename(job.argv[0]),
        which=lambda n: find_compiler(n, path),
        target=info.identity.target,
    )
    preprocessed, cpp_stderr = cpp.result()
    forwarded = _forwarded_env(env, express)
    if spec.ccfarm and settings.checked_preprocessed and not cpp_stderr:
        fast = _checked_preprocessed(job, name, spec, preprocessed, forwarded, settings)
        if fast is not None:
            return fast if fast >= 0 else None
    if protocol.sends_files(version):
        from ccfarm.client.job import sources

        cwd = os.getcwd()
        argv = remote_argv_full(job, system_dirs=info.system_dirs, extra=_color_flags(job, env))
        if sources.reads_predefines(preprocessed):
            # -nostdinc also drops gcc's implicit stdc-predef.h; put it back first
            argv[1:1] = ["-include", "stdc-predef.h"]
        header = protocol.JobHeader(
            version,
            _encode([name, *argv[1:]]),
            os.fsencode(cwd),
            forwarded if protocol.sends_env(version) else (),
        )
        request = protocol.encode_request(header, files=sources.entries(preprocessed, job, cwd))
        cpp_stderr = b""  # the daemon preprocesses again and reports the same messages
    else:
        argv = remote_argv_stripped(job)
        header = protocol.JobHeader(version, _encode([name, *argv[1:]]))
        request = protocol.encode_request(header, source=preprocessed)
    result = _remote(spec, request, version, settings)
    _verbose(
        settings,
        f"{job.source} compiled on {spec.text} (protocol {version:#x}), "
        f"status {result.wait_status:#x}",
    )
    if result.wait_status != 0 or not _write_object(job, result.obj):
        return None  # the local re-run shows what went wrong
    _write(sys.stdout, result.stdout)
    _write(sys.stderr, cpp_stderr + result.stderr)
    return 0


def _checked_preprocessed(
    job: CompileJob,
    name: str,
    spec: hostlist.HostSpec,
    preprocessed: bytes,
    forwarded: tuple[bytes, ...],
    settings: Settings,
) -> int | None:
    """The cheap way first: compile the local preprocessor's output (distcc's way,
    in ccfarm's variant of protocol 2, which carries `forwarded` environment items).

    Used only where it gives the local object bytes (see
    `preprocessed_is_exact`), and kept only when the compile succeeded
    without a word. 0: done; -1: the compile failed (the local re-run shows
    why); None: not eligible, or it said something: the exact way decides.
    """
    from ccfarm import protocol
    from ccfarm.compiler.args import (
        mentions_location_builtins,
        preprocessed_is_exact,
        remote_argv_stripped,
    )

    if not preprocessed_is_exact(job) or mentions_location_builtins(preprocessed):
        return None
    argv = remote_argv_stripped(job)
    header = protocol.JobHeader(protocol.CCFARM_CPP, _encode([name, *argv[1:]]), env=forwarded)
    request = protocol.encode_request(header, source=preprocessed)
    result = _remote(spec, request, protocol.CCFARM_CPP, settings)
    quiet = not result.stdout and not result.stderr
    if result.wait_status != 0:
        outcome, verdict = " (failed: the local compiler shows why)", -1
    elif not quiet:
        outcome, verdict = " (it said something: the exact way decides)", None
    else:
        outcome, verdict = "", 0 if _write_object(job, result.obj) else -1
    _verbose(settings, f"{job.source} compiled on {spec.text} from preprocessed text{outcome}")
    return verdict


def _forwarded_env(env: Mapping[str, str], express: bool) -> tuple[bytes, ...]:
    """The environment items ccfarm's protocols send (ENVV)."""
    from ccfarm import protocol

    items = [f"{k}={env[k]}" for k in protocol.CLIENT_ENVIRONMENT if k in env]
    if express:
        items.append(f"{protocol.PRIORITY}=express")
    return _encode(items)


def _compiler_info(inv: Invocation, job: CompileJob, env: Mapping[str, str]) -> CompilerInfo:
    """The compiler's identity and system include directories (cached per binary)."""
    from ccfarm.client.job.compilerinfo import compiler_info

    cache = os.path.join(slots.state_dir(env), "cache")
    return compiler_info(inv.compiler_path, job.language, job.argv[1:], cache)


def _remote(spec: hostlist.HostSpec, request: bytes, version: int, settings: Settings) -> JobResult:
    """Run `request` on `spec`; HostFailure unless the compiler itself answered."""
    from ccfarm.client.job.transport import run_remote

    result = run_remote(
        spec.host,
        spec.port,
        request,
        version,
        connect_timeout=settings.connect_timeout,
        io_timeout=settings.io_timeout,
    )
    if result.wait_status >> 8 >= 100 or result.wait_status & 0x7F:
        raise HostFailure(f"host could not run the compiler (status {result.wait_status:#x})")
    return result


def _write_object(job: CompileJob, data: bytes) -> bool:
    """Write the object as the compiler would have; False if that failed."""
    from ccfarm.client.job.outputs import write_atomically

    try:
        write_atomically(job.output, data)
    except OSError:
        return False  # the local re-run reports it exactly
    return True


def _color_flags(job: CompileJob, env: Mapping[str, str]) -> list[str]:
    """Ask for colours remotely when a local run would colour (a terminal)."""
    if any(a.startswith(("-fdiagnostics-color", "-fno-diagnostics-color")) for a in job.argv):
        return []
    if os.isatty(2) and env.get("TERM", "dumb") != "dumb":
        return ["-fdiagnostics-color=always"]
    return []


def run_local(
    inv: Invocation,
    env: Mapping[str, str],
    listing: hostlist.HostList | None,
    settings: Settings,
) -> int:
    """Compile here, holding one of this machine's local slots."""
    limit = listing.local_slots if listing is not None else 0
    if limit <= 0:
        return exec_local(inv, env, None)
    state = slots.state_dir(env)
    try:
        slot = slots.acquire_local_slot(state, limit, sleep=time.sleep, pause=settings.pause)
    except OSError as exc:
        warn(f"state directory {state} unusable ({exc.strerror}); compiling without a slot")
        slot = None
    return exec_local(inv, env, slot)


def exec_local(inv: Invocation, env: Mapping[str, str], slot: slots.Slot | None) -> int:
    """Replace this process with the real compiler (a held slot stays locked)."""
    for cpp in list(_live):
        cpp.discard()
    if slot is not None:
        os.set_inheritable(slot.fd, True)
    import _signal

    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)  # Python ignores it; a compiler must not
    sys.stdout.flush()
    sys.stderr.flush()
    # argv[0] is the real path: gcc finds cc1 relative to it (a masquerade link
    # named gcc earlier on PATH would mislead it)
    os.execve(inv.compiler_path, [inv.compiler_path, *inv.argv[1:]], {**env, SAFEGUARD: "1"})
    return 127  # not reached


def _unsupported(spec: hostlist.HostSpec) -> bool:
    return not spec.down and (spec.kind == "ssh" or spec.auth)


def _encode(items: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(os.fsencode(s) for s in items)


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
