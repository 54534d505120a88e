"""Start a process cheaply (posix_spawn; `subprocess` costs ~5 ms to import).

The wrapper starts the local preprocessor as early as it can and does its
other work while it runs (`Preprocessing`); `Spawned.wait()` collects its
stderr and status.
"""

from __future__ import annotations

import _signal
import contextlib
import os
from collections.abc import Mapping, Sequence

MYPY = False
if MYPY:
    from types import TracebackType

    from ccfarm.client.job.plan import JobPlan


class Spawned:
    def __init__(self, pid: int, stderr_fd: int) -> None:
        self.pid = pid
        self._stderr_fd = stderr_fd
        self._result: tuple[int, bytes] | None = None

    def wait(self) -> tuple[int, bytes]:
        """(exit code, stderr); a signal N gives 128 + N."""
        if self._result is None:
            chunks = []
            while chunk := os.read(self._stderr_fd, 65536):
                chunks.append(chunk)
            os.close(self._stderr_fd)
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            self._result = (code if code >= 0 else 128 - code, b"".join(chunks))
        return self._result

    def stop(self) -> None:
        """Kill it (SIGKILL) and collect it, unless it was collected already."""
        if self._result is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, 9)  # SIGKILL (`signal` costs an import)
                self.wait()


def spawn(
    path: str, argv: Sequence[str], env: Mapping[str, str], *, with_stdout: bool = False
) -> Spawned:
    """Run `path` with stdin on /dev/null and stderr captured; stdout too
    (into the same bytes) `with_stdout`, else on /dev/null."""
    read_end, write_end = os.pipe()
    stdout = (
        (os.POSIX_SPAWN_DUP2, write_end, 1)
        if with_stdout
        else (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)
    )
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        stdout,
        (os.POSIX_SPAWN_DUP2, write_end, 2),
        (os.POSIX_SPAWN_CLOSE, read_end),
        (os.POSIX_SPAWN_CLOSE, write_end),
    ]
    try:  # SIGPIPE: Python ignores it, and an ignored signal stays ignored across exec
        pid = os.posix_spawn(
            path, list(argv), dict(env), file_actions=actions, setsigdef=(_signal.SIGPIPE,)
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return Spawned(pid, read_end)


def temp_path(suffix: str, env: Mapping[str, str]) -> str:
    """A fresh, exclusively created file name in $TMPDIR."""
    directory = env.get("TMPDIR") or "/tmp"
    for attempt in range(100):
        path = os.path.join(directory, f"ccfarm-{os.getpid()}-{attempt}{suffix}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {directory}")


class Preprocessing:
    """The job's local preprocessor run, started at once, collected when needed.

    Leaving the `with` block waits for it and removes its output file (also
    when the job ends by an exception: SIGTERM unwinds as SystemExit).
    """

    def __init__(self, plan: JobPlan, env: Mapping[str, str]) -> None:
        self.path = temp_path(plan.preprocessed_suffix, env)
        try:
            argv = plan.preprocessor_argv(self.path)
            self.proc = spawn(plan.compiler_path, argv, env)
        except BaseException:
            os.unlink(self.path)
            raise
        self._output: tuple[bytes, bytes] | None = None

    def result(self) -> tuple[bytes, bytes] | None:
        """(preprocessed text, its stderr); None if it failed (a local run shows why)."""
        if self._output is None:
            code, stderr = self.proc.wait()
            if code != 0:
                return None
            with open(self.path, "rb") as f:
                self._output = (f.read(), stderr)
        return self._output

    def __enter__(self) -> Preprocessing:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.proc.wait()  # first: the preprocessor could create the file again
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
