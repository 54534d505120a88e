"""A compiler's identity: family, version and target triple."""

from __future__ import annotations

from ccfarm._record import record


@record
class CompilerIdentity:
    """What a job needs of a host's compiler: a request matches hosts that
    have exactly this one. Written `family version target` on the wire."""

    family: str  # "gcc", "clang", or "unknown" (not recognised)
    version: str  # "12.2.0"
    target: str  # "x86_64-linux-gnu"

    @property
    def known(self) -> bool:
        """Recognised well enough to ask a host for it."""
        return self.family != "unknown"

    def text(self) -> str:
        return f"{self.family} {self.version or '?'} {self.target or '?'}"

    @classmethod
    def parse(cls, text: str) -> CompilerIdentity:
        """The inverse of `text`; ValueError unless it is three words."""
        family, version, target = text.split()
        return cls(family, "" if version == "?" else version, "" if target == "?" else target)
