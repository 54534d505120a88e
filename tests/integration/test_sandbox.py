"""The job sandbox and the daemon's user, against a real ccfarmd.

Each attack is a request built by hand. The secret and the marker live in
a directory of the daemon's own user (`daemon_dir`), so that file
permissions do not stop them: only the sandbox does. The same attacks
against a daemon told `--sandbox=off` succeed, which shows each test can
fail.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.demo.farm import LocalDaemon, ccfarmd_command, stop_daemon, wait_listening
from ccfarm.protocol import (
    CCFARM,
    NEED_DATA,
    PLAIN,
    CompileStatus,
    FileEntry,
    JobHeader,
    ReplyComplete,
    ReplyParser,
    Stderr,
    Stdout,
    encode_request,
)
from tests.conftest import (
    daemon_account,
    free_port,
    next_address,
    processes,
    require_binary,
    run,
    wait_for,
)

SECRET = b"TOPSECRET-7f3a9c-not-for-clients"
SOURCE = b"int f(int x) { return x * 3; }\n"


@pytest.fixture(autouse=True)
def _bwrap() -> None:
    require_binary("bwrap")


def _exchange(daemon, data: bytes, timeout: float = 60) -> bytes:  # type: ignore[no-untyped-def]
    """Send a request, read the reply until the daemon closes (timeout: a no-stall bound)."""
    with socket.create_connection((daemon.address, daemon.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            return b""
    return reply


def _status(reply: bytes, version: int) -> tuple[int, bytes, bytes]:
    """(wait status, stdout, stderr) of a complete reply."""
    parser = ReplyParser(version)
    parser.receive_data(reply)
    parser.receive_eof()
    status, out, err = -1, b"", b""
    while (event := parser.next_event()) is not NEED_DATA:
        if isinstance(event, CompileStatus):
            status = event.wait_status
        elif isinstance(event, Stdout):
            out = event.data
        elif isinstance(event, Stderr):
            err = event.data
        elif isinstance(event, ReplyComplete):
            break
    return status, out, err


def _plain(argv: list[str], source: bytes = SOURCE) -> bytes:
    return encode_request(JobHeader(PLAIN, tuple(a.encode() for a in argv)), source=source)


def _exact(argv: list[str], source: bytes) -> bytes:
    header = JobHeader(CCFARM, tuple(a.encode() for a in argv), b"/src", ())
    return encode_request(header, files=[FileEntry(b"/src/x.c", source)])


def _own(path: Path, mode: int) -> None:
    """`path` belongs to the daemon's user: only the sandbox keeps it from a compiler."""
    account = daemon_account()
    if account is not None:
        os.chown(path, *account)
    path.chmod(mode)


def _good_job_still_works(daemon) -> None:  # type: ignore[no-untyped-def]
    status, _, _ = _status(_exchange(daemon, _plain(["gcc", "-O2", "-c", "x.c", "-o", "x.o"])), 1)
    assert status == 0


# -- the daemon's user ------------------------------------------------------------


def test_the_daemon_runs_as_an_unprivileged_user(ccfarmd) -> None:
    daemon = ccfarmd()
    assert daemon.process is not None
    # (it listens, bound as root, before it gives up root and serves)
    wait_for(lambda: "bubblewrap sandbox" in Path(daemon.log_path).read_text())
    status = Path(f"/proc/{daemon.process.pid}/status").read_text()
    fields = {k: v.split() for k, _, v in (line.partition(":") for line in status.splitlines())}
    account = daemon_account()
    if account is None:  # not started as root: it stays who it is
        assert fields["Uid"] == [str(os.getuid())] * 4
    else:
        uid, gid = account
        assert uid != 0 and gid != 0
        assert fields["Uid"] == [str(uid)] * 4  # real, effective, saved, filesystem
        assert fields["Gid"] == [str(gid)] * 4
        assert fields["Groups"] == []
    _good_job_still_works(daemon)


def test_no_user_to_become_is_an_error_at_start(tmp_path: Path) -> None:
    if daemon_account() is None:
        pytest.skip("only a daemon started as root changes its user")
    address = next_address()
    log = tmp_path / "d.log"
    cmd = ccfarmd_command(address, free_port(address), 1, ("--log-file", str(log)))
    done = subprocess.run([*cmd, "--user", "no-such-user-ccfarm"], timeout=60, check=False)
    assert done.returncode == 112  # distccd's EXIT_SETUID_FAILED
    assert "no-such-user-ccfarm: no such user" in log.read_text()
    done = subprocess.run([*cmd, "--user", "root"], timeout=60, check=False)
    assert done.returncode == 112
    assert "does not run compilers as root" in log.read_text()


# -- reading a file outside the job -------------------------------------------------


def _incbin(secret: Path) -> bytes:
    return b'__asm__(".incbin \\"' + str(secret).encode() + b'\\"");\n' + SOURCE


@pytest.mark.parametrize("version", ["plain", "exact"])
def test_incbin_of_a_secret_fails_and_leaks_nothing(
    version: str, daemon_dir: Path, ccfarmd
) -> None:
    secret = daemon_dir / "secret.txt"
    secret.write_bytes(SECRET)
    _own(secret, 0o644)
    argv = ["gcc", "-O2", "-c", "x.c", "-o", "x.o"]
    source = _incbin(secret)
    request = _plain(argv, source) if version == "plain" else _exact(argv, source)
    number = PLAIN if version == "plain" else CCFARM

    confined = ccfarmd()
    reply = _exchange(confined, request)
    status, _, stderr = _status(reply, number)
    assert status != 0 and status >> 8 < 100, stderr  # the compiler's own error
    assert SECRET not in reply
    assert b"secret.txt" in stderr  # gcc could not open it
    _good_job_still_works(confined)

    unconfined = ccfarmd(extra=("--sandbox=off",))
    assert SECRET in _exchange(unconfined, request)  # the attack itself works


def test_a_compiler_reads_nothing_outside_its_job(daemon_dir: Path, ccfarmd) -> None:
    secret = daemon_dir / "secret.txt"
    secret.write_bytes(SECRET)
    _own(secret, 0o644)
    compiler = _fake_compiler(daemon_dir, f"cat {secret} /etc/hostname; ls / /tmp")
    confined = ccfarmd(extra=compiler)
    status, out, err = _status(_exchange(confined, ATTACK), 1)
    assert SECRET not in out + err
    assert b"No such file" in err
    listed = out.split()
    assert b"home" not in listed and b"root" not in listed and b"etc" in listed

    unconfined = ccfarmd(extra=(*compiler, "--sandbox=off"))
    assert SECRET in _exchange(unconfined, ATTACK)


# -- writing outside the job ----------------------------------------------------------


def test_writing_a_marker_outside_the_job_fails(daemon_dir: Path, ccfarmd) -> None:
    marker = daemon_dir / "marker"
    compiler = _fake_compiler(daemon_dir, f"echo pwned > {marker}; echo pwned > /tmp/marker")
    confined = ccfarmd(extra=compiler)
    status, _, err = _status(_exchange(confined, ATTACK), 1)
    assert not marker.exists()
    assert b"Read-only file system" in err, err  # /tmp: the sandbox's own root
    _good_job_still_works(confined)

    unconfined = ccfarmd(extra=(*compiler, "--sandbox=off"))
    _exchange(unconfined, ATTACK)
    assert marker.exists()


def test_options_that_write_elsewhere_write_nothing(daemon_dir: Path, ccfarmd) -> None:
    """The real gcc told to write outside its job (whether the argument filter
    lets these through or not, nothing may appear)."""
    daemon = ccfarmd()
    markers = [daemon_dir / f"m{i}" for i in range(4)]
    attacks = [
        ["gcc", f"-Wa,-adhln={markers[0]}", "-c", "x.c", "-o", "x.o"],
        ["gcc", f"--output={markers[1]}", "-c", "x.c"],
        ["gcc", f"-fopt-info-all={markers[2]}", "-O2", "-c", "x.c", "-o", "x.o"],
        ["gcc", f"-fdump-tree-original={markers[3]}", "-c", "x.c", "-o", "x.o"],
    ]
    for argv in attacks:
        _exchange(daemon, _plain(argv))
        _exchange(daemon, _exact(argv, SOURCE))
    assert [m for m in markers if m.exists()] == []
    _good_job_still_works(daemon)


# -- accounting ----------------------------------------------------------------------

#: a source gcc -O2 takes a noticeable CPU time over (~0.1-0.3 s)
HEAVY = "\n".join(
    f"double f{i}(double x, int n) {{ double s = {i}.5; for (int k = 0; k < n; k++)"
    f" s = s * x / (k + {i + 1}.0) + (s > {i} ? k : -k); return s; }}"
    for i in range(40)
).encode()


def _children_cpu(pid: int) -> float:
    """CPU seconds of the finished children a process has waited for (cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("warm", ["1", "0"])
def test_a_sandboxed_compile_counts_in_the_daemons_children_cpu(
    tmp_path: Path, ccfarmd, warm: str
) -> None:
    # the daemon's speed (refined from its jobs' CPU over their wall time) and
    # its cgroup's load net of its own jobs both read these children's times
    (tmp_path / "heavy.c").write_bytes(HEAVY)
    before = _own_children_cpu()
    assert run(["gcc", "-O2", "-c", "heavy.c", "-o", "ref.o"], tmp_path).returncode == 0
    local = _own_children_cpu() - before
    daemon = ccfarmd(extra=("--warm-pool", warm))
    assert daemon.process is not None
    wait_for(lambda: "bubblewrap sandbox" in Path(daemon.log_path).read_text())
    start = _children_cpu(daemon.process.pid)
    argv = ["gcc", "-O2", "-c", "heavy.c", "-o", "heavy.o"]
    for _ in range(3):
        status, _, err = _status(_exchange(daemon, _plain(argv, HEAVY)), 1)
        assert status == 0, err
    counted = _children_cpu(daemon.process.pid) - start
    assert counted >= 1.5 * local, (counted, local)  # 3 compiles; 0 when a reaper hid them


def _own_children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- limits --------------------------------------------------------------------------


def _left(daemon_dir: Path, daemon) -> list[int]:  # type: ignore[no-untyped-def]
    """Processes of this test's fake compiler (or its sandbox) still running
    (but the ready sandboxes of the daemon's warm pool, waiting in a shell)."""
    mark = str(daemon_dir).encode()
    me = daemon.process.pid
    return [
        pid
        for pid, argv, _ in processes()
        if pid != me and any(mark in a for a in argv) and argv[-3:] != [b"/bin/sh", b"-s", b""]
    ]


def test_a_fork_bomb_is_stopped_and_the_daemon_keeps_serving(daemon_dir: Path, ccfarmd) -> None:
    compiler = _fake_compiler(daemon_dir, "bomb() { bomb | bomb & }; bomb; sleep 600")
    # (no ready sandboxes: their processes would count against the 40, which
    # every process of the daemon's user on this machine shares)
    limits = ("--limit-processes", "40", "--job-lifetime", "5", "--warm-pool", "0")
    daemon = ccfarmd(extra=(*compiler, *limits))
    reply = _exchange(daemon, ATTACK)
    status, _, err = _status(reply, 1)
    # the process limit made a fork fail (the shell gave up), or the wall clock ended it
    assert b"Cannot fork" in err or (status == 118 << 8 and b"took too long" in err), err
    assert status != 0
    wait_for(lambda: not _left(daemon_dir, daemon), timeout=20)  # nothing outlives it
    _good_job_still_works(daemon)


def test_processes_a_compiler_leaves_behind_end_with_its_job(daemon_dir: Path, ccfarmd) -> None:
    compiler = _fake_compiler(daemon_dir, "for i in 1 2 3 4 5; do sleep 600 & done")
    daemon = ccfarmd(extra=compiler)
    status, _, _ = _status(_exchange(daemon, ATTACK), 1)
    assert status == 0
    wait_for(lambda: not _left(daemon_dir, daemon), timeout=20)


def test_an_endless_loop_is_stopped_by_the_cpu_limit(daemon_dir: Path, ccfarmd) -> None:
    compiler = _fake_compiler(daemon_dir, "while :; do :; done")
    daemon = ccfarmd(extra=(*compiler, "--limit-cpu", "1", "--job-lifetime", "120"))
    status, _, _ = _status(_exchange(daemon, ATTACK), 1)
    assert status & 0x7F in (signal.SIGXCPU, signal.SIGKILL)  # killed, not by --job-lifetime
    _good_job_still_works(daemon)


def test_sleeping_forever_is_stopped_by_the_wall_clock(daemon_dir: Path, ccfarmd) -> None:
    compiler = _fake_compiler(daemon_dir, "sleep 600")
    daemon = ccfarmd(extra=(*compiler, "--job-lifetime", "2"))
    status, _, err = _status(_exchange(daemon, ATTACK), 1)
    assert status == 118 << 8 and b"took too long" in err
    wait_for(lambda: not _left(daemon_dir, daemon), timeout=20)


def test_memory_and_file_size_limits(daemon_dir: Path, ccfarmd) -> None:
    python = "/usr/bin/python3"  # (a Python under /usr: the sandbox has no other)
    if not os.path.exists(python):
        pytest.skip("no /usr/bin/python3 to allocate memory with")
    compiler = _fake_compiler(
        daemon_dir,
        f"{python} -c 'bytearray(1 << 30)'; echo memory=$?;"
        ' head -c 3000000 /dev/zero > "$TMPDIR/big"; echo file=$?',
    )
    daemon = ccfarmd(extra=(*compiler, "--limit-memory", "256", "--limit-file-size", "1"))
    status, out, err = _status(_exchange(daemon, ATTACK), 1)
    assert b"MemoryError" in err
    assert b"memory=1" in out
    assert b"file=153" in out or b"File size limit" in err  # SIGXFSZ (25): 128 + 25


# -- without a sandbox ---------------------------------------------------------------


def test_without_a_sandbox_exact_jobs_are_refused_and_plain_ones_served(
    tmp_path: Path, daemon_dir: Path, client_env
) -> None:
    """No bwrap on the daemon's PATH: a loud warning, protocol-3 and exact-mode
    jobs refused in a way the wrapper takes as a failed host, not a compile error."""
    daemon = _daemon_without_bwrap(tmp_path, daemon_dir, "--sandbox=auto")
    log = Path(daemon.log_path)
    wait_for(lambda: "NO JOB SANDBOX" in log.read_text())
    assert "--sandbox=off" in log.read_text()
    assert _exchange(daemon, _exact(["gcc", "-c", "x.c", "-o", "x.o"], SOURCE)) == b""
    _good_job_still_works(daemon)

    (tmp_path / "a.c").write_bytes(SOURCE)
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    env["CCFARM_FALLBACK"] = "1"
    env["CCFARM_MODE"] = "exact"
    proc = run(["ccfarm", "gcc", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert b"failed (bad reply" in proc.stderr  # a failed host, then compiled here
    run(["gcc", "-c", "a.c", "-o", "ref.o"], tmp_path)
    assert (tmp_path / "a.o").read_bytes() == (tmp_path / "ref.o").read_bytes()


def test_sandbox_required_but_missing_refuses_to_start(tmp_path: Path, daemon_dir: Path) -> None:
    address = next_address()
    log = tmp_path / "d.log"
    cmd = ccfarmd_command(address, free_port(address), 1, ("--log-file", str(log)))
    env = {**os.environ, "PATH": _no_bwrap_path(daemon_dir)}
    done = subprocess.run([*cmd, "--sandbox=require"], env=env, timeout=60, check=False)
    assert done.returncode == 100
    assert "--sandbox=require" in log.read_text()


# -- helpers ---------------------------------------------------------------------------


def _no_bwrap_path(daemon_dir: Path) -> str:
    """A PATH with what gcc runs, and no bwrap."""
    tools = daemon_dir / "tools"
    tools.mkdir()
    for name in ("as", "gcc", "cc", "true"):
        (tools / name).symlink_to(require_binary(name))
    return str(tools)


def _daemon_without_bwrap(tmp_path: Path, daemon_dir: Path, *extra: str) -> LocalDaemon:
    """A ccfarmd whose PATH has no bwrap."""
    address = next_address()
    port = free_port(address)
    log = tmp_path / "nobwrap.log"
    cmd = ccfarmd_command(address, port, 2, ("--log-file", str(log), *extra))
    env = {**os.environ, "PATH": _no_bwrap_path(daemon_dir), "DISTCCD_PATH": "/usr/bin"}
    daemon = LocalDaemon(address, port, 2, str(log), subprocess.Popen(cmd, env=env))
    _STARTED.append(daemon)
    wait_listening(address, port)
    return daemon


_STARTED: list[LocalDaemon] = []


@pytest.fixture(autouse=True)
def _stop_started() -> Iterator[None]:
    yield
    while _STARTED:
        stop_daemon(_STARTED.pop())


def _fake_compiler(daemon_dir: Path, attack: str) -> tuple[str, ...]:
    """A `gcc` that does `attack` when told -DATTACK, then compiles; the flags
    for a daemon that runs it."""
    bindir = daemon_dir / "fakecc"
    bindir.mkdir(exist_ok=True)
    script = bindir / "gcc"
    script.write_text(
        f'#!/bin/sh\ncase " $* " in *" -DATTACK "*) {attack} ;; esac\nexec /usr/bin/gcc "$@"\n'
    )
    script.chmod(0o755)
    return ("--compiler-path", str(bindir), "--compiler", "gcc")


ATTACK = _plain(["gcc", "-DATTACK", "-c", "x.c", "-o", "x.o"])
