"""The native launcher, built for real and run against a real fork server and ccfarmd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.client.forkserver import launcher
from tests.conftest import require_binary, run, wait_for
from tests.integration.test_forkserver import name_for, server_pids

SOURCE = "int triple(int x) { return 3 * x; }\n"


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_binary("cc")
    target = tmp_path_factory.mktemp("bin") / "ccfarm"
    launcher.build(str(target))
    return target


@pytest.fixture
def env(client_env: dict[str, str], ccfarmd) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    daemon = ccfarmd()
    env = {
        **client_env,
        "CCFARM_HOSTS": daemon.spec,
        "CCFARM_LAUNCHER_DEBUG": "1",
        "CCFARM_HELPER_IDLE": "30",
    }
    yield env
    for pid in server_pids(name_for(env)):
        os.kill(pid, signal.SIGTERM)


def _ways(stderr: bytes) -> list[bytes]:
    return [ln for ln in stderr.splitlines() if ln.startswith(b"ccfarm-launcher: ")]


def _compile_twice(native: Path, cwd: Path, env: dict[str, str], argv0: str | Path) -> list[bytes]:
    """The first job starts the fork server and goes to it, the second finds it up."""
    ways = []
    for out in ("first.o", "second.o"):
        result = run([str(argv0), "gcc", "-O2", "-c", "x.c", "-o", out], cwd, env)
        assert result.returncode == 0, result.stderr
        ways += _ways(result.stderr)
    return ways


def _local_object(cwd: Path) -> bytes:
    subprocess.run(["gcc", "-O2", "-c", "x.c", "-o", "local.o"], cwd=cwd, check=True)
    return (cwd / "local.o").read_bytes()


def test_starts_the_forkserver_and_forwards_to_it(
    native: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "x.c").write_text(SOURCE)
    ways = _compile_twice(native, tmp_path, env, native)
    assert ways == [
        b"ccfarm-launcher: started the fork server",
        b"ccfarm-launcher: fork server (exit 0)",
        b"ccfarm-launcher: fork server (exit 0)",
    ]
    assert len(server_pids(name_for(env))) == 1
    local = _local_object(tmp_path)
    assert (tmp_path / "first.o").read_bytes() == local == (tmp_path / "second.o").read_bytes()


def test_forwards_to_the_forkserver_the_python_wrapper_started(
    native: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """The C code computes the fork server's name exactly as the Python code does."""
    (tmp_path / "x.c").write_text(SOURCE)
    python = [sys.executable, "-m", "ccfarm.client.main", "gcc", "-O2", "-c", "x.c", "-o", "a.o"]
    assert run(python, tmp_path, env).returncode == 0
    wait_for(lambda: bool(server_pids(name_for(env))))
    result = run([str(native), "gcc", "-O2", "-c", "x.c", "-o", "b.o"], tmp_path, env)
    assert _ways(result.stderr) == [b"ccfarm-launcher: fork server (exit 0)"]
    assert (tmp_path / "b.o").read_bytes() == _local_object(tmp_path)


def test_concurrent_jobs_start_one_forkserver(
    native: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """A cold make -j6: one job starts the fork server, the others wait for it
    instead of each starting a Python wrapper."""
    (tmp_path / "x.c").write_text(SOURCE)
    procs = [
        subprocess.Popen(
            [str(native), "gcc", "-O2", "-c", "x.c", "-o", f"{i}.o"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
        )
        for i in range(6)
    ]
    ways = []
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        ways += _ways(err)
    assert ways.count(b"ccfarm-launcher: started the fork server") == 1
    assert ways.count(b"ccfarm-launcher: fork server (exit 0)") == 6
    assert not [w for w in ways if w.startswith(b"ccfarm-launcher: python")]
    assert len(server_pids(name_for(env))) == 1
    local = _local_object(tmp_path)
    assert all((tmp_path / f"{i}.o").read_bytes() == local for i in range(6))


def test_masquerade_link_to_the_launcher(native: Path, tmp_path: Path, env: dict[str, str]) -> None:
    links = tmp_path / "links"
    links.mkdir()
    (links / "gcc").symlink_to(native)
    (tmp_path / "x.c").write_text(SOURCE)
    masq = {**env, "PATH": f"{links}:{env['PATH']}", "CCFARM_VERBOSE": "1"}
    for out in ("a.o", "b.o"):  # through the Python wrapper, then through the fork server
        result = run(["gcc", "-O2", "-c", "x.c", "-o", out], tmp_path, masq)
        assert result.returncode == 0, result.stderr
        assert b"compiled on " + env["CCFARM_HOSTS"].encode() in result.stderr
        wait_for(lambda: bool(server_pids(name_for(masq))))
    subprocess.run(["gcc", "-O2", "-c", "x.c", "-o", "local.o"], cwd=tmp_path, check=True)
    assert (tmp_path / "b.o").read_bytes() == (tmp_path / "local.o").read_bytes()


def test_errors_signals_and_version(native: Path, tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "x.c").write_text(SOURCE)
    _compile_twice(native, tmp_path, env, native)  # a fork server is up
    (tmp_path / "bad.c").write_text("int f(void) { return nope; }\n")
    local = run(["gcc", "-c", "bad.c", "-o", "bad.o"], tmp_path)
    remote = run([str(native), "gcc", "-c", "bad.c", "-o", "bad.o"], tmp_path, env)
    assert _ways(remote.stderr) == [b"ccfarm-launcher: fork server (exit 1)"]
    shown = b"".join(ln for ln in remote.stderr.splitlines(True) if not ln.startswith(b"ccfarm-"))
    assert (remote.returncode, shown) == (local.returncode, local.stderr)

    bindir = tmp_path / "fake"
    bindir.mkdir()
    (bindir / "crashcc").write_text("#!/bin/sh\nkill -ABRT $$\n")
    (bindir / "crashcc").chmod(0o755)
    crash_env = {**env, "PATH": f"{bindir}:{env['PATH']}", "CCFARM_HOSTS": "localhost"}
    crashed = run([str(native), "crashcc", "-c", "x.c"], tmp_path, crash_env)
    assert crashed.returncode == -signal.SIGABRT

    version = run([str(native), "--version"], tmp_path, env)
    assert version.stdout.startswith(b"ccfarm ") and version.returncode == 0


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"CCFARM_HELPER": "0"}, b"fork server off"),
        ({"CCFARM_DIR": "relative/state"}, b"state directory not plain"),
        ({"CCFARM_DIR": "{state}/"}, b"state directory not plain"),
    ],
)
def test_falls_back_to_python_when_unsure(
    native: Path, tmp_path: Path, env: dict[str, str], change: dict[str, str], why: bytes
) -> None:
    (tmp_path / "x.c").write_text(SOURCE)
    (tmp_path / "relative" / "state").mkdir(parents=True)
    changed = {**env, **{k: v.format(state=env["CCFARM_DIR"]) for k, v in change.items()}}
    result = run([str(native), "gcc", "-O2", "-c", "x.c", "-o", "x.o"], tmp_path, changed)
    assert result.returncode == 0, result.stderr
    assert _ways(result.stderr)[0] == b"ccfarm-launcher: python (" + why + b")"
    subprocess.run(["gcc", "-O2", "-c", "x.c", "-o", "local.o"], cwd=tmp_path, check=True)
    assert (tmp_path / "x.o").read_bytes() == (tmp_path / "local.o").read_bytes()


def test_closed_stdin_falls_back(native: Path, tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "x.c").write_text(SOURCE)
    result = subprocess.run(
        [str(native), "gcc", "-O2", "-c", "x.c", "-o", "x.o"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        preexec_fn=lambda: os.close(0),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert _ways(result.stderr)[0] == b"ccfarm-launcher: python (a standard descriptor is closed)"
    assert (tmp_path / "x.o").exists()


def test_c_string_literals() -> None:
    assert launcher.c_string('/a "b"\\c') == '"/a \\"b\\"\\\\c"'
    assert launcher.c_string("/caf\u00e9") == '"/caf\\303\\251"'
