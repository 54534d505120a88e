"""One attempt on one held host: send, judge the answer, write the object, replay.

The requests and what each answer means are the plan's
(`RemotePlan.requests`, `judge`); this sends them, writes the object the
way the compiler would, and replays the compile's output. An answer that
is not the compiler's own verdict (refused, cut, timed out, nonsense) is a
failed host, never a compile error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

from ccfarm.client.job.fallback import COMPILE_FAILED, Attempt, host_failed
from ccfarm.client.job.plan import host_failure, judge, reply_note
from ccfarm.errors import HostFailure, LeaseLost

MYPY = False
if MYPY:  # imported only when used (start-up time)
    import ssl

    from ccfarm.client.hosts.hostlist import HostSpec
    from ccfarm.client.job.lease import Lease
    from ccfarm.client.job.plan import RemotePlan, Request, Settings
    from ccfarm.client.job.transport import JobResult


class Target:
    """A host held for one attempt; `release()` gives its slot or lease back."""

    def __init__(
        self,
        spec: HostSpec,
        release: Callable[[], None],
        *,
        express: bool,
        lease: Lease | None = None,
        secret: bytes | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.spec = spec
        self.release = release
        self.express = express  # a lease beyond the host's slots
        self.lease = lease  # the scheduler's lease on it, watched while the job runs
        #: the farm secret, proven to and by a ccfarmd host (a distccd cannot)
        self.secret = secret if spec.ccfarm else None
        #: TLS (CCFARM_TLS_CA), to ccfarmd hosts only: a distccd speaks plain TCP
        self.tls = tls if spec.ccfarm else None


def attempt(
    remote: RemotePlan, settings: Settings, target: Target, preprocessed: tuple[bytes, bytes]
) -> Attempt:
    """Compile on `target` the cheap way and/or the host's own way.

    `preprocessed` is the local preprocessor's (text, stderr).
    """
    text, cpp_stderr = preprocessed
    spec = target.spec
    job = remote.job
    spoke = False  # the cheap way's compile said something: the exact way decides
    for request in remote.requests(spec, express=target.express, cpp_stderr=cpp_stderr, text=text):
        try:
            result = _send(remote, settings, target, request, text)
        except LeaseLost as exc:
            return host_failed(str(exc), lease_lost=True)
        except HostFailure as exc:
            return host_failed(str(exc))
        verdict = judge(request, result.wait_status, quiet=not result.stdout and not result.stderr)
        if verdict == "host failed":
            return host_failed(host_failure(result.wait_status))
        if verdict == "exact way":
            spoke = True
            continue
        if verdict == "failed" or not write_object(job.output, result.obj):
            return COMPILE_FAILED  # the local re-run shows what went wrong
        _write(sys.stdout, result.stdout)
        # a host sent sources preprocessed them itself, and reported what the preprocessor said
        _write(sys.stderr, (b"" if request.files else cpp_stderr) + result.stderr)
        return Attempt("compiled", how=reply_note(request, after_cheap=spoke))
    return COMPILE_FAILED  # not reached: the last request always decides


def _send(
    remote: RemotePlan, settings: Settings, target: Target, request: Request, text: bytes
) -> JobResult:
    """Run `request` on `target`; HostFailure unless the host answered."""
    from ccfarm import protocol
    from ccfarm.client.job.transport import run_remote

    cwd = os.getcwd() if request.files else None
    header = protocol.JobHeader(
        request.version,
        _encode(request.argv),
        None if cwd is None else os.fsencode(cwd),
        _encode(request.env),
    )
    stored = not settings.packed
    if cwd is None:
        body = protocol.encode_request(header, source=text, stored=stored)
    else:
        from ccfarm.client.job.sources import entries

        files = entries(text, remote.job, cwd)
        body = protocol.encode_request(header, files=files, stored=stored)
    spec = target.spec
    return run_remote(
        spec.host,
        spec.port,
        body,
        request.version,
        connect_timeout=settings.connect_timeout,
        io_timeout=settings.io_timeout,
        lease=target.lease,
        secret=target.secret,
        tls=target.tls,
    )


def write_object(path: str, data: bytes) -> bool:
    """Write the object as the compiler would have; False if that failed."""
    from ccfarm.client.job.outputs import write_atomically

    try:
        write_atomically(path, data)
    except OSError:
        return False  # the local re-run reports it exactly
    return True


def _encode(items: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(os.fsencode(s) for s in items)


def _write(stream: object, data: bytes) -> None:
    if data:
        out = stream.buffer  # type: ignore[attr-defined]
        out.write(data)
        out.flush()


def say(settings: Settings, *, warning: str = "", verbose: str = "") -> None:
    """The wrapper's own messages: a warning always, a verbose line with CCFARM_VERBOSE;
    to CCFARM_LOG (or DISTCC_LOG) when set, as distcc, else to stderr."""
    lines = []
    if warning:
        lines.append(f"ccfarm: warning: {warning}\n")
    if verbose and settings.verbose:
        lines.append(f"ccfarm: {verbose}\n")
    if not lines:
        return
    if settings.log:
        try:
            fd = os.open(settings.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError:
            pass  # an unwritable log: the lines go to stderr
        else:
            try:
                os.write(fd, "".join(f"[{os.getpid()}] {line}" for line in lines).encode())
            finally:
                os.close(fd)
            return
    sys.stderr.write("".join(lines))
    sys.stderr.flush()


__all__ = ["Target", "attempt", "say", "write_object"]
