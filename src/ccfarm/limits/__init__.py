"""Named bounds a service keeps against its peers, pure: no sockets, clock or threads.

`MemoryBudget` (bytes of request bodies held at once, with a first-come
queue of those waiting), `ConnectionCaps` (connections in total and per
client address), `RateLimiter` (log lines per kind and in all) and
`LogRateFilter` (the limiter as a `logging.Filter`). The services own one
of each and ask them; the numbers come from their config.
"""

from ccfarm.limits.budget import MemoryBudget
from ccfarm.limits.connections import ConnectionCaps, fd_headroom
from ccfarm.limits.ratelimit import LogRateFilter, RateLimiter

__all__ = ["ConnectionCaps", "LogRateFilter", "MemoryBudget", "RateLimiter", "fd_headroom"]
