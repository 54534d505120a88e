"""Express leases for real: a daemon runs an express job at once and ahead of
its other jobs; a scheduler gives one to a light client while a heavy one
holds every slot."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from ccfarm import protocol
from ccfarm.client.job.transport import run_remote
from tests.conftest import ccfarm_exe, ctl, local_slots_held, processes, slow_source, wait_for


def _cc1_nice(marker: str) -> list[int]:
    """Nice values of the running cc1 processes with `marker` in an argument."""
    return [
        int(fields[16])  # field 19 of stat: nice
        for _, argv, fields in processes()
        if argv[0].endswith(b"cc1") and any(marker.encode() in a for a in argv)
    ]


def _request(source: Path, express: bool, version: int) -> bytes:
    """The job the exact way (source files) or the cheap way (a .i)."""
    env = (f"{protocol.PRIORITY}=express".encode(),) if express else ()
    # the seed names the job on cc1's command line (the cheap way's input is
    # the daemon's own file name; the test's own preprocessing has no seed)
    seed = b"-frandom-seed=" + source.stem.encode()
    argv = (b"gcc", b"-O2", seed, b"-c", source.name.encode(), b"-o", b"out.o")
    if version == protocol.CCFARM_CPP:
        preprocessed = subprocess.run(
            ["gcc", "-O2", "-E", source.name], cwd=source.parent, capture_output=True, check=True
        ).stdout
        header = protocol.JobHeader(version, argv, env=env)
        return protocol.encode_request(header, source=preprocessed)
    header = protocol.JobHeader(version, argv, os.fsencode(source.parent), env)
    files = [protocol.FileEntry(os.fsencode(source), source.read_bytes())]
    return protocol.encode_request(header, files=files)


@pytest.mark.parametrize("version", [protocol.CCFARM, protocol.CCFARM_CPP])
def test_daemon_runs_an_express_job_at_once_and_first(
    tmp_path: Path, ccfarmd, version: int
) -> None:
    daemon = ccfarmd(jobs=1)
    normal, express = tmp_path / "normal_job.c", tmp_path / "express_job.c"
    after = tmp_path / "after_job.c"
    slow_source(normal, 3000)
    slow_source(express, 9000)  # still running when `normal` ends and `after` starts
    slow_source(after, 500)
    results: dict[str, int] = {}

    def send(name: str, source: Path, is_express: bool) -> None:
        result = run_remote(
            daemon.address,
            daemon.port,
            _request(source, is_express, version),
            version,
            connect_timeout=5,
            io_timeout=120,
        )
        results[name] = result.wait_status

    first = threading.Thread(target=send, args=("normal", normal, False))
    first.start()
    wait_for(lambda: bool(_cc1_nice("seed=normal_job")), timeout=30)
    assert _cc1_nice("seed=normal_job") == [0]
    second = threading.Thread(target=send, args=("express", express, True))
    second.start()
    # the daemon has one slot, taken: the express job starts anyway, and the
    # running plain job goes EXPRESS_NICE nicer so that the CPU goes to it
    wait_for(lambda: bool(_cc1_nice("seed=express_job")), timeout=30)
    assert _cc1_nice("seed=express_job") == [0]
    assert _cc1_nice("seed=normal_job") == [10]
    # a plain job that starts while the express one runs starts nicer too
    third = threading.Thread(target=send, args=("after", after, False))
    third.start()
    wait_for(lambda: bool(_cc1_nice("seed=after_job")), timeout=60)
    assert _cc1_nice("seed=after_job") == [10] and _cc1_nice("seed=express_job") == [0]
    for thread in (first, second, third):
        thread.join(120)
    assert results == {"normal": 0, "express": 0, "after": 0}


def test_light_client_gets_an_express_lease(tmp_path: Path, scheduler, ccfarmd, client_env) -> None:
    # shared load average: ignore it; express leases are off unless asked for
    # (express is for a light client's big jobs; here any job of it will do)
    sched = scheduler(
        "--load-low", "100", "--load-high", "200", "--express", "--express-min-cost", "0"
    )
    daemon = ccfarmd(jobs=1, extra=("--scheduler", sched, "--speed", "1", "--heartbeat", "0.5"))
    wait_for(lambda: len(ctl(sched, "hosts")) == 1, timeout=30)
    for n in range(3):  # the heavy build: one job running, two waiting for the one slot
        slow_source(tmp_path / f"heavy{n}.c", 3000)
    (tmp_path / "light.c").write_text("int light(int x) { return x + 1; }\n")
    base = {**client_env, "CCFARM_SCHEDULER": sched, "CCFARM_VERBOSE": "1"}
    # this machine's local slots all busy: else a job would compile here rather
    # than wait or go express (the scheduler keeps it here when no host is free)
    heavy: list[subprocess.Popen[bytes]] = []
    try:
        with local_slots_held(client_env["CCFARM_DIR"]):
            heavy = [
                subprocess.Popen(
                    [ccfarm_exe(), "gcc", "-O2", "-c", f"heavy{n}.c"],
                    cwd=tmp_path,
                    env={**base, "CCFARM_CLIENT_NAME": "heavy/build"},
                    stderr=subprocess.PIPE,
                )
                for n in range(3)
            ]
            wait_for(lambda: bool(_cc1_nice("heavy")), timeout=30)  # it holds the only slot
            wait_for(lambda: len(ctl(sched, "jobs")) == 3, timeout=30)  # and two wait
            light = subprocess.run(
                [ccfarm_exe(), "gcc", "-O2", "-c", "light.c"],
                cwd=tmp_path,
                env={**base, "CCFARM_CLIENT_NAME": "light/build"},
                capture_output=True,
                timeout=60,
            )
            assert light.returncode == 0, light.stderr
            assert b"(express)" in light.stderr
            where = f"compiled on {daemon.address}:{daemon.port} from preprocessed text"
            assert where.encode() in light.stderr  # the cheap way carries "express" too
            assert all(h.poll() is None for h in heavy)  # it did not wait for the heavy jobs
    finally:
        errors = [h.communicate(timeout=300)[1] for h in heavy]
    assert all(h.returncode == 0 for h in heavy), errors
    assert not any(b"(express)" in err for err in errors)
    local = subprocess.run(["gcc", "-O2", "-c", "light.c", "-o", "ref.o"], cwd=tmp_path)
    assert local.returncode == 0
    assert (tmp_path / "light.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
