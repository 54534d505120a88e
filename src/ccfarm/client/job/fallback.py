"""What follows each step of a job: compile here, try another host, or exit (pure).

The shell (`run.py`) reports how a step ended; these answer with the next
step, carrying the messages it prints (`warning`: always, `verbose`: with
CCFARM_VERBOSE), so a test reads what the build would see.

    route_hosts(listing)           the host list: hosts to try, or compile here
    after_no_lease(...)            no scheduler answered, or none had a host
    after_attempt(plan, attempt)   compiled, failed there, or the host failed
"""

from __future__ import annotations

from ccfarm._record import record
from ccfarm.client.hosts.hostlist import CPU_COUNT, HostList, HostSpec
from ccfarm.client.job.explain import undistributed

MYPY = False
if MYPY:  # types only (start-up time)
    from typing import Literal

    from ccfarm.client.job.plan import JobPlan
    from ccfarm.model import CompilerIdentity, LeaseGranted

    Outcome = Literal["compiled", "compile failed", "preprocessor failed", "host failed"]

EXIT_NO_HOSTS = 116  # distcc's status when no host could take the job
MAX_HOSTS_TRIED = 3


@record
class RunLocal:
    """Compile here: the user's command, untouched, in place of the wrapper."""

    warning: str = ""
    verbose: str = ""
    # hold one of this machine's N local slots meanwhile (0: none; CPU_COUNT: one per CPU)
    local_slots: int = 0


@record
class Exit:
    """End with `status` (the job is done, or no host took it and fallback is off)."""

    status: int
    warning: str = ""
    verbose: str = ""


@record
class NextHost:
    """Try another host (the one tried failed)."""

    warning: str = ""
    verbose: str = ""


@record
class UseHostLists:
    """No scheduler answered: the host lists decide."""

    warning: str = ""
    verbose: str = ""


@record
class Tries:
    """How many hosts a job tries, and how many local slots it then compiles in."""

    hosts: int
    local_slots: int


#: a scheduler's host is the only one tried; compiling here then takes one of the CPUs' slots
SCHEDULER_TRIES = Tries(hosts=1, local_slots=CPU_COUNT)


@record
class HostRoute:
    """The listed hosts to try (a usable TCP host among them)."""

    listing: HostList
    warning: str = ""
    verbose: str = ""

    @property
    def tries(self) -> Tries:
        return Tries(hosts=MAX_HOSTS_TRIED, local_slots=self.listing.local_slots)


@record
class Attempt:
    """What an attempt on one host came to."""

    outcome: Outcome
    reason: str = ""  # why the host failed
    lease_lost: bool = False  # the scheduler took the lease back: it knows, nothing to report
    how: str = ""  # how it compiled there (the way, the protocol)


COMPILED = Attempt("compiled")  # object written, messages replayed
COMPILE_FAILED = Attempt("compile failed")  # there, or writing its object here
PREPROCESSOR_FAILED = Attempt("preprocessor failed")


def host_failed(reason: str, *, lease_lost: bool = False) -> Attempt:
    return Attempt("host failed", reason, lease_lost)


# -- where a job goes without a host ------------------------------------------------


def route_hosts(
    listing: HostList | None, error: str = "", *, source: str = "", before: tuple[str, ...] = ()
) -> RunLocal | HostRoute:
    """The host list's verdict: hosts to try, or compile here (`error`: it did not parse).

    `before` says why no scheduler's host was used (none configured: empty).
    A job left with no host to go to is told in a warning (distcc's "failed
    to distribute"), unless the list sends it here on purpose (`localhost`
    entries only, and no scheduler failed).
    """
    if error:
        return RunLocal(
            warning=f"bad host list ({error}); compiling locally",
            verbose=f"bad host list ({error})",
            local_slots=CPU_COUNT,
        )
    unsupported = [h.text for h in listing.hosts if _unsupported(h)] if listing else []
    if listing is None or not any(h.kind == "tcp" and h.usable for h in listing.hosts):
        reasons = list(before)
        if listing is None:
            reasons.append("no host list")
        elif unsupported:
            reasons.append(f"ssh and ,auth hosts are not supported ({' '.join(unsupported)})")
        elif not listing.hosts:
            zeroconf = " (+zeroconf is not supported)" if listing.zeroconf else ""
            reasons.append(f"empty host list{zeroconf}")
        elif any(h.kind == "local" and h.usable for h in listing.hosts):
            reasons.append("the host list names only localhost")
        else:
            reasons.append("every listed host is down")
        on_purpose = (
            not before
            and listing is not None
            and not unsupported
            and any(h.kind == "local" and h.usable for h in listing.hosts)
        )
        return RunLocal(
            warning="" if on_purpose else undistributed(source, reasons),
            verbose="; ".join(reasons),
            local_slots=listing.local_slots if listing else CPU_COUNT,
        )
    skipped = [*before]
    if unsupported:
        skipped.append(f"skipping ssh and ,auth hosts (not supported): {' '.join(unsupported)}")
    if listing.zeroconf:
        skipped.append("skipping +zeroconf (not supported)")
    return HostRoute(listing, verbose="; ".join(skipped))


def _unsupported(spec: HostSpec) -> bool:
    return not spec.down and (spec.kind == "ssh" or spec.auth)


def no_free_host(tries: Tries, *, tried: int = 0, source: str = "") -> RunLocal:
    """No usable listed host is left to try (those not tried failed lately)."""
    if tried:
        return RunLocal(
            verbose="the other listed hosts failed lately (backed off)",
            local_slots=tries.local_slots,
        )
    reason = "every listed host failed lately (backed off)"
    return RunLocal(
        warning=undistributed(source, [reason]), verbose=reason, local_slots=tries.local_slots
    )


def lease_compiler(identity: CompilerIdentity) -> CompilerIdentity | None:
    """The compiler a lease asks for (None: any host, when it was not recognised)."""
    return identity if identity.known else None


def schedulers_to_ask(
    schedulers: list[tuple[str, int]], backed_off: list[bool]
) -> list[tuple[str, int]] | UseHostLists:
    """The schedulers a job asks, skipping those that failed lately (`backed_off`, in order)."""
    ask = [s for s, off in zip(schedulers, backed_off, strict=True) if not off]
    if ask or not schedulers:
        return ask
    names = " ".join(f"{address}:{port}" for address, port in schedulers)
    return UseHostLists(verbose=f"scheduler failed lately, skipped (backoff: {names})")


def after_no_lease(answered: bool, reason: str, *, backoff: float = 0.0) -> RunLocal | UseHostLists:
    """No lease: no scheduler answered (then marked for `backoff` s), or it found no host."""
    if not answered:
        marked = f", marked for {backoff:g} s" if backoff > 0 else ""
        return UseHostLists(verbose=f"no scheduler answered ({reason}){marked}")
    return RunLocal(verbose=f"the scheduler found no host ({reason})", local_slots=CPU_COUNT)


def kept_local(note: str) -> str:
    """The reason of a job the scheduler kept on its client's machine (LOCAL)."""
    return f"a local slot was free and the scheduler kept it here ({note})"


def leased_host(grant: LeaseGranted) -> HostSpec:
    """The host a lease names, as a host entry: a ccfarmd, one slot."""
    return HostSpec(grant.host, "tcp", grant.address, grant.port, 1, 3, ccfarm=True)


def lease_note(seconds: float) -> str:
    if seconds >= 0.05:
        return f"waited {seconds * 1000:.0f} ms for a free host"
    return f"leased in {seconds:.3f} s"


def rerun_here(attempt: Attempt, *, host: str, tries: Tries) -> RunLocal:
    """The compile failed on `host`, or the preprocessor here: the local
    compiler, in a local slot, shows the messages as they are here."""
    where = "the preprocessor failed" if attempt == PREPROCESSOR_FAILED else f"{host} failed it"
    return RunLocal(
        verbose=f"{where}; compiled again here for the messages", local_slots=tries.local_slots
    )


def after_attempt(
    plan: JobPlan, attempt: Attempt, *, host: str, tried: int, tries: Tries, reported: bool = False
) -> Exit | RunLocal | NextHost:
    """What follows an attempt on `host`, the `tried`-th host of this job
    (`reported`: its failure was told to the scheduler)."""
    if attempt.outcome == "compiled":
        return Exit(0)
    if attempt.outcome != "host failed":
        return rerun_here(attempt, host=host, tries=tries)
    failed = f"{host} failed ({attempt.reason})"
    told = failed
    if reported:
        told += " and was reported to the scheduler"
    elif attempt.lease_lost:
        told += ", the scheduler knew"
    source = plan.job.source
    if not plan.settings.fallback:
        return Exit(
            EXIT_NO_HOSTS,
            warning=f"{failed}; CCFARM_FALLBACK=0, giving up",
            verbose=f"{told}; CCFARM_FALLBACK=0",
        )
    if tried < tries.hosts:
        return NextHost(warning=f"{failed}; compiling {source} elsewhere", verbose=told)
    return RunLocal(
        warning=f"{failed}; compiling {source} locally", verbose=told, local_slots=tries.local_slots
    )


__all__ = [
    "COMPILED",
    "COMPILE_FAILED",
    "EXIT_NO_HOSTS",
    "MAX_HOSTS_TRIED",
    "PREPROCESSOR_FAILED",
    "SCHEDULER_TRIES",
    "Attempt",
    "Exit",
    "HostRoute",
    "NextHost",
    "RunLocal",
    "Tries",
    "UseHostLists",
    "after_attempt",
    "after_no_lease",
    "host_failed",
    "kept_local",
    "lease_compiler",
    "lease_note",
    "leased_host",
    "no_free_host",
    "rerun_here",
    "route_hosts",
    "schedulers_to_ask",
]
