"""What a compile job costs, learnt from the jobs the farm ran. Pure."""

from __future__ import annotations

#: a job's cost relative to the average is kept within these bounds
COST_RANGE = (0.1, 10.0)


class CostModel:
    """A job's cost relative to the average job, from its preprocessed size.

    Cost does not grow in proportion to size: the headers every file
    includes are mostly declarations, cheap to compile, while function
    bodies are where an optimising compiler spends its time (Lua's lvm.c is
    2.7x an average file's preprocessed size and costs ~5x its compile
    time). So the model fits cost = a + b * size by least squares over the
    jobs that ended (cost: their lease's seconds x the host's speed), each
    new job weighing `weight` (recent builds count most). Until `min_jobs`
    have ended, or while the fit is not usable (sizes all alike, cost not
    growing with size), a job's cost is taken as proportional to its size.
    A job of unknown size (0) is an average job.
    """

    def __init__(self, weight: float = 1 / 32, min_jobs: int = 8) -> None:
        self.weight = weight
        self.min_jobs = min_jobs
        self.jobs = 0  # jobs observed
        self.mean_size = 0.0  # moving average of the sizes asked for
        # decayed sums for the fit (count, x, y, x*x, x*y), each kept divided
        # by `_g`, the product of the decays so far: a host's share of them
        # can then be weighed again in O(1) when its speed is corrected
        self._g = 1.0
        self._n = self._x = self._y = self._xx = self._xy = 0.0
        #: per host: [the speed its jobs count at (0: they do not count),
        #: count, size, size^2, seconds, size x seconds] (the sums over _g)
        self._hosts: dict[str, list[float]] = {}

    def relative(self, size: int) -> float:
        """The cost of a job of `size` bytes over the average job's; the size
        joins the average of the sizes asked for."""
        if size <= 0:
            return 1.0
        self.mean_size = (
            float(size)
            if self.mean_size <= 0
            else self.mean_size + (size - self.mean_size) * self.weight
        )
        fit = self.fit()
        if fit is None:
            value = size / self.mean_size
        else:
            a, b = fit
            mean_cost = self._y / self._n
            value = (a + b * size) / mean_cost
        low, high = COST_RANGE
        return min(high, max(low, value))

    def observe(self, size: int, cost: float) -> None:
        """A job of `size` bytes ended, having cost `cost` (seconds x speed)."""
        if size <= 0 or cost <= 0:
            return
        inv = self._decay()
        self._n += inv
        self._x += size * inv
        self._y += cost * inv
        self._xx += float(size) * size * inv
        self._xy += size * cost * inv
        self._keep_bounded()

    def observe_on(self, host: str, size: int, seconds: float, speed: float) -> None:
        """A job of `size` bytes ended after `seconds` on `host`: its cost is
        seconds x `speed`, the host's speed as the farm now believes it (0:
        not believed, its jobs do not count), until `respeed`."""
        if size <= 0 or seconds <= 0 or speed < 0:
            return
        share = self._hosts.get(host)
        if share is None:
            share = self._hosts[host] = [speed, 0.0, 0.0, 0.0, 0.0, 0.0]
        elif share[0] != speed:
            self.respeed(host, speed)
        inv = self._decay()
        part = (inv, size * inv, float(size) * size * inv, seconds * inv, size * seconds * inv)
        for i, value in enumerate(part, 1):
            share[i] += value
        if speed > 0:
            self._count(part, speed, 1.0)
        self._keep_bounded()

    def respeed(self, host: str, speed: float) -> None:
        """`host`'s jobs, past ones included, count at `speed` from now on (0: not at all)."""
        share = self._hosts.get(host)
        if share is None or share[0] == speed:
            return
        part = (share[1], share[2], share[3], share[4], share[5])
        if share[0] > 0:
            self._count(part, share[0], -1.0)
        if speed > 0:
            self._count(part, speed, 1.0)
        share[0] = speed

    def forget(self, host: str) -> None:
        """`host` left: its jobs stay in the sums as they count now."""
        self._hosts.pop(host, None)

    def _decay(self) -> float:
        """One more job: every earlier one weighs `weight` less; its own weight (over _g)."""
        self._g *= 1.0 - self.weight
        self.jobs += 1
        return 1.0 / self._g

    def _count(
        self, part: tuple[float, float, float, float, float], speed: float, sign: float
    ) -> None:
        n, x, xx, t, xt = part
        self._n = max(0.0, self._n + sign * n)
        self._x = max(0.0, self._x + sign * x)
        self._xx = max(0.0, self._xx + sign * xx)
        self._y = max(0.0, self._y + sign * speed * t)
        self._xy = max(0.0, self._xy + sign * speed * xt)

    def _keep_bounded(self) -> None:
        """Bring the sums back to plain values before 1/_g overflows."""
        g = self._g
        if g >= 1e-100:
            return
        self._n *= g
        self._x *= g
        self._y *= g
        self._xx *= g
        self._xy *= g
        for share in self._hosts.values():
            for i in range(1, 6):
                share[i] *= g
        self._g = 1.0

    @property
    def _empty(self) -> bool:
        """Do no jobs count (all of them on hosts whose speed is not believed)?"""
        return self._n * self._g < 0.5

    @property
    def warm(self) -> bool:
        """Have enough jobs ended for `predicted` to mean something?"""
        return self.jobs >= self.min_jobs

    def predicted(self, size: int) -> float | None:
        """What a job of `size` bytes costs (seconds x speed), from the fit or,
        while it is not usable, in proportion to the observed jobs' sizes;
        None before any job ended or for a job of unknown size."""
        line = self.line()
        if size <= 0 or line is None:
            return None
        a, b, low, high = line
        return min(high, max(low, a + b * size))

    def line(self) -> tuple[float, float, float, float] | None:
        """(a, b, low, high) of `predicted` as it is now: cost = a + b x size,
        kept within [low, high] (for many predictions at once); None before
        any job counted."""
        if self._empty:
            return None
        mean_cost = self._y / self._n
        fit = self.fit()
        a, b = fit if fit is not None else (0.0, self._y / max(self._x, 1e-9))
        return a, b, COST_RANGE[0] * mean_cost, COST_RANGE[1] * mean_cost

    def mean_cost(self) -> float | None:
        """An average job's cost (seconds x speed), once `min_jobs` ended."""
        if self.jobs < self.min_jobs or self._empty or self._n <= 0:
            return None
        return self._y / self._n

    def fit(self) -> tuple[float, float] | None:
        """(a, b) of cost = a + b * size, or None when not usable."""
        if self.jobs < self.min_jobs or self._empty:
            return None
        n = self._n
        mean_x = self._x / n
        var_x = self._xx / n - mean_x * mean_x
        if var_x <= (0.05 * mean_x) ** 2:  # sizes too alike to tell anything
            return None
        b = (self._xy / n - mean_x * self._y / n) / var_x
        if b <= 0:
            return None
        return self._y / n - b * mean_x, b
