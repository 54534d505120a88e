"""How the wrapper is called (explicit, implicit, masquerade, CMake launcher),
slot limits across processes, and the daemon's job limit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ccfarm_exe, run, wait_for

SOURCE = "int f(int x) { return x * 7; }\n"


def _recording_compiler(bindir: Path, log: Path, delay: float) -> None:
    """A `gcc` that logs when it runs (for concurrency checks), then runs the real gcc."""
    bindir.mkdir(parents=True, exist_ok=True)
    real = shutil.which("gcc")
    script = bindir / "gcc"
    # a shell script: a daemon that gave up root may not run this tree's Python
    script.write_text(
        "#!/bin/sh\n"
        "start=$(date +%s.%N)\n"
        f"sleep {delay}\n"
        f'{real} "$@"\n'
        "code=$?\n"
        f'echo "$start $(date +%s.%N)" >> {str(log)!r}\n'
        "exit $code\n"
    )
    script.chmod(0o755)
    (bindir / "x86_64-linux-gnu-gcc").symlink_to(script)  # distcc's cross name for gcc


#: a recording compiler writes its log outside its job: no job sandbox
FAKE = ("--compiler", "gcc", "--compiler", "x86_64-linux-gnu-gcc", "--sandbox=off")


def _max_overlap(log: Path) -> int:
    spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    return max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)


def test_implicit_compiler(tmp_path: Path, ccfarmd, client_env) -> None:
    (tmp_path / "a.c").write_text(SOURCE)
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    proc = run([ccfarm_exe(), "-c", "a.c", "-o", "a.o"], tmp_path, env)
    assert proc.returncode == 0 and b"compiled on" in proc.stderr
    run(["cc", "-c", "a.c", "-o", "ref.o"], tmp_path)
    assert (tmp_path / "a.o").read_bytes() == (tmp_path / "ref.o").read_bytes()


def test_masquerade_symlink(tmp_path: Path, ccfarmd, client_env) -> None:
    masq = tmp_path / "masq"
    masq.mkdir()
    (masq / "gcc").symlink_to(ccfarm_exe())
    (tmp_path / "a.c").write_text(SOURCE)
    daemon = ccfarmd()
    env = {
        **client_env,
        "CCFARM_HOSTS": daemon.spec,
        "CCFARM_VERBOSE": "1",
        "PATH": f"{masq}:{os.environ['PATH']}",
    }
    proc = run(["gcc", "-O2", "-c", "a.c", "-o", "a.o"], tmp_path, env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert b"compiled on" in proc.stderr
    link = run(["gcc", "a.o", "-shared", "-o", "liba.so"], tmp_path, env, timeout=30)
    # links run locally (in a local slot), no recursion, and say so once
    assert link.returncode == 0, link.stderr
    assert link.stderr.startswith(b"ccfarm: compiled here: not distributed: ")
    assert link.stderr.count(b"\n") == 1


def test_cmake_compiler_launcher(tmp_path: Path, ccfarmd, client_env) -> None:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake is needed (scripts/setup.sh --test installs it)")
    src = tmp_path / "proj"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(demo C CXX)\n"
        "add_executable(demo main.c util.cpp)\n"
    )
    (src / "main.c").write_text("int util(void);\nint main(void) { return util() - 42; }\n")
    (src / "util.cpp").write_text('extern "C" int util() { return 42; }\n')
    daemon = ccfarmd()
    env = {**client_env, "CCFARM_HOSTS": daemon.spec, "CCFARM_VERBOSE": "1"}
    build = tmp_path / "build"
    configure = run(
        [
            cmake,
            "-S",
            str(src),
            "-B",
            str(build),
            f"-DCMAKE_C_COMPILER_LAUNCHER={ccfarm_exe()}",
            f"-DCMAKE_CXX_COMPILER_LAUNCHER={ccfarm_exe()}",
        ],
        tmp_path,
        env,
    )
    assert configure.returncode == 0, configure.stderr.decode()
    built = run([cmake, "--build", str(build)], tmp_path, env)
    assert built.returncode == 0, built.stderr.decode() + built.stdout.decode()
    assert built.stdout.count(b"compiled on") + built.stderr.count(b"compiled on") >= 2
    assert run([str(build / "demo")], tmp_path).returncode == 0


def _concurrent_jobs(
    tmp_path: Path,
    daemon_dir: Path,
    ccfarmd,
    client_env,
    *,
    daemon_jobs: int,
    host_slots: int,
    jobs: int,
) -> int:
    """Run `jobs` wrappers at once through a recording compiler; the most that overlapped."""
    log = daemon_dir / "spans.log"
    bindir = daemon_dir / "fakebin"
    _recording_compiler(bindir, log, delay=0.3)
    daemon = ccfarmd(jobs=daemon_jobs, extra=("--compiler-path", str(bindir), *FAKE))
    env = {
        **client_env,
        "CCFARM_HOSTS": f"{daemon.address}:{daemon.port}/{host_slots}",
        "CCFARM_VERBOSE": "1",
    }
    for i in range(jobs):
        (tmp_path / f"s{i}.c").write_text(SOURCE.replace("f(", f"f{i}("))
    procs = [
        subprocess.Popen(
            [ccfarm_exe(), "gcc", "-c", f"s{i}.c"], cwd=tmp_path, env=env, stderr=subprocess.PIPE
        )
        for i in range(jobs)
    ]
    for p in procs:
        assert b"compiled on" in p.communicate(timeout=60)[1]
        assert p.returncode == 0
    assert len(log.read_text().splitlines()) == jobs  # all ran on the daemon
    return _max_overlap(log)


def test_slot_limit_holds_across_wrapper_processes(
    tmp_path: Path, daemon_dir: Path, ccfarmd, client_env
) -> None:
    # the host list says 2 slots; the daemon would take 4
    found = _concurrent_jobs(
        tmp_path, daemon_dir, ccfarmd, client_env, daemon_jobs=4, host_slots=2, jobs=6
    )
    assert found == 2


def test_daemon_runs_at_most_jobs_compilers(
    tmp_path: Path, daemon_dir: Path, ccfarmd, client_env
) -> None:
    # the client would send 4 at once; --jobs 1 makes the others wait
    found = _concurrent_jobs(
        tmp_path, daemon_dir, ccfarmd, client_env, daemon_jobs=1, host_slots=4, jobs=4
    )
    assert found == 1


def test_config_file_pid_file_and_detach(tmp_path: Path, daemon_dir: Path, client_env) -> None:
    from tests.conftest import free_port, next_address

    address = next_address()
    port = free_port(address)
    config = tmp_path / "ccfarmd.toml"
    config.write_text(
        f'[ccfarmd]\nlisten = "{address}"\nport = {port}\njobs = 1\n'
        f'allow = ["127.0.0.0/8"]\nlog_file = "{tmp_path / "d.log"}"\n'
    )
    # in a directory of the daemon's user, which removes it at exit (after giving up root)
    pid_file = daemon_dir / "d.pid"
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "ccfarm.daemon.main",
            "--daemon",
            "--config",
            str(config),
            "--pid-file",
            str(pid_file),
        ],
        timeout=30,
        check=False,
    )
    assert started.returncode == 0  # the parent returns once detached
    wait_for(pid_file.exists)
    pid = int(pid_file.read_text())
    try:
        (tmp_path / "a.c").write_text(SOURCE)
        env = {**client_env, "CCFARM_HOSTS": f"{address}:{port}", "CCFARM_VERBOSE": "1"}
        wait_for(lambda: "listening" in (tmp_path / "d.log").read_text())
        proc = run([ccfarm_exe(), "gcc", "-c", "a.c"], tmp_path, env)
        assert proc.returncode == 0 and b"compiled on" in proc.stderr
    finally:
        os.kill(pid, 15)
    wait_for(lambda: not pid_file.exists())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("daemon did not stop on SIGTERM")
