"""One compile job, start to end: the shell that carries out its plan.

The decisions are pure (`plan`, `fallback`); this runs the preprocessor,
takes slots and leases, has hosts attempt the job (`attempt`), and hands
each result back for the next step:

    plan_job -> RunLocal, or: preprocess here, meanwhile
      CCFARM_SCHEDULER: a lease (asked after preprocessing) -> attempt
        -> after_attempt; no scheduler answered -> the host lists
      host lists: route_hosts -> a free slot -> attempt -> after_attempt
        -> next host (up to 3) or an end

Every path ends in `_end`: an exit status, or the local compiler exec'd in
place of this process (holding a slot if any). By then the `with` blocks
have removed the preprocessor's file and given back every host, as exec
skips `finally`.

Start-up matters (this runs once per job): the local preprocessor is
started as soon as the job is known to be distributable, and the rest
(host choice, protocol imports, connecting) happens while it runs.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

from ccfarm.client.hosts import hostlist, slots
from ccfarm.client.job import fallback
from ccfarm.client.job.attempt import Target, attempt, say
from ccfarm.client.job.fallback import Exit, HostRoute, NextHost, RunLocal, UseHostLists
from ccfarm.client.job.invocation import Invocation, find_compiler
from ccfarm.client.job.plan import SAFEGUARD, JobPlan, RemotePlan, Settings, plan_job, read_settings
from ccfarm.client.job.process import Preprocessing

MYPY = False
if MYPY:  # imported only when used (start-up time)
    from typing import Protocol

    from ccfarm.client.job.compilerinfo import CompilerInfo

    #: how a job ends: an exit status, compiling here, or compiling here in a held slot
    Ending = Exit | RunLocal | slots.Slot

    class Hosts(Protocol):
        """Where a job's hosts come from (`_Leased`, `_Listed`)."""

        @property
        def tries(self) -> fallback.Tries: ...
        def hold(self, tried: list[hostlist.HostSpec]) -> Target | Ending: ...
        def learn(self, spec: hostlist.HostSpec, attempt: fallback.Attempt) -> None: ...


def compile_job(inv: Invocation, env: Mapping[str, str]) -> int:
    """Run the job somewhere; return the exit status the build must see."""
    settings = read_settings(env)
    return _end(inv, env, settings, _run(inv, env, settings))


def _run(inv: Invocation, env: Mapping[str, str], settings: Settings) -> Ending:
    plan = plan_job(inv, env, settings, terminal=os.isatty(2))
    if isinstance(plan, RunLocal):
        return plan
    job = _Job(env, plan)
    if settings.secret_file:
        from ccfarm.errors import ConfigError
        from ccfarm.secretfile import read_secret

        try:
            job.secret = read_secret(settings.secret_file)
        except ConfigError as exc:  # no talking to the farm unproven
            return RunLocal(warning=f"CCFARM_SECRET_FILE: {exc}; compiling locally")
    if plan.schedulers:
        schedulers = _schedulers(job)
        leased: Target | RunLocal | UseHostLists
        if isinstance(schedulers, UseHostLists):
            leased = schedulers
        else:
            with Preprocessing(plan, job.child_env) as cpp:
                leased = _lease(job, cpp, schedulers)
                if isinstance(leased, Target):
                    return _distribute(job, cpp, _Leased(leased))
        if not isinstance(leased, UseHostLists):
            return leased
        _say(settings, leased)
    try:
        route = fallback.route_hosts(hostlist.hosts_from_environment(env, read_file=_read_text))
    except hostlist.HostListError as exc:
        route = fallback.route_hosts(None, str(exc))
    if not isinstance(route, HostRoute):
        return route
    _say(settings, route)
    with Preprocessing(plan, job.child_env) as cpp:
        return _distribute(job, cpp, _Listed(job, route))


def _end(inv: Invocation, env: Mapping[str, str], settings: Settings, ending: Ending) -> int:
    """The one way out: the exit status, or the local compiler in place of this process."""
    if isinstance(ending, Exit):
        _say(settings, ending)
        return ending.status
    slot = ending if isinstance(ending, slots.Slot) else None
    if isinstance(ending, RunLocal):
        _say(settings, ending)
        count = ending.local_slots
        if count == hostlist.CPU_COUNT:
            count = _cpus()
        if count > 0:
            state = slots.state_dir(env)
            try:
                slot = slots.acquire_local_slot(
                    state, count, sleep=time.sleep, pause=settings.pause
                )
            except OSError as exc:
                warning = (
                    f"state directory {state} unusable ({exc.strerror}); compiling without a slot"
                )
                say(settings, warning=warning)
    if slot is not None:
        os.set_inheritable(slot.fd, True)  # the lock stays held while the compiler runs
    import _signal

    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)  # Python ignores it; a compiler must not
    sys.stdout.flush()
    sys.stderr.flush()
    # argv[0] is the real path: gcc finds cc1 relative to it (a masquerade link
    # named gcc earlier on PATH would mislead it)
    os.execve(inv.compiler_path, [inv.compiler_path, *inv.argv[1:]], {**env, SAFEGUARD: "1"})
    return 127  # not reached


class _Job:
    """A distributable job while it runs: its plan, and what the shell learns on the way."""

    def __init__(self, env: Mapping[str, str], plan: JobPlan) -> None:
        self.env = env
        self.plan = plan
        self.child_env = {**env, SAFEGUARD: "1"}  # for the compilers started here
        self._info: CompilerInfo | None = None
        self._remote: RemotePlan | None = None
        self.secret: bytes | None = None  # the farm's (CCFARM_SECRET_FILE)

    def info(self) -> CompilerInfo:
        """The compiler's identity and system include directories (cached per binary)."""
        if self._info is None:
            from ccfarm.client.job.compilerinfo import compiler_info

            job = self.plan.job
            cache = os.path.join(slots.state_dir(self.env), "cache")
            self._info = compiler_info(self.plan.compiler_path, job.language, job.argv[1:], cache)
        return self._info

    def remote(self) -> RemotePlan:
        if self._remote is None:
            path = self.env.get("PATH", os.defpath)
            self._remote = self.plan.remote(
                self.info(), self.env, which=lambda name: find_compiler(name, path)
            )
        return self._remote


def _distribute(job: _Job, cpp: Preprocessing, hosts: Hosts) -> Ending:
    """Attempts on the hosts `hosts` holds, until the plan says how the job ends."""
    tried: list[hostlist.HostSpec] = []
    while True:
        target = hosts.hold(tried)
        if not isinstance(target, Target):
            return target
        try:
            remote = job.remote()
            preprocessed = cpp.result()
            if preprocessed is None:
                outcome = fallback.PREPROCESSOR_FAILED
            else:
                outcome = attempt(remote, job.plan.settings, target, preprocessed)
            hosts.learn(target.spec, outcome)
        finally:
            target.release()
        tried.append(target.spec)
        after = fallback.after_attempt(
            job.plan, outcome, host=target.spec.text, tried=len(tried), tries=hosts.tries
        )
        if not isinstance(after, NextHost):
            return after
        _say(job.plan.settings, after)


def _schedulers(job: _Job) -> list[tuple[str, int]] | UseHostLists:
    """The schedulers to ask: those not marked as failed lately (by any job here)."""
    from ccfarm.client.job.lease import parse_schedulers

    schedulers = parse_schedulers(job.plan.schedulers)
    state = slots.state_dir(job.env)
    now = time.time()
    period = job.plan.settings.backoff
    marks = [
        slots.is_scheduler_backed_off(state, address, port, now=now, period=period)
        for address, port in schedulers
    ]
    return fallback.schedulers_to_ask(schedulers, marks)


def _lease(
    job: _Job, cpp: Preprocessing, schedulers: list[tuple[str, int]]
) -> Target | RunLocal | UseHostLists:
    """A host from the scheduler, asked for once the preprocessor is done."""
    from ccfarm.client.job.lease import NoLease, request_lease

    plan = job.plan
    state = slots.state_dir(job.env)
    compiler = fallback.lease_compiler(job.info().identity)
    # Preprocess before asking: a slot leased now would sit idle, kept from
    # other builds, while this machine preprocesses (slow when it is busy).
    # Its size tells the scheduler roughly what the job costs: big jobs go
    # to fast hosts.
    preprocessed = cpp.result()
    if preprocessed is None:
        return RunLocal()  # shows the preprocessor's own errors
    asked = time.monotonic()
    try:
        lease = request_lease(
            schedulers,
            compiler,
            connect_timeout=plan.settings.scheduler_timeout,
            wait=plan.settings.lease_wait,
            size=len(preprocessed[0]),
            failed=lambda address, port: slots.mark_scheduler_backoff(state, address, port),
            secret=job.secret,
        )
    except NoLease as exc:
        return fallback.after_no_lease(exc.answered, str(exc))
    grant = lease.grant
    say(plan.settings, verbose=fallback.lease_note(plan.job, grant, time.monotonic() - asked))
    return Target(
        fallback.leased_host(grant),
        lease.release,
        express=grant.express,
        lease=lease,
        secret=job.secret,
    )


class _Leased:
    """A scheduler's host: the one host the job tries."""

    tries = fallback.SCHEDULER_TRIES

    def __init__(self, target: Target) -> None:
        self.target: Target | None = target
        self.lease = target.lease

    def hold(self, tried: list[hostlist.HostSpec]) -> Target | Ending:
        target, self.target = self.target, None
        return target or fallback.no_free_host(self.tries)

    def learn(self, spec: hostlist.HostSpec, attempt: fallback.Attempt) -> None:
        """A host that failed is reported (before the release), so it is leased no more."""
        if attempt.outcome == "host failed" and not attempt.lease_lost and self.lease is not None:
            self.lease.report_failed(attempt.reason)


class _Listed:
    """The host lists' hosts, by slot, in distcc's order; a failed host backs off."""

    def __init__(self, job: _Job, route: HostRoute) -> None:
        self.settings = job.plan.settings
        self.listing = route.listing
        self.tries = route.tries
        self.state = slots.state_dir(job.env)
        self.secret = job.secret

    def hold(self, tried: list[hostlist.HostSpec]) -> Target | Ending:
        try:
            slot = slots.acquire_slot(
                self.state,
                [h for h in self.listing.hosts if h not in tried],
                now=time.time(),
                backoff_period=self.settings.backoff,
                sleep=time.sleep,
                pause=self.settings.pause,
                randomize=self.listing.randomize,
            )
        except OSError as exc:  # the slot locks live there
            return RunLocal(
                warning=f"state directory {self.state} unusable ({exc.strerror}); compiling locally"
            )
        if slot is None:
            return fallback.no_free_host(self.tries)
        if slot.spec.kind == "local":
            return slot  # a `localhost` entry: compile here, in its slot
        return Target(slot.spec, slot.release, express=False, secret=self.secret)

    def learn(self, spec: hostlist.HostSpec, attempt: fallback.Attempt) -> None:
        """distcc's backoff marks, seen by every wrapper here (set while the slot is held)."""
        if attempt.outcome == "host failed":
            slots.mark_backoff(self.state, spec)
        elif attempt != fallback.PREPROCESSOR_FAILED:
            slots.clear_backoff(self.state, spec)


def _cpus() -> int:
    """The CPUs this process may run on (its affinity mask: taskset, cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _say(settings: Settings, said: RunLocal | Exit | NextHost | UseHostLists | HostRoute) -> None:
    say(settings, warning=said.warning, verbose=said.verbose)


__all__ = ["compile_job"]
