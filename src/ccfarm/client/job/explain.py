"""The one line a job says with CCFARM_VERBOSE=1: where it ran and why. Pure.

The shell notes each step's reason as the job goes (`note`) and where it
ran at the end (`ran`); `line()` is what `run._end` prints, once per job:

    x.c: compiled on 10.0.0.5:3632 from preprocessed text (speed 4.1, tier 6): leased in 0.002 s
    x.c: compiled here: a local slot was free and the scheduler kept it here (no free host)
    x.c: compiled here: waited 840 ms; a local slot freed before a host
    x.c: compiled here after 1200 ms: h1:3632 failed (timed out) and was reported ...
    compiled here: not distributed: not a compile-only command (no -c or -S)
"""

from __future__ import annotations

MYPY = False
if MYPY:
    from ccfarm.model import LeaseGranted

HERE = "compiled here"


class Story:
    """Where a job ran and the reasons on the way (mutable: the shell adds to it)."""

    __slots__ = ("source", "reasons", "where", "told")

    def __init__(self) -> None:
        self.source = ""  # the job's source file, once the job is known to be a compile
        self.reasons: list[str] = []
        self.where = ""
        self.told = True  # False: a job that says nothing (a compiler ccfarm started)

    def note(self, reason: str) -> None:
        if reason and reason not in self.reasons:
            self.reasons.append(reason)

    def ran(self, where: str) -> None:
        self.where = where

    def line(self) -> str:
        head = f"{self.source}: " if self.source else ""
        why = "; ".join(self.reasons)
        return f"{head}{self.where or HERE}" + (f": {why}" if why else "")


def leased_where(grant: LeaseGranted, how: str) -> str:
    """The "compiled on HOST how (speed, tier)" of a scheduler's host (`how`: `reply_note`)."""
    details = []
    if grant.speed > 0:
        details.append(f"speed {grant.speed:.3g}")
    if grant.tier is not None:
        details.append(f"tier {grant.tier}")
    express = " (express)" if grant.express else ""
    shown = f" ({', '.join(details)})" if details else ""
    return f"compiled on {grant.host}{how}{shown}{express}"


def listed_where(host: str, how: str) -> str:
    return f"compiled on {host}{how}"


def waited(seconds: float) -> str:
    """ " after N ms" for a wait long enough to mention (10 ms and more)."""
    return f" after {seconds * 1000:.0f} ms" if seconds >= 0.01 else ""


def undistributed(source: str, reasons: list[str]) -> str:
    """The warning of a job that could not be distributed (as distcc's)."""
    why = f" ({'; '.join(reasons)})" if reasons else ""
    return f"failed to distribute {source or 'the job'}{why}, running locally instead"


__all__ = ["HERE", "Story", "leased_where", "listed_where", "undistributed", "waited"]
