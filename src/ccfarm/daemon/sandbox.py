"""The job sandbox, decided: the bubblewrap command line of a job and its limits.

Pure: what the host looks like (`HostLayout`: which of its top-level
directories are symbolic links, which system paths exist) is found by the
shell (`daemon/process.py`) once at start; this module turns it, a job's
directory and its compiler into the command that runs the compiler
confined, and says which jobs a daemon without a sandbox refuses.

Inside the sandbox the compiler sees, read-only, `/usr` (the compiler, its
libraries, the system headers), the loader's cache and the `alternatives`
links of `/etc`, the compiler's own installation when it is not under
`/usr`, and any `--sandbox-path`; read-write, only the job's directory, at
its real path (so the command line and `-ffile-prefix-map` need no change).
Everything else of the host is absent: no `/home`, no `/root`, no other job,
no `/tmp`. It has its own user, mount, PID, IPC, UTS, cgroup and network
namespaces (no network but a loopback of its own), no capabilities, a
read-only root, and dies with the daemon.
"""

from __future__ import annotations

import posixpath
import resource
from collections.abc import Sequence
from dataclasses import dataclass

from ccfarm.protocol import sends_files

MiB = 1 << 20
#: the host's read-only system paths, when they exist (files or directories)
SYSTEM_PATHS = (
    "/usr",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
)
#: top-level directories that merged-/usr systems make links into /usr
TOP_DIRECTORIES = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class JobLimits:
    """Resource limits of each compile (0 = unlimited); rlimits of every process
    the compiler starts. The wall-clock limit is the daemon's --job-lifetime."""

    cpu_seconds: int = 300
    memory_mib: int = 4096  # address space
    file_size_mib: int = 1024
    processes: int = 256

    def rlimits(self) -> tuple[tuple[int, int, int], ...]:
        """(resource, soft, hard) to set in the compiler's process before it starts.

        CPU time: SIGXCPU at the limit, SIGKILL a few seconds later (the hard
        limit). Processes: RLIMIT_NPROC counts every process of the daemon's
        user at once (a dedicated account keeps that the daemon's own).
        """
        found: list[tuple[int, int, int]] = []
        if self.cpu_seconds > 0:
            found.append((resource.RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 5))
        if self.memory_mib > 0:
            found.append((resource.RLIMIT_AS, self.memory_mib * MiB, self.memory_mib * MiB))
        if self.file_size_mib > 0:
            size = self.file_size_mib * MiB
            found.append((resource.RLIMIT_FSIZE, size, size))
        if self.processes > 0:
            found.append((resource.RLIMIT_NPROC, self.processes, self.processes))
        return tuple(found)


@dataclass(frozen=True)
class HostLayout:
    """What the shell found on the host: it decides nothing."""

    #: (top-level directory, link target or "" for a real directory), of those that exist
    top: tuple[tuple[str, str], ...]
    #: the SYSTEM_PATHS and --sandbox-path entries that exist
    readonly: tuple[str, ...]


#: the shell a sandbox runs (the host's, read-only), its first process and a room's
SHELL = "/bin/sh"
#: the sandbox's first process: runs the program, exits with its status
#: (128 + N when it died of signal N, as bwrap reports it then)
REAPER = (SHELL, "-c", '"$@"; exit $?', "sh")


@dataclass(frozen=True)
class Sandbox:
    """How this daemon confines a compile: bwrap and the host's layout."""

    bwrap: str
    layout: HostLayout
    #: the daemon runs as root (tests, or a daemon told --user root): drop every capability
    privileged: bool = False

    def command(
        self,
        program: str,
        args: Sequence[str],
        *,
        job_dir: str,
        cwd: str,
        compiler_dirs: Sequence[str] = (),
    ) -> list[str]:
        """The command line that runs `program args` confined to `job_dir`.

        `compiler_dirs`: the directories of the compiler's installation (see
        `compiler_dirs`), mounted read-only when not under one already.
        """
        # --as-pid-1 and REAPER: a shell is the sandbox's first process, runs
        # the program as its child and is reaped by bwrap outside; with
        # bwrap's own reaper inside, the compiler's CPU time never reached the
        # daemon's children's times (RUSAGE_CHILDREN), which its speed and
        # its cgroup's load net of its own jobs are read from. The program is
        # not PID 1 itself, which ignores signals it has no handler for
        # (a compiler that raises one must die of it, as it does here)
        argv = [
            self.bwrap,
            "--unshare-all",
            "--as-pid-1",
            "--die-with-parent",
            "--cap-drop",
            "ALL",
        ]
        for path, target in self.layout.top:
            if target:
                argv += ["--symlink", target, path]
            elif not _covered(path, self.layout.readonly):
                argv += ["--ro-bind", path, path]
        for path in self.layout.readonly:
            argv += ["--ro-bind", path, path]
        for path in self.binds(compiler_dirs, job_dir):
            argv += ["--ro-bind", path, path]
        argv += ["--dev", "/dev", "--proc", "/proc"]
        argv += ["--bind", job_dir, job_dir, "--remount-ro", "/", "--chdir", cwd]
        return [*argv, "--", *REAPER, program, *args]

    def binds(self, compiler_dirs: Sequence[str], job_dir: str) -> tuple[str, ...]:
        """Of `compiler_dirs`, those mounted read-only besides the host's system
        paths: not under one of them already, nor holding the job directory."""
        bound = list(self.layout.readonly)
        for path in compiler_dirs:
            if not _covered(path, bound) and not _covered(job_dir, [path]):
                bound.append(path)
        return tuple(bound[len(self.layout.readonly) :])


def compiler_dirs(program: str, real: str) -> tuple[str, ...]:
    """The directories a compiler needs, from its path and its resolved path.

    The directory of each; for a `bin` directory its parent, the
    installation's prefix (where gcc finds `libexec`, `lib/gcc` and its
    headers). The root itself is never one.
    """
    found: list[str] = []
    for path in (program, real):
        directory = posixpath.dirname(posixpath.normpath(path))
        if posixpath.basename(directory) == "bin":
            directory = posixpath.dirname(directory)
        if directory not in ("", "/") and directory not in found:
            found.append(directory)
    return tuple(found)


def _covered(path: str, dirs: Sequence[str]) -> bool:
    """Is `path` one of `dirs` or below one?"""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def refusal(version: int, *, serves_files: bool) -> str | None:
    """Why a daemon refuses a request of `version`, or None.

    `serves_files`: the daemon has its sandbox, or was told to run without.
    Without a sandbox, jobs that ship files (protocol 3, ccfarm's exact way)
    are refused: their names and links are the client's, and a compiler
    running unconfined reads wherever they point. The refusal closes the
    connection, which a client takes as a failed host (another host, or a
    local compile), never as a compile error.
    """
    if serves_files or not sends_files(version):
        return None
    return "this host has no job sandbox: protocol 3 and exact-mode jobs are refused"


__all__ = ["HostLayout", "JobLimits", "Sandbox", "compiler_dirs", "refusal"]
