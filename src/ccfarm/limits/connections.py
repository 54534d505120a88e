"""Caps on open connections (or anything else counted per client address),
in total and per address."""

from __future__ import annotations


class ConnectionCaps:
    """`admit(address)` before serving a connection, `leave(address)` after.

    A refused connection is not counted (the caller closes it at once).
    Only addresses with open connections are kept, so memory follows the
    connections, not the addresses ever seen.
    """

    __slots__ = ("total", "per_address", "what", "open", "_by_address")

    def __init__(self, total: int, per_address: int, what: str = "connections") -> None:
        if total < 1 or per_address < 1:
            raise ValueError("connection caps must be at least 1")
        self.total = total
        self.per_address = per_address
        self.what = what  # what is counted, for the reasons given
        self.open = 0
        self._by_address: dict[str, int] = {}

    @property
    def full(self) -> bool:
        """Is the total cap reached?"""
        return self.open >= self.total

    def admit(self, address: str, *, over_total: bool = False) -> str | None:
        """None when admitted (and counted), else why not. `over_total`: the
        caller has just made room by ending another connection, which is
        still counted until it has closed (the per-address cap still holds)."""
        if self.open >= self.total and not over_total:
            return f"{self.open} {self.what} open (limit {self.total})"
        held = self._by_address.get(address, 0)
        if held >= self.per_address:
            return f"{held} {self.what} from {address} (limit {self.per_address})"
        self._by_address[address] = held + 1
        self.open += 1
        return None

    def leave(self, address: str) -> None:
        held = self._by_address.get(address, 0)
        if held <= 0:
            raise ValueError(f"no connection from {address} is open")
        if held == 1:
            del self._by_address[address]
        else:
            self._by_address[address] = held - 1
        self.open -= 1

    def of(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def check(self) -> None:
        assert self.open == sum(self._by_address.values()), "open count"
        assert all(0 < n <= self.per_address for n in self._by_address.values())


def fd_headroom(soft_limit: int, reserve: int, per_connection: int, wanted: int) -> int:
    """The connection cap that descriptors allow: `wanted`, but at most what
    fits in `soft_limit` after `reserve` descriptors (logs, listening
    sockets, running compilers), at `per_connection` each; at least 1."""
    if soft_limit <= 0:  # unlimited (RLIM_INFINITY reads as -1)
        return wanted
    room = (soft_limit - reserve) // max(per_connection, 1)
    return max(1, min(wanted, room))
