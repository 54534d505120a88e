"""A real farm with a farm secret: scheduler, daemons, wrapper, ccfarm-ctl, distcc."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ccfarm.cgroups import cpu_slots
from ccfarm.control import messages as m
from ccfarm.control.codec import MessageParser, hello
from ccfarm.model import CompilerIdentity, HostReport
from tests.conftest import ccfarm_exe, ctl, local_slots_held, run, wait_for

SOURCES = {
    "a.c": '#include <stdio.h>\nint a(int x) { printf("%d\\n", x); return x * 2; }\n',
    "b.c": "#include <string.h>\nsize_t b(const char *s) { return strlen(s) + 1; }\n",
    "c.c": "static int t[64];\nint c(int i) { t[i & 63] += i; return t[(i + 1) & 63]; }\n",
    "d.c": "#include <math.h>\ndouble d(double x) { return sqrt(x) * 3.0; }\n",
    "e.c": "struct p { int x, y; };\nint e(struct p q) { return q.x - q.y; }\n",
    "f.c": "int f(int n) { int s = 0; for (int i = 0; i < n; i++) s += i * i; return s; }\n",
}
FLAGS = ("-O2", "-g", "-Wall")


def _secret(tmp_path: Path, name: str = "farm.secret", text: str = "") -> str:
    path = tmp_path / name
    path.write_text(text or "Kj3mYtq1bT9x0Qn2cW7vLs5eRz8uHa4o\n")
    path.chmod(0o600)
    return str(path)


def _ctl(sched: str, secret: str | None, *args: str) -> subprocess.CompletedProcess[bytes]:
    extra = ("--secret-file", secret) if secret else ()
    cmd = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", sched, "--json", *extra, *args]
    return subprocess.run(cmd, capture_output=True, check=False, timeout=30)


def _farm(scheduler, ccfarmd, secret: str, count: int = 2) -> tuple[str, list]:  # type: ignore[no-untyped-def]
    sched = scheduler("--load-low", "100", "--load-high", "200", "--secret-file", secret)
    daemons = [
        ccfarmd(
            extra=(
                "--scheduler",
                sched,
                "--speed",
                str(1 + i),
                "--heartbeat",
                "0.5",
                "--secret-file",
                secret,
            )
        )
        for i in range(count)
    ]
    wait_for(lambda: len(ctl(sched, "--secret-file", secret, "hosts")) == count, timeout=20)
    return sched, daemons


def _local_object(build: Path, name: str) -> bytes:
    """A local compile of `name` in the same directory (-g records it)."""
    assert run(["gcc", *FLAGS, "-c", name, "-o", "ref.o"], build).returncode == 0
    return (build / "ref.o").read_bytes()


def test_a_farm_with_a_secret_builds_what_a_local_compile_builds(
    tmp_path: Path, scheduler, ccfarmd, client_env
) -> None:
    secret = _secret(tmp_path)
    sched, daemons = _farm(scheduler, ccfarmd, secret)
    build = tmp_path / "build"
    build.mkdir()
    for name, text in SOURCES.items():
        (build / name).write_text(text)
    objects = " ".join(n.replace(".c", ".o") for n in SOURCES)
    (build / "Makefile").write_text(f"CFLAGS = {' '.join(FLAGS)}\nall: {objects}\n")
    env = {
        **client_env,
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
    assert len(compiled_on) >= len(SOURCES), err  # every job ran on the farm
    assert all(any(h in line for h in hosts) for line in compiled_on), err
    for name in SOURCES:
        assert (build / name).with_suffix(".o").read_bytes() == _local_object(build, name), name
    # the daemons logged no refusal of the wrapper's authenticated jobs
    for daemon in daemons:
        assert "not authenticated" not in Path(daemon.log_path).read_text()
        assert "refused:" not in Path(daemon.log_path).read_text()


def test_without_the_secret_nobody_joins_leases_or_steers(
    tmp_path: Path, scheduler, ccfarmd, client_env
) -> None:
    secret = _secret(tmp_path)
    sched, (daemon,) = _farm(scheduler, ccfarmd, secret, count=1)
    host = f"{daemon.address}:{daemon.port}"
    # a real ccfarmd with another secret: never registered
    wrong = _secret(tmp_path, "other.secret", "another farm entirely, not ours\n")
    stranger = ccfarmd(extra=("--scheduler", sched, "--heartbeat", "0.5", "--secret-file", wrong))
    wait_for(lambda: "not authenticated" in Path(stranger.log_path).read_text(), timeout=20)
    # a fake daemon without any secret, by hand: told, closed, not listed
    address, port = sched.split(":")
    gcc = CompilerIdentity("gcc", "12", "x86_64-linux-gnu")
    fake = HostReport(
        host=host,
        address="127.0.1.250",
        port=1,
        slots=30,
        cpus=30,
        speed=1000.0,
        load=0.0,
        compilers=(gcc,),
    )  # (the real host's name, too)
    with socket.create_connection((address, int(port)), timeout=10) as sock:
        sock.sendall(hello() + m.encode_host_report(fake))
        parser = MessageParser(expect_hello=False)
        while data := sock.recv(65536):
            parser.receive_data(data)
        answer = parser.next_message()
    assert answer is not None and answer.kind == m.FAILED
    assert answer.first()["reason"].startswith("authentication required")
    assert [h["host"] for h in ctl(sched, "--secret-file", secret, "hosts")] == [host]
    # ccfarm-ctl without the secret, or with the wrong one: refused, nothing changed
    for key in (None, wrong):
        refused = _ctl(sched, key, "disable", host)
        assert refused.returncode != 0
        assert b"authentication" in refused.stderr, refused.stderr
    assert ctl(sched, "--secret-file", secret, "hosts")[0]["state"] == "up"
    # `ccfarm -j` proves the secret as a job's lease does; without it, the host list answers
    env = {**client_env, "CCFARM_SCHEDULER": sched, "DISTCC_HOSTS": "a/5"}
    asked = run([ccfarm_exe(), "-j"], tmp_path, {**env, "CCFARM_SECRET_FILE": secret})
    assert asked.stdout == f"{daemon.jobs + cpu_slots()}\n".encode(), asked.stderr
    unproven = run([ccfarm_exe(), "-j"], tmp_path, env)
    assert unproven.stdout == b"5\n" and b"authentication" in unproven.stderr
    # a wrapper without the secret gets no lease (it compiles locally, and says why)
    (tmp_path / "a.c").write_text(SOURCES["a.c"])
    env = {**client_env, "CCFARM_SCHEDULER": sched, "CCFARM_VERBOSE": "1", "CCFARM_FALLBACK": "1"}
    proc = run([ccfarm_exe(), "gcc", "-c", "a.c"], tmp_path, env)
    assert proc.returncode == 0
    assert b"compiled on" not in proc.stderr and b"leased" not in proc.stderr, proc.stderr
    assert ctl(sched, "--secret-file", secret, "jobs") == []
    # with the secret, the operator may
    assert ctl(sched, "--secret-file", secret, "disable", host) == {"host": host, "disabled": True}


def test_a_world_readable_secret_file_is_refused_everywhere(
    tmp_path: Path, scheduler, client_env
) -> None:
    secret = _secret(tmp_path)
    Path(secret).chmod(0o644)
    proc = run([sys.executable, "-m", "ccfarm.scheduler.main", "--secret-file", secret], tmp_path)
    assert proc.returncode == 101 and b"readable or writable by every user" in proc.stderr
    daemon = [sys.executable, "-m", "ccfarm.daemon.main", "--no-detach", "--secret-file", secret]
    proc = run(daemon, tmp_path)
    assert proc.returncode == 101 and b"readable or writable by every user" in proc.stderr
    assert _ctl("127.0.0.1:1", secret, "hosts").returncode == 101
    (tmp_path / "a.c").write_text(SOURCES["a.c"])
    env = {**client_env, "CCFARM_SCHEDULER": "127.0.0.1:1", "CCFARM_SECRET_FILE": secret}
    proc = run([ccfarm_exe(), "gcc", "-c", "a.c"], tmp_path, env)
    assert proc.returncode == 0 and (tmp_path / "a.o").exists()
    assert b"CCFARM_SECRET_FILE" in proc.stderr and b"compiling locally" in proc.stderr


def test_a_real_distcc_client_in_allow_still_uses_a_daemon_with_a_secret(
    tmp_path: Path, ccfarmd, client_env
) -> None:
    distcc = shutil.which("distcc")
    if distcc is None:
        pytest.fail("distcc is needed (scripts/setup.sh --test installs it)")
    secret = _secret(tmp_path)
    open_daemon = ccfarmd(extra=("--secret-file", secret))
    closed_daemon = ccfarmd(extra=("--secret-file", secret, "--no-distcc-clients"))
    (tmp_path / "d.c").write_text(SOURCES["d.c"])
    assert run(["gcc", "-O2", "-c", "d.c", "-o", "ref.o"], tmp_path).returncode == 0
    local = (tmp_path / "ref.o").read_bytes()
    for daemon, works in ((open_daemon, True), (closed_daemon, False)):
        env = {
            **client_env,
            "DISTCC_HOSTS": f"{daemon.address}:{daemon.port}/1,lzo",
            "DISTCC_FALLBACK": "0",
        }
        (tmp_path / "d.o").unlink(missing_ok=True)
        proc = run([distcc, "gcc", "-O2", "-c", "d.c"], tmp_path, env)
        log = Path(daemon.log_path).read_text()
        if works:
            assert proc.returncode == 0, proc.stderr.decode()
            assert (tmp_path / "d.o").read_bytes() == local
            # it ran there, protocol 2 (logged once the reply is sent: maybe just after)
            log_file = Path(daemon.log_path)
            wait_for(lambda: " v2 " in log_file.read_text())  # noqa: B023 (called at once)
        else:
            assert proc.returncode != 0
            assert "--no-distcc-clients" in log


def test_gethost_with_the_secret_hands_real_distcc_a_leased_host(
    tmp_path: Path, scheduler, ccfarmd, client_env
) -> None:
    distcc = shutil.which("distcc")
    gethost = shutil.which("ccfarm-gethost")
    if distcc is None or gethost is None:
        pytest.fail("distcc and ccfarm-gethost are needed (scripts/setup.sh --test)")
    secret = _secret(tmp_path)
    sched, (daemon,) = _farm(scheduler, ccfarmd, secret, count=1)
    (tmp_path / "e.c").write_text(SOURCES["e.c"])
    env = {**client_env, "CCFARM_SCHEDULER": sched, "DISTCC_FALLBACK": "0"}
    cmd = [gethost, "--secret-file", secret, distcc, "gcc", "-O2", "-c", "e.c"]
    proc = run(cmd, tmp_path, env)
    assert proc.returncode == 0, proc.stderr.decode()
    assert " v2 " in Path(daemon.log_path).read_text()  # leased, and run there
    assert run(["gcc", "-O2", "-c", "e.c", "-o", "ref.o"], tmp_path).returncode == 0
    assert (tmp_path / "e.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
    # without the secret the scheduler gives it nothing: DISTCC_HOSTS stays empty
    (tmp_path / "e.o").unlink()
    proc = run([gethost, distcc, "gcc", "-O2", "-c", "e.c"], tmp_path, env)
    assert Path(daemon.log_path).read_text().count(" v2 ") == 1
