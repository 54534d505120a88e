"""What happened to the farm's hosts, for the operator's log. Pure.

`Farm` notes each change of a host's membership or standing here (joined,
left and why, leaving, disabled, enabled, quarantined for how long, on
probation, healthy again); the service takes the notes after each event it
feeds the farm and logs them at info level. Heartbeats that change nothing
note nothing, so the log grows with what an operator wants to know, not
with the farm's size.
"""

from __future__ import annotations

from enum import Enum

from ccfarm._record import record

__all__ = ["HostNews", "Journal", "News"]


class News(Enum):
    JOINED = "joined"
    LEFT = "left"
    LEAVING = "leaving"  # its daemon drains (BYEE)
    DISABLED = "disabled"  # drained by an operator
    ENABLED = "enabled"
    QUARANTINED = "quarantined"
    PROBATION = "on probation"
    HEALTHY = "healthy again"


@record
class HostNews:
    host: str
    news: News
    #: what more there is to say ("4 slots, speed 1.2", "connection closed", "10 s")
    detail: str = ""

    def text(self) -> str:
        return f"host {self.host} {self.news.value}" + (f": {self.detail}" if self.detail else "")


class Journal:
    """The notes since they were last taken."""

    __slots__ = ("_notes",)

    def __init__(self) -> None:
        self._notes: list[HostNews] = []

    def note(self, host: str, news: News, detail: str = "") -> None:
        self._notes.append(HostNews(host, news, detail))

    def take(self) -> list[HostNews]:
        """The notes so far, oldest first; the journal is empty after."""
        notes, self._notes = self._notes, []
        return notes

    def __bool__(self) -> bool:
        return bool(self._notes)
