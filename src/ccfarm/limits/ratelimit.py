"""Log lines rate-limited: a token bucket per kind of line and one for all."""

from __future__ import annotations

import logging
from collections.abc import Hashable

#: the bucket that every line also draws from
ALL: Hashable = ("*",)


class RateLimiter:
    """Token buckets: `rate` per second, up to `burst`, per key and for all keys.

    `allow(key, now)` returns None when the line is dropped, else how many
    lines of that key were dropped since the last one allowed (to be said
    once). Keys are forgotten when their bucket is full again, and all of
    them beyond `max_keys`, so memory does not grow with distinct lines.
    """

    def __init__(
        self,
        rate: float = 5.0,
        burst: float = 20.0,
        total_rate: float = 50.0,
        total_burst: float = 200.0,
        max_keys: int = 1000,
    ) -> None:
        self.rate, self.burst = rate, burst
        self.total_rate, self.total_burst = total_rate, total_burst
        self.max_keys = max_keys
        #: key -> [tokens, time of the last refill, lines dropped since the last allowed]
        self._buckets: dict[Hashable, list[float]] = {}

    def _bucket(self, key: Hashable, now: float, rate: float, burst: float) -> list[float]:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget(now)
            bucket = self._buckets[key] = [burst, now, 0.0]
        else:
            elapsed = max(0.0, now - bucket[1])
            bucket[0] = min(burst, bucket[0] + elapsed * rate)
            bucket[1] = now
        return bucket

    def _forget(self, now: float) -> None:
        """Drop full buckets (nothing to remember); if still too many, all but ALL."""
        for key, (tokens, last, dropped) in list(self._buckets.items()):
            if key != ALL and not dropped and tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            total = self._buckets.get(ALL)
            self._buckets = {} if total is None else {ALL: total}

    def allow(self, key: Hashable, now: float) -> int | None:
        total = self._bucket(ALL, now, self.total_rate, self.total_burst)
        own = self._bucket(key, now, self.rate, self.burst)
        if own[0] < 1 or total[0] < 1:
            own[2] += 1
            return None
        own[0] -= 1
        total[0] -= 1
        dropped = int(own[2])
        own[2] = 0
        return dropped

    @property
    def keys(self) -> int:
        return len(self._buckets)


class LogRateFilter(logging.Filter):
    """A handler's filter: lines of one kind (logger, level, format string)
    beyond the limiter's rate are dropped, and the next one allowed says how
    many were. Time is the record's own (`created`)."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        super().__init__()
        self.limiter = limiter or RateLimiter()

    def filter(self, record: logging.LogRecord) -> bool:
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        dropped = self.limiter.allow((record.name, record.levelno, template), record.created)
        if dropped is None:
            return False
        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} similar lines dropped)"
            record.args = None
        return True
