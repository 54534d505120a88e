"""A real scheduler, real daemons with pinned speeds, real builds."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ccfarm_exe, ctl, run, slow_source, wait_for


@pytest.fixture(scope="module")
def lua_tree(lua_root: Path) -> Path:
    return lua_root / "third-party" / "lua54"


def _farm(
    scheduler, ccfarmd, speeds: list[float], jobs: int = 2, scheduler_args: tuple[str, ...] = ()
) -> tuple[str, list]:
    # every emulated host shares this machine's load average: ignore it here
    sched = scheduler("--load-low", "100", "--load-high", "200", *scheduler_args)
    daemons = [
        ccfarmd(jobs=jobs, extra=("--scheduler", sched, "--speed", str(s), "--heartbeat", "0.5"))
        for s in speeds
    ]
    wait_for(lambda: len(ctl(sched, "hosts")) == len(speeds), timeout=20)
    return sched, daemons


def _build(tree: Path, dest: Path, env: dict[str, str], jobs: int = 4) -> subprocess.Popen[bytes]:
    from ccfarm.demo.codebase import LuaTree, prepare_build

    sources = tuple(
        sorted(p.name for p in tree.glob("*.c") if p.name not in {"onelua.c", "ltests.c", "lua.c"})
    )
    build = prepare_build(LuaTree("lua54", str(tree), sources), str(dest))
    return subprocess.Popen(
        ["make", f"-j{jobs}", f"CC={ccfarm_exe()} gcc", "liblua.a"],
        cwd=build,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_two_builds_share_the_farm_fastest_first(
    tmp_path: Path, scheduler, ccfarmd, client_env, lua_tree: Path
) -> None:
    # the hosts are alike: their pinned speeds are fakes that the scheduler's
    # evidence would correct (tests/integration/test_speed_evidence.py)
    sched, daemons = _farm(
        scheduler, ccfarmd, [4.0, 2.0, 1.0], scheduler_args=("--no-speed-evidence",)
    )
    builds = []
    for name in ("alice-laptop/alice", "bob-desk/bob"):
        env = {
            **client_env,
            "CCFARM_SCHEDULER": sched,
            "CCFARM_VERBOSE": "1",
            "CCFARM_CLIENT_NAME": name,
        }
        # 2 x -j2 = 4 jobs at a time for 6 slots: the fastest free hosts get them
        builds.append(_build(lua_tree, tmp_path / name.split("/")[1], env, jobs=2))
    where: collections.Counter[str] = collections.Counter()
    for proc in builds:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        where.update(re.findall(r"compiled on (\S+)", err.decode()))
    fast, mid, slow = (f"{d.address}:{d.port}" for d in daemons)
    assert sum(where.values()) >= 60  # both builds' jobs went through the farm
    assert where[fast] > 2 * where[slow], where  # the slow tier only gets the overflow
    # every object equals a local compile
    for build in ("alice", "bob"):
        for obj in sorted((tmp_path / build).glob("*.o"))[:12]:
            src = obj.with_suffix(".c").name
            ref = tmp_path / "ref.o"
            local = run(
                ["gcc", "-O2", "-Wall", "-DLUA_USE_LINUX", "-c", src, "-o", str(ref)],
                tmp_path / build,
            )
            assert local.returncode == 0
            assert obj.read_bytes() == ref.read_bytes(), obj


def test_ctl_hosts_jobs_disable_enable(tmp_path: Path, scheduler, ccfarmd, client_env) -> None:
    sched, daemons = _farm(scheduler, ccfarmd, [3.0, 1.0])
    hosts = {h["host"]: h for h in ctl(sched, "hosts")}
    fast = f"{daemons[0].address}:{daemons[0].port}"
    assert hosts[fast]["state"] == "up" and int(hosts[fast]["tier"]) > int(
        hosts[f"{daemons[1].address}:{daemons[1].port}"]["tier"]
    )
    assert hosts[fast]["compiler"][0].startswith("gcc ")
    assert ctl(sched, "disable", fast) == {"host": fast, "disabled": True}
    assert {h["host"]: h["state"] for h in ctl(sched, "hosts")}[fast] == "disabled"
    (tmp_path / "a.c").write_text("int a(void) { return 1; }\n")
    env = {**client_env, "CCFARM_SCHEDULER": sched, "CCFARM_VERBOSE": "1"}
    proc = run([ccfarm_exe(), "gcc", "-c", "a.c"], tmp_path, env)
    assert proc.returncode == 0 and fast.encode() not in proc.stderr  # drained host skipped
    assert ctl(sched, "enable", fast) == {"host": fast, "disabled": False}
    proc = run([ccfarm_exe(), "gcc", "-c", "a.c"], tmp_path, env)
    assert f"compiled on {fast}".encode() in proc.stderr
    assert ctl(sched, "jobs") == []


def test_ccfarm_j_and_show_hosts_ask_the_scheduler(
    tmp_path: Path, scheduler, ccfarmd, client_env
) -> None:
    """`make -j$(ccfarm -j)`: the slots of the hosts that take jobs, plus the
    local ones; a disabled host counts no more; a silent scheduler list falls
    back to the host list within the scheduler timeout."""
    from ccfarm.cgroups import cpu_slots

    sched, daemons = _farm(scheduler, ccfarmd, [3.0, 1.0], jobs=3)
    env = {**client_env, "CCFARM_SCHEDULER": sched}
    asked = run([ccfarm_exe(), "-j"], tmp_path, env)
    assert asked.returncode == 0 and asked.stdout == f"{6 + cpu_slots()}\n".encode()
    shown = run([ccfarm_exe(), "--show-hosts"], tmp_path, env).stdout.decode().split()
    assert sorted(shown) == sorted(f"{d.address}:{d.port}/3" for d in daemons)
    slow = f"{daemons[1].address}:{daemons[1].port}"
    ctl(sched, "disable", slow)
    assert run([ccfarm_exe(), "-j"], tmp_path, env).stdout == f"{3 + cpu_slots()}\n".encode()
    listed = {**env, "CCFARM_SCHEDULER": "127.0.0.1:1", "DISTCC_HOSTS": "a/5 localhost/1"}
    fallen = run([ccfarm_exe(), "-j"], tmp_path, listed)
    assert fallen.stdout == b"6\n" and b"no scheduler answered" in fallen.stderr


def test_a_restarted_host_rejoins_with_its_remembered_speed(
    tmp_path: Path, scheduler, ccfarmd
) -> None:
    """The first start probes and keeps the result in --state-dir; a restart
    with the same CPU, quota and compiler joins with it at once, unprobed."""
    sched = scheduler()
    state = tmp_path / "host-state"
    extra = ("--scheduler", sched, "--heartbeat", "0.5", "--state-dir", str(state))
    first = ccfarmd(extra=extra)
    wait_for(lambda: len(ctl(sched, "hosts")) == 1, timeout=30)
    log = Path(first.log_path).read_text()
    assert "(probed)" in log and "(remembered)" not in log
    stored = (state / "speed").read_text()
    claimed = ctl(sched, "hosts")[0]["claimed"]
    from ccfarm.demo.farm import stop_daemon

    stop_daemon(first)
    wait_for(lambda: ctl(sched, "hosts") == [], timeout=10)
    second = ccfarmd(extra=extra)
    wait_for(lambda: len(ctl(sched, "hosts")) == 1, timeout=10)
    assert "(remembered)" in Path(second.log_path).read_text()
    assert ctl(sched, "hosts")[0]["claimed"] == claimed
    assert (state / "speed").read_text() == stored  # nothing probed, nothing rewritten


def test_a_host_stopped_while_it_probes_its_speed_exits_cleanly(scheduler, ccfarmd) -> None:
    """SIGTERM during the speed probe: the daemon drains and exits 0, and
    does not join the scheduler afterwards (it used to die on its closed port)."""
    sched = scheduler()
    daemon = ccfarmd(extra=("--scheduler", sched, "--state-dir", "none"))
    assert daemon.process is not None
    # ready (its SIGTERM handler set just after this line), probing (a second or two)
    started = ("running as", "NO JOB SANDBOX")
    wait_for(lambda: any(w in Path(daemon.log_path).read_text() for w in started), timeout=10)
    time.sleep(0.2)
    daemon.process.send_signal(signal.SIGTERM)
    assert daemon.process.wait(30) == 0
    log = Path(daemon.log_path).read_text()
    assert "Traceback" not in log and "host agent" not in log, log
    assert ctl(sched, "hosts") == []


def test_gethost_with_real_distcc(tmp_path: Path, scheduler, ccfarmd, client_env) -> None:
    distcc = shutil.which("distcc")
    if distcc is None:
        pytest.fail("distcc is needed (scripts/setup.sh --test installs it)")
    sched, daemons = _farm(scheduler, ccfarmd, [1.0])
    for i in range(4):
        (tmp_path / f"g{i}.c").write_text(f"int g{i}(int x) {{ return x + {i}; }}\n")
    (tmp_path / "Makefile").write_text("all: g0.o g1.o g2.o g3.o\n")
    env = {**client_env, "CCFARM_SCHEDULER": sched, "DISTCC_FALLBACK": "0"}
    gethost = shutil.which("ccfarm-gethost")
    assert gethost is not None
    proc = run(["make", "-j2", f"CC={gethost} {distcc} gcc"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr.decode()
    log = Path(daemons[0].log_path).read_text()
    assert log.count(" v2 ") == 4, log  # the real distcc sent all four, protocol 2 (,lzo)
    for i in range(4):
        run(["gcc", "-c", f"g{i}.c", "-o", "ref.o"], tmp_path)
        assert (tmp_path / f"g{i}.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
    failing = run([gethost, "sh", "-c", "exit 7"], tmp_path, env)
    assert failing.returncode == 7  # exit status passes through


def test_daemon_killed_mid_build(
    tmp_path: Path, scheduler, ccfarmd, client_env, lua_tree: Path
) -> None:
    sched, daemons = _farm(scheduler, ccfarmd, [2.0, 1.0], scheduler_args=("--host-timeout", "2"))
    env = {**client_env, "CCFARM_SCHEDULER": sched, "CCFARM_VERBOSE": "1", "CCFARM_FALLBACK": "1"}
    build = _build(lua_tree, tmp_path / "b", env)
    victim = daemons[0]
    # it has run a job (of either way: "v2" or "v43460001")
    wait_for(lambda: " ms (received " in Path(victim.log_path).read_text(), timeout=60)
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    _, err = build.communicate(timeout=300)
    assert build.returncode == 0, err.decode()
    wait_for(lambda: len(ctl(sched, "hosts")) == 1, timeout=15)  # heartbeat loss noticed
    assert not list((tmp_path / "b").glob(".*.tmp"))


def test_a_stopped_or_killed_daemon_leaves_the_farm_at_once(scheduler, ccfarmd) -> None:
    # heartbeat loss would take an hour here: BYEE and the connection's close tell
    sched, daemons = _farm(
        scheduler, ccfarmd, [2.0, 1.0], scheduler_args=("--host-timeout", "3600")
    )
    drained, killed = daemons
    assert drained.process is not None and killed.process is not None
    drained.process.send_signal(signal.SIGTERM)  # drains: says BYEE first
    wait_for(lambda: len(ctl(sched, "hosts")) == 1, timeout=2)
    assert "leaving scheduler" in Path(drained.log_path).read_text()
    killed.process.send_signal(signal.SIGKILL)  # no word: its connection closes
    wait_for(lambda: ctl(sched, "hosts") == [], timeout=2)


def test_dmucs_hosts_info_pins_speed_and_cpus(tmp_path: Path, scheduler, ccfarmd) -> None:
    """A DMUCS site's hosts-info file overrides what hosts measured."""
    from tests.conftest import free_port, next_address

    sched_address = next_address()
    sched = f"{sched_address}:{free_port(sched_address)}"
    # the daemon first: its agent keeps retrying until the scheduler is up
    daemon = ccfarmd(extra=("--scheduler", sched, "--speed", "1", "--heartbeat", "0.5"))
    info = tmp_path / "hosts-info"
    info.write_text(f"# name cpus power\n{daemon.address} 6 3\n")
    address, port = sched.split(":")
    scheduler(
        "--hosts-info",
        str(info),
        "--load-low",
        "100",
        "--load-high",
        "200",
        address=address,
        port=int(port),
    )
    wait_for(lambda: len(ctl(sched, "hosts")) == 1, timeout=20)
    (row,) = ctl(sched, "hosts")
    assert (row["speed"], row["cpus"]) == (3.0, 6)


def test_a_stopped_host_costs_a_job_the_revocation_not_the_io_timeout(
    tmp_path: Path, scheduler, ccfarmd, client_env
) -> None:
    sched, (daemon,) = _farm(scheduler, ccfarmd, [1.0], scheduler_args=("--host-timeout", "2"))
    slow_source(tmp_path / "slow.c", functions=600)
    env = {**client_env, "CCFARM_SCHEDULER": sched, "CCFARM_FALLBACK": "1"}
    assert daemon.process is not None
    os.kill(daemon.process.pid, signal.SIGSTOP)  # it stops sending heartbeats and answering
    started = time.monotonic()
    try:
        proc = run([ccfarm_exe(), "gcc", "-c", "slow.c", "-o", "slow.o"], tmp_path, env)
    finally:
        os.kill(daemon.process.pid, signal.SIGCONT)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"lease revoked" in proc.stderr, proc.stderr
    assert took < 30  # the host timeout (2 s) and a local compile, not CCFARM_IO_TIMEOUT (300 s)
    run(["gcc", "-c", "slow.c", "-o", "ref.o"], tmp_path)
    assert (tmp_path / "slow.o").read_bytes() == (tmp_path / "ref.o").read_bytes()
