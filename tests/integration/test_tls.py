"""A real farm over TLS: scheduler, daemons and their agents, wrapper,
ccfarm-ctl, ccfarm-gethost and a real distcc, with certificates made for
the test (`tests.tlscerts`)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ccfarm_exe, ctl, local_slots_held, run, wait_for
from tests.tlscerts import PKI, make_pki

SOURCES = {
    "a.c": '#include <stdio.h>\nint a(int x) { printf("%d\\n", x); return x * 2; }\n',
    "b.c": "#include <string.h>\nsize_t b(const char *s) { return strlen(s) + 1; }\n",
    "c.c": "static int t[64];\nint c(int i) { t[i & 63] += i; return t[(i + 1) & 63]; }\n",
    "d.c": "#include <math.h>\ndouble d(double x) { return sqrt(x) * 3.0; }\n",
}
FLAGS = ("-O2", "-g", "-Wall")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _server_flags(pki: PKI, *, ca: bool = True, require: bool = True) -> tuple[str, ...]:
    flags = ("--tls-cert", pki.host.cert, "--tls-key", pki.host.key)
    return (*flags, *(("--tls-ca", pki.ca) if ca else ()), *(("--tls-require",) if require else ()))


def _client_flags(pki: PKI) -> tuple[str, ...]:
    return ("--tls-ca", pki.ca, "--tls-cert", pki.host.cert, "--tls-key", pki.host.key)


def _client_env(pki: PKI, ca: str = "", cert: bool = True) -> dict[str, str]:
    env = {"CCFARM_TLS_CA": ca or pki.ca}
    if cert:
        env.update({"CCFARM_TLS_CERT": pki.host.cert, "CCFARM_TLS_KEY": pki.host.key})
    return env


def _secret(tmp_path: Path) -> str:
    path = tmp_path / "farm.secret"
    path.write_text("Kj3mYtq1bT9x0Qn2cW7vLs5eRz8uHa4o\n")
    path.chmod(0o600)
    return str(path)


def _ctl(sched: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", sched, "--json", *args]
    return subprocess.run(cmd, capture_output=True, check=False, timeout=30)


def _local_object(build: Path, name: str, flags: tuple[str, ...] = FLAGS) -> bytes:
    assert run(["gcc", *flags, "-c", name, "-o", "ref.o"], build).returncode == 0
    return (build / "ref.o").read_bytes()


def test_a_farm_over_tls_with_the_secret_builds_what_a_local_compile_builds(
    tmp_path: Path, pki: PKI, scheduler, ccfarmd, client_env
) -> None:
    secret = _secret(tmp_path)
    both = (*_server_flags(pki), "--secret-file", secret)
    sched = scheduler("--load-low", "100", "--load-high", "200", *both)
    daemons = [
        ccfarmd(extra=("--scheduler", sched, "--speed", str(1 + i), "--heartbeat", "0.5", *both))
        for i in range(2)
    ]
    # the agents joined over TLS (the scheduler takes nothing else), and ctl asks over TLS
    proven = (*_client_flags(pki), "--secret-file", secret)
    wait_for(lambda: len(ctl(sched, *proven, "hosts")) == 2, timeout=20)  # type: ignore[arg-type]
    build = tmp_path / "build"
    build.mkdir()
    for name, text in SOURCES.items():
        (build / name).write_text(text)
    objects = " ".join(n.replace(".c", ".o") for n in SOURCES)
    (build / "Makefile").write_text(f"CFLAGS = {' '.join(FLAGS)}\nall: {objects}\n")
    env = {
        **client_env,
        **_client_env(pki),
        "CCFARM_SCHEDULER": sched,
        "CCFARM_SECRET_FILE": secret,
        "CCFARM_VERBOSE": "1",
        "CCFARM_FALLBACK": "0",
    }
    with local_slots_held(client_env["CCFARM_DIR"]):  # else a job may compile here
        proc = run(["make", "-j4", f"CC={ccfarm_exe()} gcc"], build, env)
    assert proc.returncode == 0, proc.stderr.decode()
    err = proc.stderr.decode()
    hosts = {f"{d.address}:{d.port}" for d in daemons}
    compiled_on = [line for line in err.splitlines() if "compiled on" in line]
    assert len(compiled_on) >= len(SOURCES), err
    assert all(any(h in line for h in hosts) for line in compiled_on), err
    assert "failed" not in err, err
    for name in SOURCES:
        assert (build / name).with_suffix(".o").read_bytes() == _local_object(build, name), name
    logs = [Path(daemon.log_path).read_text() for daemon in daemons]
    for log in logs:
        assert "refused" not in log and "handshake failed" not in log, log
    # ccfarm's own protocol ran there, so over TLS (--tls-require refuses it in plain)
    assert any(" v4346" in log for log in logs), logs
    # ctl can also disable a host over TLS
    host = sorted(hosts)[0]
    assert ctl(sched, *proven, "disable", host) == {"host": host, "disabled": True}


def test_without_a_certificate_the_ca_signed_no_client_gets_in(
    tmp_path: Path, pki: PKI, scheduler, ccfarmd, client_env
) -> None:
    sched = scheduler(*_server_flags(pki))
    daemon = ccfarmd(extra=("--scheduler", sched, "--heartbeat", "0.5", *_server_flags(pki)))
    wait_for(lambda: len(ctl(sched, *_client_flags(pki), "hosts")) == 1, timeout=20)  # type: ignore[arg-type]
    # ccfarm-ctl: no certificate, a stranger's, or no TLS at all
    stranger = ("--tls-cert", pki.other_host.cert, "--tls-key", pki.other_host.key)
    for flags in (("--tls-ca", pki.ca), ("--tls-ca", pki.ca, *stranger), ()):
        refused = _ctl(sched, *flags, "disable", f"{daemon.address}:{daemon.port}")
        assert refused.returncode != 0, flags
    assert ctl(sched, *_client_flags(pki), "hosts")[0]["state"] == "up"  # type: ignore[index]
    # a daemon's agent with a stranger's certificate never registers
    ccfarmd(
        extra=(
            "--scheduler",
            sched,
            "--heartbeat",
            "0.5",
            "--tls-ca",
            pki.ca,
            "--tls-cert",
            pki.other_host.cert,
            "--tls-key",
            pki.other_host.key,
        )
    )
    log = tmp_path / f"scheduler-{sched.split(':')[0]}.log"
    wait_for(lambda: log.read_text().count("TLS handshake failed") >= 5, timeout=30)
    assert len(ctl(sched, *_client_flags(pki), "hosts")) == 1  # type: ignore[arg-type]
    # a wrapper without a certificate: the daemon refuses it, the job compiles here
    (tmp_path / "a.c").write_text(SOURCES["a.c"])
    env = {
        **client_env,
        **_client_env(pki, cert=False),
        "DISTCC_HOSTS": f"{daemon.address}:{daemon.port}/2,ccfarm",
        "CCFARM_VERBOSE": "1",
        "CCFARM_FALLBACK": "1",
    }
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"compiled on" not in proc.stderr, proc.stderr
    assert (tmp_path / "a.o").read_bytes() == _local_object(tmp_path, "a.c", ("-O2",))
    assert "TLS handshake failed" in Path(daemon.log_path).read_text()


def test_a_wrong_ca_on_the_client_is_a_failed_host_never_a_failed_build(
    tmp_path: Path, pki: PKI, scheduler, ccfarmd, client_env
) -> None:
    good = ccfarmd(extra=_server_flags(pki, ca=False))
    strange = ccfarmd(
        extra=("--tls-cert", pki.other_host.cert, "--tls-key", pki.other_host.key)
    )  # a host whose certificate the farm's CA did not sign
    nameless = ccfarmd(extra=("--tls-cert", pki.nameless.cert, "--tls-key", pki.nameless.key))
    (tmp_path / "b.c").write_text(SOURCES["b.c"])
    local = _local_object(tmp_path, "b.c", ("-O2",))
    base = {**client_env, "CCFARM_VERBOSE": "1", "CCFARM_FALLBACK": "1"}
    listed = " ".join(f"{d.address}:{d.port}/1,ccfarm" for d in (strange, nameless, good))
    cases = [
        # the farm's CA: the stranger and the host whose certificate names no
        # address fail, the good host compiles it
        (_client_env(pki, cert=False), listed, f"{good.address}:{good.port}"),
        # the wrapper's CA is a stranger's: the good host fails too, the job compiles here
        (_client_env(pki, ca=pki.other_ca, cert=False), f"{good.address}:{good.port}/1,ccfarm", ""),
    ]
    for extra, hosts, where in cases:
        (tmp_path / "b.o").unlink(missing_ok=True)
        env = {**base, **extra, "DISTCC_HOSTS": hosts}
        proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "b.c"], tmp_path, env)
        err = proc.stderr.decode()
        assert proc.returncode == 0, err
        assert (tmp_path / "b.o").read_bytes() == local
        if where:
            assert f"compiled on {where}" in err, err
        else:
            assert "compiled on" not in err, err
    # a scheduler the wrapper cannot verify: marked failed, the job compiles here
    sched = scheduler(*_server_flags(pki, ca=False))
    (tmp_path / "b.o").unlink()
    env = {**base, **_client_env(pki, ca=pki.other_ca, cert=False), "CCFARM_SCHEDULER": sched}
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "b.c"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "b.o").read_bytes() == local


def test_plain_distcc_still_works_on_a_port_that_requires_tls(
    tmp_path: Path, pki: PKI, ccfarmd, client_env
) -> None:
    distcc = shutil.which("distcc")
    if distcc is None:
        pytest.fail("distcc is needed (scripts/setup.sh --test installs it)")
    daemon = ccfarmd(extra=_server_flags(pki))
    closed = ccfarmd(extra=(*_server_flags(pki), "--no-distcc-clients"))
    (tmp_path / "d.c").write_text(SOURCES["d.c"])
    local = _local_object(tmp_path, "d.c", ("-O2",))
    for target, works in ((daemon, True), (closed, False)):
        env = {
            **client_env,
            "DISTCC_HOSTS": f"{target.address}:{target.port}/1,lzo",
            "DISTCC_FALLBACK": "0",
        }
        (tmp_path / "d.o").unlink(missing_ok=True)
        proc = run([distcc, "gcc", "-O2", "-c", "d.c"], tmp_path, env)
        log = Path(target.log_path).read_text()
        if works:
            assert proc.returncode == 0, proc.stderr.decode()
            assert (tmp_path / "d.o").read_bytes() == local
            assert " v2 " in log
        else:
            assert proc.returncode != 0
            assert "--no-distcc-clients" in log
    # ccfarm's own protocol without TLS is refused there: the wrapper compiles here
    env = {
        **client_env,
        "DISTCC_HOSTS": f"{daemon.address}:{daemon.port}/1,ccfarm",
        "CCFARM_VERBOSE": "1",
        "CCFARM_FALLBACK": "1",
    }
    (tmp_path / "d.o").unlink(missing_ok=True)
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "d.c"], tmp_path, env)
    assert proc.returncode == 0 and b"compiled on" not in proc.stderr, proc.stderr
    assert (tmp_path / "d.o").read_bytes() == local
    assert "without TLS, and --tls-require is set" in Path(daemon.log_path).read_text()
    # and with TLS (a certificate, as the port requires) it runs there (a fresh
    # state directory: the refusal marked the host as failed)
    fresh = tmp_path / "fresh-state"
    fresh.mkdir()
    env.update({**_client_env(pki), "CCFARM_DIR": str(fresh), "DISTCC_DIR": str(fresh)})
    (tmp_path / "d.o").unlink(missing_ok=True)
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "d.c"], tmp_path, env)
    assert proc.returncode == 0 and b"compiled on" in proc.stderr, proc.stderr
    assert (tmp_path / "d.o").read_bytes() == local


def test_gethost_asks_over_tls_and_distcc_compiles_in_plain(
    tmp_path: Path, pki: PKI, scheduler, ccfarmd, client_env
) -> None:
    distcc, gethost = shutil.which("distcc"), shutil.which("ccfarm-gethost")
    if distcc is None or gethost is None:
        pytest.fail("distcc and ccfarm-gethost are needed (scripts/setup.sh --test)")
    sched = scheduler(*_server_flags(pki))
    daemon = ccfarmd(extra=("--scheduler", sched, "--heartbeat", "0.5", *_server_flags(pki)))
    wait_for(lambda: len(ctl(sched, *_client_flags(pki), "hosts")) == 1, timeout=20)  # type: ignore[arg-type]
    (tmp_path / "c.c").write_text(SOURCES["c.c"])
    env = {**client_env, "CCFARM_SCHEDULER": sched, "DISTCC_FALLBACK": "0"}
    proc = run([gethost, *_client_flags(pki), distcc, "gcc", "-O2", "-c", "c.c"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert " v2 " in Path(daemon.log_path).read_text()  # leased, and run there
    assert (tmp_path / "c.o").read_bytes() == _local_object(tmp_path, "c.c", ("-O2",))


def test_stalled_and_garbage_handshakes_do_not_hold_up_others(
    tmp_path: Path, pki: PKI, ccfarmd, client_env
) -> None:
    daemon = ccfarmd(extra=(*_server_flags(pki, ca=False), "--io-timeout", "3"))
    where = (daemon.address, daemon.port)
    stalled = []
    for _ in range(20):  # a TLS record header, then nothing
        sock = socket.create_connection(where, timeout=60)
        sock.sendall(b"\x16\x03\x01\x02\x00")
        stalled.append(sock)
    garbage = socket.create_connection(where, timeout=60)
    garbage.sendall(b"\x16\x03" + bytes(range(256)) * 4)
    (tmp_path / "a.c").write_text(SOURCES["a.c"])
    env = {
        **client_env,
        **_client_env(pki, cert=False),
        "DISTCC_HOSTS": f"{daemon.address}:{daemon.port}/1,ccfarm",
        "CCFARM_VERBOSE": "1",
    }
    proc = run([ccfarm_exe(), "gcc", "-O2", "-c", "a.c"], tmp_path, env, timeout=60)
    assert proc.returncode == 0 and b"compiled on" in proc.stderr, proc.stderr
    # a plain TLS client is served meanwhile too
    context = ssl.create_default_context(cafile=pki.ca)
    with (
        socket.create_connection(where, timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=daemon.address) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # the garbage is closed at once, the stalled ones at the handshake's timeout
    # (a recv that times out fails the test)
    garbage.settimeout(30)
    _wait_closed(garbage)
    garbage.close()
    started = time.monotonic()
    for sock in stalled:
        sock.settimeout(60)
        _wait_closed(sock)
        sock.close()
    assert time.monotonic() - started < 45  # (--io-timeout 3: not the 60 s default)
    assert "TLS handshake failed" in Path(daemon.log_path).read_text()


def _wait_closed(sock: socket.socket) -> None:
    """Until the server closes `sock` (reading whatever it says first)."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
