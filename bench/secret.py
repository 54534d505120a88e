"""The farm secret's and TLS's cost per job: N sequential compiles of a tiny C file, one run.

    python bench/secret.py [-n 100]

Three farms side by side on loopback, the same but for `--secret-file` and
for TLS (`--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-require`: client
certificates checked both ways, certificates made here with `openssl`): a
ccfarmd listed in CCFARM_HOSTS, and a scheduler with a ccfarmd registered
(CCFARM_SCHEDULER: one more handshake per job, for the lease). Rounds are
interleaved, in a shuffled order, so machine noise hits every way alike;
prints medians, what each adds over local gcc, and what the secret and TLS add.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, median_ms, timed  # noqa: E402

from ccfarm.demo.farm import (  # noqa: E402
    scheduler_command,
    start_daemon,
    stop_daemon,
    stop_process,
    wait_listening,
)
from ccfarm.secretfile import read_secret  # noqa: E402

TINY = "int add(int a, int b) { return a + b; }\nint twice(int x) { return add(x, x); }\n"


def _scheduler(address: str, work: str, extra: tuple[str, ...]) -> tuple[str, subprocess.Popen]:  # type: ignore[type-arg]
    port = free_port(address)
    log = os.path.join(work, f"scheduler-{address}.log")
    cmd = scheduler_command(
        address, port, ("--log-file", log, "--load-low", "100", "--load-high", "200", *extra)
    )
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    wait_listening(address, port)
    return f"{address}:{port}", proc


def _wait_registered(sched: str, extra: tuple[str, ...]) -> None:
    cmd = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", sched, "--json", *extra, "hosts"]
    deadline = time.monotonic() + 30
    while subprocess.run(cmd, capture_output=True, check=True).stdout.strip() in (b"[]", b""):
        if time.monotonic() > deadline:
            sys.exit(f"no host registered with {sched}")
        time.sleep(0.2)


def _certificates(work: str, addresses: list[str]) -> dict[str, str]:
    """A CA and one certificate for every address (server and client use): files."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=bench-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    with open(os.path.join(work, "host.ext"), "w") as f:
        f.write("subjectAltName=" + ",".join(f"IP:{a}" for a in addresses) + "\n")
        f.write("extendedKeyUsage=serverAuth,clientAuth\n")
    openssl("req", *ec, "-keyout", "host.key", "-out", "host.csr", "-subj", "/CN=bench")
    openssl("x509", "-req", "-in", "host.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "host.pem", "-days", "2",
            "-extfile", "host.ext")  # fmt: skip
    return {name: os.path.join(work, name) for name in ("ca.pem", "host.pem", "host.key")}


def _lease_times(
    plain: str, keyed: str, tls_sched: str, secret: bytes, tls_files: dict[str, str], n: int
) -> tuple[list[float], list[float], list[float]]:
    """request_lease + release against each scheduler, interleaved: seconds each."""
    from ccfarm.client.job.lease import parse_schedulers, request_lease
    from ccfarm.tls import TLSFiles, client_context

    files = TLSFiles(tls_files["host.pem"], tls_files["host.key"], tls_files["ca.pem"])
    times: tuple[list[float], list[float], list[float]] = ([], [], [])
    for _ in range(n):
        for sched, key, tls, out in (
            (plain, None, False, times[0]),
            (keyed, secret, False, times[1]),
            (tls_sched, None, True, times[2]),
        ):
            started = time.perf_counter()
            context = client_context(files) if tls else None  # (as each wrapper job does)
            request_lease(parse_schedulers(sched), None, secret=key, tls=context).release()
            out.append(time.perf_counter() - started)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-n", type=int, default=100)
    args = p.parse_args()
    ccfarm = shutil.which("ccfarm")
    if not ccfarm:
        sys.exit("need ccfarm on PATH (scripts/setup.sh)")
    work = tempfile.mkdtemp(prefix="ccfarm-bench-")
    with open(os.path.join(work, "tiny.c"), "w") as f:
        f.write(TINY)
    secret = os.path.join(work, "farm.secret")
    with open(secret, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(secret, 0o600)
    keyed = ("--secret-file", secret)
    tls_files = _certificates(work, [f"127.0.1.{n}" for n in range(1, 11)])
    served = ("--tls-cert", tls_files["host.pem"], "--tls-key", tls_files["host.key"])
    tls_server = (*served, "--tls-ca", tls_files["ca.pem"], "--tls-require")
    tls_client = ("--tls-ca", tls_files["ca.pem"], *served)
    tls_env = {
        "CCFARM_TLS_CA": tls_files["ca.pem"],
        "CCFARM_TLS_CERT": tls_files["host.pem"],
        "CCFARM_TLS_KEY": tls_files["host.key"],
    }
    state = os.path.join(work, "state")
    os.mkdir(state)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
    base.update(CCFARM_DIR=state, DISTCC_DIR=state, CCFARM_FALLBACK="0")
    started = []
    schedulers = []
    try:
        plain_sched, proc = _scheduler("127.0.1.5", work, ())
        schedulers.append(proc)
        keyed_sched, proc = _scheduler("127.0.1.6", work, keyed)
        schedulers.append(proc)
        tls_sched, proc = _scheduler("127.0.1.7", work, tls_server)
        schedulers.append(proc)
        hb = ("--heartbeat", "0.5", "--speed", "1")
        for address, extra in (
            ("127.0.1.1", ()),
            ("127.0.1.2", keyed),
            ("127.0.1.3", ("--scheduler", plain_sched, *hb)),
            ("127.0.1.4", ("--scheduler", keyed_sched, *hb, *keyed)),
            ("127.0.1.8", tls_server),
            ("127.0.1.9", ("--scheduler", tls_sched, *hb, *tls_server)),
        ):
            started.append(start_daemon(address, free_port(address), 2, work, extra=extra))
        _wait_registered(plain_sched, ())
        _wait_registered(keyed_sched, keyed)
        _wait_registered(tls_sched, tls_client)
        hosts = [f"{d.address}:{d.port}" for d in started]
        envs = {
            "local": base,
            "hosts": {**base, "CCFARM_HOSTS": hosts[0]},
            "hosts+secret": {**base, "CCFARM_HOSTS": hosts[1], "CCFARM_SECRET_FILE": secret},
            "scheduler": {**base, "CCFARM_SCHEDULER": plain_sched},
            "scheduler+secret": {
                **base,
                "CCFARM_SCHEDULER": keyed_sched,
                "CCFARM_SECRET_FILE": secret,
            },
            "hosts+tls": {**base, "CCFARM_HOSTS": hosts[4], **tls_env},
            "scheduler+tls": {**base, "CCFARM_SCHEDULER": tls_sched, **tls_env},
        }
        compile_cmd = ["gcc", "-O2", "-c", "tiny.c", "-o", "tiny.o"]
        cmds = {name: ([] if name == "local" else [ccfarm]) + compile_cmd for name in envs}
        times: dict[str, list[float]] = {name: [] for name in envs}
        for name in envs:  # warm-up (caches, the fork server)
            timed(cmds[name], work, envs[name])
        order = list(envs)
        for round_ in range(args.n):
            random.Random(round_).shuffle(order)  # no way always follows the same one
            for name in order:
                times[name].append(timed(cmds[name], work, envs[name]))
        leases = _lease_times(
            plain_sched, keyed_sched, tls_sched, read_secret(secret), tls_files, 3 * args.n
        )
    finally:
        for daemon in started:
            stop_daemon(daemon)
        for proc in schedulers:
            stop_process(proc, 10)
        shutil.rmtree(work, ignore_errors=True)
    med = {k: median_ms(v) for k, v in times.items()}
    print(f"sequential compiles of a tiny C file, n={args.n} each, interleaved")
    for name in envs:
        added = med[name] - med["local"]
        print(f"  {name:<18} median {med[name]:7.2f} ms  (+{added:.2f} over local gcc)")
    listed = med["hosts+secret"] - med["hosts"]
    leased = med["scheduler+secret"] - med["scheduler"]
    print(f"  the secret adds: listed host {listed:+.2f} ms/job, via the scheduler {leased:+.2f}")
    listed = med["hosts+tls"] - med["hosts"]
    leased = med["scheduler+tls"] - med["scheduler"]
    print(f"  TLS adds: listed host {listed:+.2f} ms/job, via the scheduler {leased:+.2f}")
    plain, proven, secure = (median_ms(v) for v in leases)
    print(
        f"  a lease alone (request_lease + release, n={3 * args.n}): {plain:.2f} ms,"
        f" with the secret {proven:.2f} ms ({proven - plain:+.2f}),"
        f" with TLS {secure:.2f} ms ({secure - plain:+.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
