"""Real distcc <-> ccfarm, both directions, with real processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.conftest import ccfarm_exe, copy_tree, require_binary, run

pytestmark = pytest.mark.interop

CAPTURES_REPLAYABLE = [
    "a-p1-plain",
    "b-p2-lzo",
    "c-p1-error",
    "c2-p2-error",
    "d-p1-warning",
    "d2-p2-warning",
    "e-p3-pump",
    "e2-p3-pump-md",
    "i-p1-debug",
    "j-ccfarm-p2",
    "j2-py-p2-store",
    "j3-ccfarm-p3",
    "m-p1-strip-args",
    "o-p1-dash-S",
]


@pytest.fixture(scope="module")
def lua_files(lua_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(lua_root / "third-party" / "lua54", tmp_path_factory.mktemp("i") / "lua")


def _sample(tree: Path) -> list[str]:
    return ["lapi.c", "lcode.c", "lstrlib.c", "lvm.c", "lua.c"]


def _distcc_env(client_env: dict[str, str], hosts: str) -> dict[str, str]:
    return {
        **client_env,
        "DISTCC_HOSTS": hosts,
        "DISTCC_FALLBACK": "0",
        "DISTCC_SKIP_LOCAL_RETRY": "1",
        "DISTCC_VERBOSE": "0",
    }


@pytest.mark.parametrize("option", ["", ",lzo"], ids=["protocol1", "protocol2-lzo"])
def test_real_distcc_client_against_ccfarmd(
    option: str, lua_files: Path, ccfarmd, client_env
) -> None:
    distcc = require_binary("distcc")
    daemon = ccfarmd()
    env = _distcc_env(client_env, f"{daemon.address}:{daemon.port}{option}")
    for name in _sample(lua_files):
        base = name[:-2]
        remote = run([distcc, "gcc", "-O2", "-c", name, "-o", f"{base}.d.o"], lua_files, env)
        assert remote.returncode == 0, remote.stderr.decode()
        local = run(["gcc", "-O2", "-c", name, "-o", f"{base}.l.o"], lua_files)
        assert local.returncode == 0
        assert (lua_files / f"{base}.d.o").read_bytes() == (lua_files / f"{base}.l.o").read_bytes()
    log = Path(daemon.log_path).read_text()
    assert log.count(f" v{1 if not option else 2} ") >= len(_sample(lua_files)), log


def test_real_distcc_compile_error_reaches_client(tmp_path: Path, ccfarmd, client_env) -> None:
    distcc = require_binary("distcc")
    (tmp_path / "bad.c").write_text("int f(void) { return nope; }\n")
    daemon = ccfarmd()
    env = _distcc_env(client_env, f"{daemon.address}:{daemon.port},lzo")
    remote = run([distcc, "gcc", "-c", "bad.c", "-o", "bad.o"], tmp_path, env)
    assert remote.returncode == 1
    assert b"nope" in remote.stderr and b"undeclared" in remote.stderr


@pytest.mark.parametrize("capture", CAPTURES_REPLAYABLE)
def test_replay_real_distcc_requests(capture: str, captures_dir: Path, ccfarmd) -> None:
    """Bytes a real distcc client sent (v1, v2, v3 pump) get the reply distccd gave."""
    from ccfarm.protocol import NEED_DATA, ReplyParser, RequestParser

    daemon = ccfarmd()
    request = (captures_dir / f"{capture}.client.bin").read_bytes()
    expected = (captures_dir / f"{capture}.server.bin").read_bytes()
    with socket.create_connection((daemon.address, daemon.port), timeout=30) as sock:
        sock.sendall(request)  # never half-close: the daemon would kill the job
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    parser = RequestParser()
    parser.receive_data(request)
    parser.next_event()
    version = parser.version

    def events(data: bytes) -> list[object]:
        p = ReplyParser(version)
        p.receive_data(data)
        p.receive_eof()
        out = []
        while (e := p.next_event()) is not NEED_DATA:
            out.append(e)
        return out

    got, want = events(reply), events(expected)
    assert [type(e).__name__ for e in got] == [type(e).__name__ for e in want]
    for g, w in zip(got, want, strict=True):
        if type(g).__name__ == "Stderr" and capture.startswith(("c", "d")):
            # same messages; distccd's came from gcc reading a .i in its own temp dir
            assert _message_lines(g) == _message_lines(w)
        else:
            assert g == w, capture


def _message_lines(event: object) -> list[bytes]:
    data: bytes = event.data  # type: ignore[attr-defined]
    return [ln.split(b":", 3)[-1] for ln in data.splitlines() if b"error" in ln or b"warning" in ln]


@pytest.mark.parametrize("option", ["", ",lzo"], ids=["protocol1", "protocol2-lzo"])
def test_ccfarm_against_real_distccd(option: str, lua_files: Path, distccd, client_env) -> None:
    address, port = distccd()
    env = {**client_env, "DISTCC_HOSTS": f"{address}:{port}{option}", "CCFARM_VERBOSE": "1"}
    for name in _sample(lua_files):
        base = name[:-2]
        remote = run(
            [ccfarm_exe(), "gcc", "-O2", "-MD", "-c", name, "-o", f"{base}.c.o"], lua_files, env
        )
        assert remote.returncode == 0, remote.stderr.decode()
        assert f"compiled on {address}:{port}".encode() in remote.stderr
        deps = (lua_files / f"{base}.c.d").read_bytes()
        local = run(["gcc", "-O2", "-MD", "-c", name, "-o", f"{base}.c.o"], lua_files)
        assert local.returncode == 0
        assert (lua_files / f"{base}.c.d").read_bytes() == deps
        remote_obj = (lua_files / f"{base}.c.o").read_bytes()
        run(["gcc", "-O2", "-c", name, "-o", f"{base}.l.o"], lua_files)
        assert remote_obj == (lua_files / f"{base}.l.o").read_bytes()


def test_ccfarm_pump_protocol_against_real_distccd(lua_files: Path, distccd, client_env) -> None:
    """Protocol 3 (`,cpp,lzo`): ccfarm sends the sources, distccd preprocesses."""
    address, port = distccd()
    env = {**client_env, "DISTCC_HOSTS": f"{address}:{port},cpp,lzo", "CCFARM_VERBOSE": "1"}
    for name in _sample(lua_files):
        base = name[:-2]
        remote = run([ccfarm_exe(), "gcc", "-O2", "-c", name, "-o", f"{base}.p.o"], lua_files, env)
        assert remote.returncode == 0, remote.stderr.decode()
        assert b"protocol 0x3" in remote.stderr
        run(["gcc", "-O2", "-c", name, "-o", f"{base}.l.o"], lua_files)
        assert (lua_files / f"{base}.p.o").read_bytes() == (lua_files / f"{base}.l.o").read_bytes()


def test_real_distcc_pump_mode_against_ccfarmd(tmp_path: Path, ccfarmd, client_env) -> None:
    """distcc-pump's include server (where it runs) sends protocol 3 to ccfarmd."""
    pump = require_binary("distcc-pump")
    distcc = require_binary("distcc")
    daemon = ccfarmd()
    (tmp_path / "h.h").write_text("#define N 3\n")
    (tmp_path / "p.c").write_text('#include "h.h"\nint p(void) { return N; }\n')
    env = _distcc_env(client_env, f"{daemon.address}:{daemon.port},cpp,lzo")
    env["DISTCC_TESTING_INCLUDE_SERVER"] = "1"  # fail instead of silently using protocol 2
    # Debian 12's include server needs a shim on Python >= 3.10 (see pump_shim/)
    import lzallright  # the shim compresses with it, which the system Python lacks

    codec = Path(lzallright.__file__).parents[1]
    shim_path = [str(Path(__file__).parent / "pump_shim"), str(codec)]
    env["PYTHONPATH"] = os.pathsep.join(shim_path)
    proc = run([pump, distcc, "gcc", "-O2", "-c", "p.c", "-o", "p.o"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert " v3 " in Path(daemon.log_path).read_text()
    run(["gcc", "-O2", "-c", "p.c", "-o", "l.o"], tmp_path)
    assert (tmp_path / "p.o").read_bytes() == (tmp_path / "l.o").read_bytes()
    assert os.path.exists(tmp_path / "p.o")
