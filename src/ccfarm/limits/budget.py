"""A global budget of bytes (buffered request bodies), first come first served."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class MemoryBudget:
    """`total` bytes shared by all connections.

    `request(key, n)` grants at once when `n` fits and nobody waits ahead,
    else queues the key (unless `n` can never fit: then it is refused, and
    the caller should refuse the request). `release(n)` gives bytes back
    and returns the keys whose queued requests it granted, oldest first.
    A waiting key that gives up calls `cancel`.
    """

    __slots__ = ("total", "used", "_waiting")

    def __init__(self, total: int) -> None:
        if total <= 0:
            raise ValueError("a memory budget needs a positive size")
        self.total = total
        self.used = 0
        self._waiting: OrderedDict[Hashable, int] = OrderedDict()

    @property
    def free(self) -> int:
        return self.total - self.used

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def fits(self, n: int) -> bool:
        """Could `n` bytes ever be granted?"""
        return 0 <= n <= self.total

    def request(self, key: Hashable, n: int) -> bool | None:
        """True: granted now; None: queued; False: larger than the whole budget."""
        if not self.fits(n):
            return False
        if key in self._waiting:
            raise ValueError(f"{key!r} is already waiting")
        if not self._waiting and n <= self.free:
            self.used += n
            return True
        self._waiting[key] = n
        return None

    def cancel(self, key: Hashable) -> list[Hashable]:
        """`key` stops waiting (if it was); keys behind it may fit now."""
        if self._waiting.pop(key, None) is None:
            return []
        return self._grant()

    def release(self, n: int) -> list[Hashable]:
        if not 0 <= n <= self.used:
            raise ValueError(f"releasing {n} of {self.used} bytes in use")
        self.used -= n
        return self._grant()

    def _grant(self) -> list[Hashable]:
        granted = []
        while self._waiting:
            key, n = next(iter(self._waiting.items()))
            if n > self.free:
                break
            del self._waiting[key]
            self.used += n
            granted.append(key)
        return granted

    def check(self) -> None:
        """Raise AssertionError unless the accounting is consistent."""
        assert 0 <= self.used <= self.total, (self.used, self.total)
        assert all(0 <= n <= self.total for n in self._waiting.values())
