"""`pip install` of a built wheel into a fresh venv: no compiler for LZO, a working farm.

Builds the wheel (`pip wheel . --no-deps`), installs it with binary
packages only (`--only-binary :all:`: nothing is compiled, so no C
toolchain, liblzo2 headers or Python headers are needed) and with only the
venv on PATH, then uses that install alone: `ccfarm --version`, its
`ccfarmd`, and real compiles through it, with the native launcher built at
first use. Needs the package index (as `pip install ccfarm` does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccfarm.demo.farm import ccfarmd_command, stop_process, wait_listening
from tests.conftest import REPO, free_port, next_address, require_binary, run
from tests.integration.test_forkserver import name_for, server_pids

pytestmark = pytest.mark.slow

SOURCE = "int twice(int x) { return 2 * x; }\n"


def _pip(venv: Path, *args: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel of this tree and its dependencies, binaries only."""
    top = tmp_path_factory.mktemp("wheel")
    wheels = top / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-w", str(wheels), "-q"],
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stderr.decode()
    (wheel,) = wheels.glob("ccfarm-*.whl")
    venv = top / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bare = {k: v for k, v in os.environ.items() if k not in ("CC", "CFLAGS", "LDFLAGS")}
    bare["PATH"] = str(venv / "bin")  # no gcc, cc or make: nothing may need compiling
    _pip(venv, "install", "-q", "--only-binary", ":all:", str(wheel), env=bare)
    return venv


def _env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC_", "CCFARM_"))}
    state = tmp_path / name
    state.mkdir()
    env.update({"CCFARM_DIR": str(state), "CCFARM_FALLBACK": "0", "CCFARM_HELPER_IDLE": "5"})
    env.update(extra)
    return env


@pytest.fixture
def stop_fork_servers() -> Iterator[list[dict[str, str]]]:
    envs: list[dict[str, str]] = []
    yield envs
    for env in envs:
        for pid in server_pids(name_for(env)):
            os.kill(pid, 15)


def test_version_without_a_compiler_says_once_that_it_runs_as_python(
    installed: Path, tmp_path: Path, stop_fork_servers: list[dict[str, str]]
) -> None:
    script = installed / "bin" / "ccfarm"
    env = _env(tmp_path, "state", PATH=str(installed / "bin"))  # no cc to build the launcher
    stop_fork_servers.append(env)
    first = run([str(script), "--version"], tmp_path, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.decode().strip() == "ccfarm 0.1.0"
    assert first.stderr.count(b"native launcher not built") == 1, first.stderr
    assert script.read_bytes().startswith(b"#!")  # still pip's console script
    again = run([str(script), "--version"], tmp_path, env)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert b"native launcher" not in again.stderr  # said once, not per job


def test_compiles_through_its_own_daemon_and_builds_the_launcher_at_first_use(
    installed: Path, tmp_path: Path, stop_fork_servers: list[dict[str, str]]
) -> None:
    require_binary("gcc")
    python = installed / "bin" / "python"
    address = next_address()
    port = free_port(address)
    log = tmp_path / "ccfarmd.log"
    command = ccfarmd_command(address, port, 2, ("--log-file", str(log)))
    daemon = subprocess.Popen([str(python), *command[1:]], stdin=subprocess.DEVNULL)
    try:
        wait_listening(address, port)
        (tmp_path / "x.c").write_text(SOURCE)
        subprocess.run(["gcc", "-O2", "-c", "x.c", "-o", "local.o"], cwd=tmp_path, check=True)
        script = installed / "bin" / "ccfarm"
        env = _env(
            tmp_path,
            "state",
            CCFARM_HOSTS=f"{address}:{port}/2",
            CCFARM_VERBOSE="1",
            CCFARM_LAUNCHER_DEBUG="1",
        )
        stop_fork_servers.append(env)
        ways = []
        for out in ("first.o", "second.o", "third.o"):
            result = run([str(script), "gcc", "-O2", "-c", "x.c", "-o", out], tmp_path, env)
            assert result.returncode == 0, result.stderr
            assert f"compiled on {address}".encode() in result.stderr, result.stderr
            assert (tmp_path / out).read_bytes() == (tmp_path / "local.o").read_bytes()
            assert b"native launcher not built" not in result.stderr
            ways.append([ln for ln in result.stderr.splitlines() if b"ccfarm-launcher" in ln])
        assert script.read_bytes().startswith(b"\x7fELF")  # built by the first job
        assert ways[0] == []  # the first job ran as the Python script
        # and the later ones went through it to the fork server
        assert any(ln.startswith(b"ccfarm-launcher: fork server (") for ln in ways[2]), ways
    finally:
        stop_process(daemon, 10)
