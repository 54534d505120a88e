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

import contextlib
import os
import sys
import time
from collections.abc import Mapping

from ccfarm.client.hosts import hostlist, slots
from ccfarm.client.job import fallback
from ccfarm.client.job.attempt import Target, attempt, say, write_object
from ccfarm.client.job.explain import HERE, Story, leased_where, listed_where, waited
from ccfarm.client.job.fallback import Exit, HostRoute, NextHost, RunLocal, UseHostLists
from ccfarm.client.job.invocation import Invocation, find_compiler
from ccfarm.client.job.plan import SAFEGUARD, JobPlan, RemotePlan, Settings, plan_job, read_settings
from ccfarm.client.job.process import Preprocessing

MYPY = False
if MYPY:  # imported only when used (start-up time)
    import ssl
    from typing import Protocol

    from ccfarm.client.job.compilerinfo import CompilerInfo

    #: how a job ends: an exit status, compiling here, or compiling here in a held slot
    Ending = Exit | RunLocal | slots.Slot

    class Hosts(Protocol):
        """Where a job's hosts come from (`_Leased`, `_Listed`)."""

        @property
        def tries(self) -> fallback.Tries: ...
        def hold(self, tried: list[hostlist.HostSpec]) -> Target | Ending: ...
        def learn(self, spec: hostlist.HostSpec, attempt: fallback.Attempt) -> bool: ...
        def where(self, target: Target, how: str) -> str: ...


def compile_job(inv: Invocation, env: Mapping[str, str]) -> int:
    """Run the job somewhere; return the exit status the build must see."""
    settings = read_settings(env)
    story = Story()
    return _end(inv, env, settings, story, _run(inv, env, settings, story))


def _run(inv: Invocation, env: Mapping[str, str], settings: Settings, story: Story) -> Ending:
    plan = plan_job(inv, env, settings, terminal=os.isatty(2))
    if isinstance(plan, RunLocal):
        story.told = bool(plan.verbose)  # else a compiler ccfarm started: it says nothing
        return plan
    story.source = plan.job.source
    job = _Job(env, plan, story)
    if settings.secret_file:
        from ccfarm.errors import ConfigError
        from ccfarm.secretfile import read_secret

        try:
            job.secret = read_secret(settings.secret_file)
        except ConfigError as exc:  # no talking to the farm unproven
            return RunLocal(warning=f"CCFARM_SECRET_FILE: {exc}; compiling locally")
    if any(settings.tls):
        from ccfarm.errors import ConfigError
        from ccfarm.tls import CA_ENV, CERT_ENV, KEY_ENV, TLSFiles, client_from

        try:
            job.tls = client_from(TLSFiles(*settings.tls), (CERT_ENV, KEY_ENV, CA_ENV))
        except ConfigError as exc:  # not in the clear when TLS was asked for
            return RunLocal(warning=f"TLS: {exc}; compiling locally")
    before: tuple[str, ...] = ()
    if plan.schedulers:
        schedulers = _schedulers(job)
        leased: Target | Ending | UseHostLists
        if isinstance(schedulers, UseHostLists):
            leased = schedulers
        else:
            with Preprocessing(plan, job.child_env) as cpp:
                leased = _lease(job, cpp, schedulers)
                if isinstance(leased, Target):
                    return _distribute(job, cpp, _Leased(leased))
                if isinstance(leased, slots.Slot):
                    return _here(job, cpp, leased)
        if not isinstance(leased, UseHostLists):
            return leased
        before = (leased.verbose,)
    try:
        route = fallback.route_hosts(
            hostlist.hosts_from_environment(env, read_file=read_text),
            source=plan.job.source,
            before=before,
        )
    except hostlist.HostListError as exc:
        route = fallback.route_hosts(None, str(exc))
    if not isinstance(route, HostRoute):
        return route
    _say(job, route)
    with Preprocessing(plan, job.child_env) as cpp:
        return _distribute(job, cpp, _Listed(job, route))


def _end(
    inv: Invocation, env: Mapping[str, str], settings: Settings, story: Story, ending: Ending
) -> int:
    """The one way out: the exit status, or the local compiler in place of this process.

    Every local compile holds one of this machine's local slots (but for a
    compiler ccfarm started itself). With CCFARM_VERBOSE the job says, in
    one line, where it ran and why.
    """
    if isinstance(ending, Exit):
        say(settings, warning=ending.warning)
        story.note(ending.verbose)
        if ending.status != 0 or not story.where:
            story.ran(f"not compiled (exit {ending.status})")
        if story.told:
            say(settings, verbose=story.line())
        return ending.status
    slot = ending if isinstance(ending, slots.Slot) else None
    if slot is not None and settings.local_nice:
        # the farm's choice kept it here: this machine also preprocesses
        # every job the hosts wait for, and that must not wait for this one
        with contextlib.suppress(OSError):
            os.nice(settings.local_nice)
    if isinstance(ending, RunLocal):
        say(settings, warning=ending.warning)
        story.note(ending.verbose)
        count = ending.local_slots
        if count == hostlist.CPU_COUNT:
            count = _cpus()
        if count > 0:
            state = slots.state_dir(env)
            asked = time.monotonic()
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
                story.ran(HERE + waited(time.monotonic() - asked))
    if story.told:
        say(settings, verbose=story.line())
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

    def __init__(self, env: Mapping[str, str], plan: JobPlan, story: Story) -> None:
        self.env = env
        self.plan = plan
        self.story = story
        self.child_env = {**env, SAFEGUARD: "1"}  # for the compilers started here
        self._info: CompilerInfo | None = None
        self._remote: RemotePlan | None = None
        self.secret: bytes | None = None  # the farm's (CCFARM_SECRET_FILE)
        self.tls: ssl.SSLContext | None = None  # CCFARM_TLS_CA's, for the scheduler and ccfarmd

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
        if isinstance(target, slots.Slot):
            return _here(job, cpp, target)
        if not isinstance(target, Target):
            return target
        try:
            remote = job.remote()
            preprocessed = cpp.result()
            if preprocessed is None:
                outcome = fallback.PREPROCESSOR_FAILED
            else:
                outcome = attempt(remote, job.plan.settings, target, preprocessed)
            reported = hosts.learn(target.spec, outcome)
        finally:
            target.release()
        tried.append(target.spec)
        if outcome.outcome == "compiled":
            job.story.ran(hosts.where(target, outcome.how))
        after = fallback.after_attempt(
            job.plan,
            outcome,
            host=target.spec.text,
            tried=len(tried),
            tries=hosts.tries,
            reported=reported,
        )
        if not isinstance(after, NextHost):
            return after
        _say(job, after)


def _here(job: _Job, cpp: Preprocessing, slot: slots.Slot) -> Ending:
    """A job the farm keeps here, in `slot`, once its text is preprocessed.

    Where the text stands for the source (the cheap way's rule), the text
    is compiled, as a ccfarmd would, and its object kept if that compile
    said nothing: no second preprocessing. Anything else (a word, a failure)
    and the job compiles from its source in the same slot (`_end`), which
    gives the local messages exactly. Either compile runs niced
    (CCFARM_LOCAL_NICE): this machine also preprocesses every job the hosts
    wait for, and that must not wait for this one.
    """
    preprocessed = cpp.result()
    if preprocessed is None:
        return slot  # the compile from source shows why
    text, cpp_stderr = preprocessed
    remote = job.remote()
    if not remote.text_stands_for_source(cpp_stderr, text):
        return slot
    from ccfarm.client.job.process import spawn, temp_path

    output = temp_path(".o", job.child_env)
    try:
        argv = remote.here_argv(job.plan.compiler_path, cpp.path, output)
        if argv is None:
            return slot
        compiler = spawn(job.plan.compiler_path, argv, job.child_env, with_stdout=True)
        nice = job.plan.settings.local_nice
        if nice:  # the compiler, not this process: a fork server's worker stays as it was
            with contextlib.suppress(OSError):
                priority = os.getpriority(os.PRIO_PROCESS, 0)
                os.setpriority(os.PRIO_PROCESS, compiler.pid, priority + nice)
        try:
            status, said = compiler.wait()
        finally:
            compiler.stop()  # (interrupted: it must not write `output` again)
        if status != 0 or said:
            return slot
        try:
            with open(output, "rb") as f:
                obj = f.read()
        except OSError:
            return slot
        if not write_object(job.plan.job.output, obj):
            return slot  # the compile from source reports it exactly
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(output)
    slot.release()
    job.story.ran(f"{HERE} from preprocessed text")
    return Exit(0)


def _schedulers(job: _Job) -> list[tuple[str, int]] | UseHostLists:
    """The schedulers to ask: those not marked as failed lately (by any job here)."""
    from ccfarm.client.job.lease import SchedulerMarks, parse_schedulers

    marks = SchedulerMarks(slots.state_dir(job.env), job.plan.settings.backoff)
    return marks.to_ask(parse_schedulers(job.plan.schedulers))


def _lease(
    job: _Job, cpp: Preprocessing, schedulers: list[tuple[str, int]]
) -> Target | Ending | UseHostLists:
    """A host from the scheduler, asked for once the preprocessor is done; or
    this machine, in one of its local slots, when the scheduler says so or
    a local slot frees before a host does."""
    from ccfarm.client.job.lease import NoLease, SchedulerMarks, request_lease
    from ccfarm.compiler.linemarkers import main_file_bytes

    plan = job.plan
    state = slots.state_dir(job.env)
    compiler = fallback.lease_compiler(job.info().identity)
    # Preprocess before asking: a slot leased now would sit idle, kept from
    # other builds, while this machine preprocesses (slow when it is busy).
    # Its size, and how much of it comes from the main file, tell the
    # scheduler roughly what the job costs: big jobs go to fast hosts.
    preprocessed = cpp.result()
    if preprocessed is None:
        return fallback.rerun_here(
            fallback.PREPROCESSOR_FAILED, host="", tries=fallback.SCHEDULER_TRIES
        )
    local = _LocalSlots(state)
    held = local.take()  # held during the round trip: no other job counts on it
    speed = 0.0
    if held is not None:
        from ccfarm.client.hosts.speed import local_speed

        speed = local_speed(job.env, state, plan.compiler_path, now=time.time())
    marks = SchedulerMarks(state, plan.settings.backoff)
    asked = time.monotonic()
    try:
        got = request_lease(
            schedulers,
            compiler,
            connect_timeout=plan.settings.scheduler_timeout,
            wait=plan.settings.lease_wait,
            size=len(preprocessed[0]),
            main=main_file_bytes(preprocessed[0]),
            failed=marks.failed,
            answered=marks.answered,
            local=local.take,
            local_slot=held is not None,
            local_speed=speed,
            secret=job.secret,
            tls=job.tls,
        )
    except NoLease as exc:
        after = fallback.after_no_lease(exc.answered, str(exc), backoff=plan.settings.backoff)
        if held is not None and exc.answered:  # compile here, in the slot held
            job.story.note(fallback.kept_local(str(exc)) if exc.local else after.verbose)
            return held
        if held is not None:
            held.release()
        return after
    if isinstance(got, slots.Slot):
        seconds = time.monotonic() - asked
        if got is held:  # an older scheduler queued it while a local slot was free
            job.story.note("a local slot was free and the scheduler had no free host")
        else:
            job.story.note(f"waited {seconds * 1000:.0f} ms; a local slot freed before a host")
        return got
    if held is not None:
        held.release()
    grant = got.grant
    job.story.note(fallback.lease_note(time.monotonic() - asked))
    return Target(
        fallback.leased_host(grant),
        got.release,
        express=grant.express,
        lease=got,
        secret=job.secret,
        tls=job.tls,
    )


class _LocalSlots:
    """This machine's local slots (one per CPU), taken without waiting."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.count = _cpus()
        self.held: slots.Slot | None = None
        self.broken = False  # the state directory is unusable: no local slots to offer

    def take(self) -> slots.Slot | None:
        """The slot held, else a free one now, else None."""
        if self.held is None and not self.broken:
            try:
                self.held = slots.acquire_local_slot(
                    self.state, self.count, sleep=_no_sleep, deadline=0.0
                )
            except OSError:
                self.broken = True
        return self.held


def _no_sleep(seconds: float) -> None:
    pass


class _Leased:
    """A scheduler's host: the one host the job tries."""

    tries = fallback.SCHEDULER_TRIES

    def __init__(self, target: Target) -> None:
        self.target: Target | None = target
        self.lease = target.lease
        self.grant = target.lease.grant if target.lease is not None else None

    def hold(self, tried: list[hostlist.HostSpec]) -> Target | Ending:
        target, self.target = self.target, None
        return target or fallback.no_free_host(self.tries, tried=len(tried))

    def learn(self, spec: hostlist.HostSpec, attempt: fallback.Attempt) -> bool:
        """A host that failed is reported (before the release), so it is leased no more."""
        if attempt.outcome == "host failed" and not attempt.lease_lost and self.lease is not None:
            self.lease.report_failed(attempt.reason)
            return True
        return False

    def where(self, target: Target, how: str) -> str:
        if self.grant is None:
            return listed_where(target.spec.text, how)
        return leased_where(self.grant, how)


class _Listed:
    """The host lists' hosts, by slot, in distcc's order; a failed host backs off."""

    def __init__(self, job: _Job, route: HostRoute) -> None:
        self.settings = job.plan.settings
        self.source = job.plan.job.source
        self.listing = route.listing
        self.tries = route.tries
        self.state = slots.state_dir(job.env)
        self.secret = job.secret
        self.tls = job.tls

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
            return fallback.no_free_host(self.tries, tried=len(tried), source=self.source)
        if slot.spec.kind == "local":
            return slot  # a `localhost` entry: compile here, in its slot
        return Target(slot.spec, slot.release, express=False, secret=self.secret, tls=self.tls)

    def learn(self, spec: hostlist.HostSpec, attempt: fallback.Attempt) -> bool:
        """distcc's backoff marks, seen by every wrapper here (set while the slot is held)."""
        if attempt.outcome == "host failed":
            slots.mark_backoff(self.state, spec)
        elif attempt != fallback.PREPROCESSOR_FAILED:
            slots.clear_backoff(self.state, spec)
        return False

    def where(self, target: Target, how: str) -> str:
        return listed_where(target.spec.text, how)


def _cpus() -> int:
    """This machine's local slots: the CPUs this process may use (affinity
    mask, capped by a cgroup's CPU quota, a fraction rounded up)."""
    from ccfarm.cgroups import cpu_slots

    return cpu_slots()


def read_text(path: str) -> str | None:
    """A host-list file's text, or None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _say(job: _Job, said: RunLocal | Exit | NextHost | UseHostLists | HostRoute) -> None:
    """A step's warning now; its reason goes into the job's one verbose line."""
    say(job.plan.settings, warning=said.warning)
    job.story.note(said.verbose)


__all__ = ["compile_job", "read_text"]
