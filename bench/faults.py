"""What a failing part of the farm costs a build, with default settings.

    .venv/bin/python bench/faults.py [--repeat N]

A scheduler and three ccfarmd hosts (two slots each; as root each in a
cgroup v1 CPU group of 0.5 CPU, so that a host's load is its own) on loopback, a client
building Lua 5.4 (`make -j6`) through the scheduler. Each figure is one
fault against the same build without it, in the same run:

  clean build      the build with nothing failing: its time, and the jobs
                   compiled on the client (a local slot was free and no free
                   host was faster)
  stopped host     one host SIGSTOPped 1 s into the build (a hung machine),
                   resumed after the build: seconds it adds to the build
  killed host      one host SIGKILLed 1 s into the build: the last lease the
                   scheduler granted on it, in seconds after its death, and
                   jobs compiled on the client (by a failure, or because a
                   local slot was free and no free host was faster)
  restarted host   one host restarted 1 s into the build: jobs compiled on the
                   client, and seconds from its new start until it is back in
                   the farm (its speed probe kept in its --state-dir)
  silent scheduler CCFARM_SCHEDULER at a port that accepts and never answers,
                   no host list: 5 sequential compiles against the same 5
                   compiled locally by gcc
  full farm        every host slot held by another client's leases: 5
                   sequential compiles on this (idle) client against gcc's

Issue targets: a stopped host adds at most 15 s; a killed host gets no job
3 s after it died; a silent scheduler costs the 5 jobs at most 10 s in all;
on a full farm the 5 jobs take at most 5 s in all.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
from ccfarm.control import messages as m  # noqa: E402
from ccfarm.control.codec import MessageParser, hello  # noqa: E402
from ccfarm.demo.codebase import fetch_lupa, lua_trees, prepare_build  # noqa: E402
from ccfarm.demo.farm import (  # noqa: E402
    ccfarmd_command,
    scheduler_command,
    stop_process,
    wait_listening,
)
from ccfarm.model import LeaseRequest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cgroup, cgroups_available, in_group  # noqa: E402

SCHED = ("127.0.3.1", 3634)
HOSTS = [f"127.0.3.{i}" for i in (11, 12, 13)]
PORT = 3632
SLOTS = 2
HOST_CPU = 0.5
SINGLE = "lapi.c"  # the file of the sequential compiles


class Farm:
    """The scheduler and the hosts, each a process that can be stopped, killed, restarted."""

    def __init__(self, work: str, groups: dict[str, str]) -> None:
        self.work = work
        self.groups = groups  # host -> its CPU group (none without cgroups)
        self.scheduler_log = os.path.join(work, "scheduler.log")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        argv = scheduler_command(*SCHED, ("--log-level", "debug", "--log-file", self.scheduler_log))
        self.procs["scheduler"] = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        wait_listening(*SCHED)
        for host in HOSTS:
            self.start_host(host)
        wait_for(lambda: self.hosts_up() == len(HOSTS), "hosts registered")

    def start_host(self, host: str) -> None:
        log = os.path.join(self.work, f"ccfarmd-{host}.log")
        state = os.path.join(self.work, "ccfarmd-state")  # kept across a host's restarts
        extra = ("--scheduler", f"{SCHED[0]}:{SCHED[1]}", "--log-file", log, "--state-dir", state)
        argv = ccfarmd_command(host, PORT, SLOTS, extra)
        if host in self.groups:
            argv = in_group(self.groups[host], argv)
        self.procs[host] = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        wait_listening(host, PORT)

    def hosts_up(self) -> int:
        argv = [sys.executable, "-m", "ccfarm.cli.ctl", "--scheduler", f"{SCHED[0]}:{SCHED[1]}"]
        out = subprocess.run([*argv, "--json", "hosts"], capture_output=True, text=True)
        return out.stdout.count('"host":') if out.returncode == 0 else 0

    def stop(self) -> None:
        for proc in self.procs.values():
            with_signal(proc, signal.SIGCONT)
            stop_process(proc, 20)


def with_signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting: {what}")
        time.sleep(0.2)


Note = Callable[[str, float], None]


@contextmanager
def farm_up(work: str) -> Iterator[Farm]:
    """The farm; each host in a CPU group of HOST_CPU CPUs where cgroups can be made
    (a host then measures its own group's load, not its neighbours')."""
    os.makedirs(work, exist_ok=True)
    with ExitStack() as stack:
        groups = {}
        if cgroups_available():
            for i, host in enumerate(HOSTS):
                groups[host] = stack.enter_context(cgroup(f"fault-h{i + 1}", HOST_CPU))
        farm = Farm(work, groups)
        try:
            farm.start()
            yield farm
        finally:
            farm.stop()


def build(
    tree_dir: str, env: dict[str, str], fault: Callable[[], None] | None
) -> tuple[float, str]:
    """make -j6 of the library; `fault` runs 1 s in. Seconds, and the wrappers' stderr."""
    subprocess.run(["make", "clean"], cwd=tree_dir, check=True, capture_output=True)
    ccfarm = shutil.which("ccfarm")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "-j6", f"CC={ccfarm} gcc", "liblua.a"],
        cwd=tree_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if fault is not None:
        time.sleep(1.0)
        fault()
    _, err = proc.communicate()
    took = time.monotonic() - started
    if proc.returncode:
        sys.exit(f"build failed: {err.decode()[-2000:]}")
    return took, err.decode(errors="replace")


def host_logs(work: str) -> dict[str, int]:
    """Each host log's size now: where a build's lines start."""
    return {h: log_size(os.path.join(work, f"ccfarmd-{h}.log")) for h in HOSTS}


def log_size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def jobs_on_hosts(work: str, since: dict[str, int]) -> int:
    """Jobs the hosts' logs record past `since` (a job line ends "ms (received ...")."""
    count = 0
    for host, offset in since.items():
        with open(os.path.join(work, f"ccfarmd-{host}.log"), "rb") as f:
            f.seek(offset)
            count += f.read().count(b" ms (received ")
    return count


def last_grant_after(log: str, host: str, died: float) -> float | None:
    """Seconds after `died` (wall clock) of the scheduler's last lease on `host`."""
    last = None
    with open(log, errors="replace") as f:
        for line in f:
            if " lease " not in line or f" on {host}" not in line:
                continue
            last = _stamp(line) - died
    return last


def _stamp(line: str) -> float:
    words = line.split()
    return datetime.datetime.strptime(f"{words[0]} {words[1]}", "%Y-%m-%d %H:%M:%S,%f").timestamp()


def joined_after(log: str, host: str, since: float) -> float | None:
    """Seconds after `since` (wall clock) of the scheduler's first "joined" of `host`."""
    with open(log, errors="replace") as f:
        for line in f:
            if f"host {host}:" in line and " joined:" in line and _stamp(line) >= since:
                return _stamp(line) - since
    return None


def sequential(cwd: str, env: dict[str, str], wrapper: list[str], n: int = 5) -> float:
    started = time.monotonic()
    for i in range(n):
        subprocess.run(
            [*wrapper, "gcc", "-O2", "-Wall", "-DLUA_USE_LINUX", "-c", SINGLE, "-o", f"s{i}.o"],
            cwd=cwd,
            env=env,
            check=True,
            capture_output=True,
        )
    return time.monotonic() - started


@contextmanager
def silent_listener(address: str) -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind((address, 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for s in held:
            s.close()
        server.close()


@contextmanager
def all_slots_held() -> Iterator[None]:
    """Another client's leases on every slot, held until the block ends."""
    sock = socket.create_connection(SCHED, timeout=60)
    want = len(HOSTS) * SLOTS
    requests = [
        m.encode_lease_request(LeaseRequest(i, "holder/bench", None, 600)) for i in range(want)
    ]
    sock.sendall(hello() + b"".join(requests))
    parser = MessageParser(expect_hello=False)
    granted = 0
    while granted < want:
        data = sock.recv(65536)
        if not data:
            sys.exit("the scheduler closed the holder's connection")
        parser.receive_data(data)
        granted += sum(msg.kind == m.LEASE_GRANTED for msg in parser.messages())
    try:
        yield
    finally:
        sock.close()


def one_round(work: str, src: str, files: int, base: dict[str, str], note: Note) -> None:
    env = {**base, "CCFARM_SCHEDULER": f"{SCHED[0]}:{SCHED[1]}"}
    with farm_up(os.path.join(work, "stop")) as farm:
        since = host_logs(farm.work)
        clean, _ = build(src, env, None)
        note("clean build, s", clean)
        # what the counts below compare with: jobs kept here by choice
        note("clean build: jobs compiled locally", files - jobs_on_hosts(farm.work, since))
        victim = farm.procs[HOSTS[0]]
        took, _ = build(src, env, lambda: with_signal(victim, signal.SIGSTOP))
        with_signal(victim, signal.SIGCONT)
        note("stopped host: added s", took - clean)
    with farm_up(os.path.join(work, "kill")) as farm:
        died: list[float] = []

        def kill() -> None:
            died.append(time.time())
            farm.procs[HOSTS[0]].kill()

        since = host_logs(farm.work)
        build(src, env, kill)
        after = last_grant_after(farm.scheduler_log, HOSTS[0], died[0])
        note("killed host: last lease after death, s", after if after is not None else 0)
        note("killed host: jobs compiled locally", files - jobs_on_hosts(farm.work, since))

        restarted: list[float] = []

        def restart() -> None:
            proc = farm.procs[HOSTS[1]]
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            restarted.append(time.time())
            farm.start_host(HOSTS[1])

        since = host_logs(farm.work)
        build(src, env, restart)
        note("restarted host: jobs compiled locally", files - jobs_on_hosts(farm.work, since))
        back = joined_after(farm.scheduler_log, f"{HOSTS[1]}", restarted[0])
        # its speed probe is kept in its --state-dir: it joins without probing again
        note("restarted host: back in the farm after, s", back if back is not None else -1)
    with farm_up(os.path.join(work, "full")), all_slots_held():
        full = sequential(src, env, ["ccfarm"])
    local = sequential(src, base, [])
    note("full farm: 5 jobs, s", full)
    note("gcc's 5 jobs, s", local)
    with silent_listener(SCHED[0]) as port:
        silent = sequential(src, {**base, "CCFARM_SCHEDULER": f"{SCHED[0]}:{port}"}, ["ccfarm"])
    note("silent scheduler: 5 jobs, s", silent)
    note("silent scheduler: added to gcc's, s", silent - local)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    if not shutil.which("ccfarm"):
        sys.exit("needs ccfarm on PATH (.venv/bin)")
    if not cgroups_available():
        print("no writable cgroup v1 CPU hierarchy: hosts share the machine's load")
    (tree,) = [t for t in lua_trees(fetch_lupa()) if t.name == "lua54"]
    work = tempfile.mkdtemp(prefix="ccfarm-faults-")
    src = prepare_build(tree, os.path.join(work, "lua"))
    state = os.path.join(work, "state")
    os.makedirs(state)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISTCC", "CCFARM"))}
    base |= {"CCFARM_DIR": state, "CCFARM_CLIENT_NAME": "client/bench"}
    figures: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)
        print(f"  {name}: {value:.2f}")
        sys.stdout.flush()

    for rnd in range(args.repeat):
        print(f"round {rnd + 1}")
        one_round(os.path.join(work, f"r{rnd}"), src, len(tree.sources), base, note)
    shutil.rmtree(work, ignore_errors=True)
    print("\nmedians (rounds)")
    for name, values in figures.items():
        each = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<42} {statistics.median(values):7.2f}   ({each})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
