"""A failed or vanished host never fails the build nor leaves a partial object."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import (
    ccfarm_exe,
    free_port,
    job_dirs,
    next_address,
    run,
    slow_source,
    wait_for,
)


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp" in p.name or ".ccfarm-" in p.name]


def test_daemon_down_compiles_locally(tmp_path: Path, client_env) -> None:
    address = next_address()
    port = free_port(address)  # nothing listens there
    (tmp_path / "a.c").write_text("int a(void) { return 42; }\n")
    env = {**client_env, "CCFARM_HOSTS": f"{address}:{port}", "CCFARM_FALLBACK": "1"}
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 0
    warnings = [ln for ln in proc.stderr.splitlines() if ln]
    assert len(warnings) == 1 and b"warning" in warnings[0], proc.stderr
    run(["gcc", "-O2", "-c", "a.c", "-o", "ref.o"], tmp_path)
    assert (tmp_path / "a.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
    # the host is now backed off: the next job does not even try it, and says so once
    again = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c", "-o", "b.o"], tmp_path, env)
    assert again.returncode == 0 and again.stderr == (
        b"ccfarm: warning: failed to distribute a.c (every listed host failed lately"
        b" (backed off)), running locally instead\n"
    )
    assert _leftovers(tmp_path) == []


def test_no_fallback_reports_failure(tmp_path: Path, client_env) -> None:
    address = next_address()
    (tmp_path / "a.c").write_text("int a(void) { return 42; }\n")
    env = {**client_env, "CCFARM_HOSTS": f"{address}:{free_port(address)}"}
    proc = run([ccfarm_exe(), "gcc", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 116
    assert not (tmp_path / "a.o").exists()


def test_daemon_killed_mid_job(tmp_path: Path, daemon_dir: Path, ccfarmd, client_env) -> None:
    jobs_dir = daemon_dir
    daemon = ccfarmd(extra=("--tmpdir", str(jobs_dir)))
    slow_source(tmp_path / "slow.c")
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_FALLBACK": "1"}
    client = subprocess.Popen(
        [ccfarm_exe(), "gcc", "-O2", "-c", "slow.c", "-o", "slow.o"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: any(jobs_dir.iterdir()), timeout=30)  # the job is on the daemon
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGKILL)
    _, stderr = client.communicate(timeout=120)
    assert client.returncode == 0, stderr.decode()
    assert b"failed" in stderr
    run(["gcc", "-O2", "-c", "slow.c", "-o", "ref.o"], tmp_path)
    assert (tmp_path / "slow.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
    assert _leftovers(tmp_path) == []


def test_daemon_stopped_mid_job_times_out(
    tmp_path: Path, daemon_dir: Path, ccfarmd, client_env
) -> None:
    """SIGSTOP: the host hangs; the I/O timeout sends the job home."""
    jobs_dir = daemon_dir
    daemon = ccfarmd(extra=("--tmpdir", str(jobs_dir)))
    slow_source(tmp_path / "slow.c", functions=600)
    env = {
        **client_env,
        "CCFARM_HOSTS": daemon.spec,
        "CCFARM_FALLBACK": "1",
        "CCFARM_IO_TIMEOUT": "2",
    }
    assert daemon.process is not None
    os.kill(daemon.process.pid, signal.SIGSTOP)
    try:
        proc = run([ccfarm_exe(), "gcc", "-c", "slow.c", "-o", "slow.o"], tmp_path, env)
    finally:
        os.kill(daemon.process.pid, signal.SIGCONT)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"timed out" in proc.stderr
    run(["gcc", "-c", "slow.c", "-o", "ref.o"], tmp_path)
    assert (tmp_path / "slow.o").read_bytes() == (tmp_path / "ref.o").read_bytes()


def test_sigterm_drains_running_job(tmp_path: Path, daemon_dir: Path, ccfarmd, client_env) -> None:
    jobs_dir = daemon_dir
    daemon = ccfarmd(extra=("--tmpdir", str(jobs_dir)))
    slow_source(tmp_path / "slow.c", functions=800)
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    client = subprocess.Popen(
        [ccfarm_exe(), "gcc", "-O2", "-c", "slow.c", "-o", "slow.o"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: bool(job_dirs(jobs_dir)), timeout=30)  # the job is there
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGTERM)
    _, stderr = client.communicate(timeout=120)
    assert client.returncode == 0, stderr.decode()
    assert b"compiled on " + daemon.spec.encode() in stderr, stderr  # finished remotely
    assert daemon.process.wait(30) == 0
    assert not any(jobs_dir.iterdir())


def test_no_temporary_files_left_when_the_job_ends_locally(
    tmp_path: Path, ccfarmd, client_env
) -> None:
    """A local re-run replaces the wrapper process (exec): its temporaries go first."""
    daemon = ccfarmd()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    (tmp_path / "bad.c").write_text("int broken(void) { return undeclared; }\n")
    (tmp_path / "a.c").write_text("int a(void) { return 42; }\n")
    down = next_address()
    cases = [
        ({"CCFARM_HOSTS": daemon.spec}, "bad.c", 1),  # remote compile error: re-run here
        ({"CCFARM_HOSTS": f"{down}:{free_port(down)}", "CCFARM_FALLBACK": "1"}, "a.c", 0),
    ]
    for use_server in ("1", "0"):
        for extra, source, status in cases:
            env = {**client_env, **extra, "TMPDIR": str(private_tmp), "CCFARM_HELPER": use_server}
            proc = run([ccfarm_exe(), "gcc", "-c", source, "-o", "out.o"], tmp_path, env)
            assert proc.returncode == status, proc.stderr
            assert sorted(os.listdir(private_tmp)) == []


def test_unusable_state_directory_compiles_locally(tmp_path: Path, ccfarmd, client_env) -> None:
    """Slot locks cannot be taken (a file where the directory should be): warn, build here."""
    daemon = ccfarmd()
    (tmp_path / "not-a-dir").write_text("")
    state = tmp_path / "not-a-dir" / "state"
    (tmp_path / "a.c").write_text("int a(void) { return 42; }\n")
    run(["gcc", "-c", "a.c", "-o", "ref.o"], tmp_path)
    for use_server in ("1", "0"):
        env = {
            **client_env,
            "CCFARM_HOSTS": daemon.spec,
            "CCFARM_DIR": str(state),
            "DISTCC_DIR": str(state),
            "CCFARM_HELPER": use_server,
        }
        proc = run([ccfarm_exe(), "gcc", "-c", "a.c", "-o", "a.o"], tmp_path, env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.startswith(b"ccfarm: warning: state directory "), proc.stderr
        assert b"Traceback" not in proc.stderr
        assert (tmp_path / "a.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
        (tmp_path / "a.o").unlink()


def test_unsupported_hosts_are_named_not_silently_skipped(tmp_path: Path, client_env) -> None:
    (tmp_path / "a.c").write_text("int a(void) { return 42; }\n")
    env = {**client_env, "DISTCC_HOSTS": "builder@farm1/4 farm2,auth"}
    proc = run([ccfarm_exe(), "gcc", "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 0
    assert proc.stderr == (
        b"ccfarm: warning: failed to distribute a.c (ssh and ,auth hosts are not supported "
        b"(builder@farm1/4 farm2,auth)), running locally instead\n"
    )
