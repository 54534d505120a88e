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
        # decayed sums for the fit: count, x, y, x*x, x*y
        self._n = self._x = self._y = self._xx = self._xy = 0.0

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
        keep = 1.0 - self.weight
        self._n = self._n * keep + 1.0
        self._x = self._x * keep + size
        self._y = self._y * keep + cost
        self._xx = self._xx * keep + float(size) * size
        self._xy = self._xy * keep + size * cost
        self.jobs += 1

    @property
    def warm(self) -> bool:
        """Have enough jobs ended for `predicted` to mean something?"""
        return self.jobs >= self.min_jobs

    def predicted(self, size: int) -> float | None:
        """What a job of `size` bytes costs (seconds x speed), from the fit or,
        while it is not usable, in proportion to the observed jobs' sizes;
        None before any job ended or for a job of unknown size."""
        if size <= 0 or self._n <= 0:
            return None
        fit = self.fit()
        if fit is not None:
            a, b = fit
            value = a + b * size
        else:
            value = self._y * size / max(self._x, 1e-9)
        low, high = COST_RANGE
        mean_cost = self._y / self._n
        return min(high * mean_cost, max(low * mean_cost, value))

    def scale(self, factor: float) -> None:
        """Express every cost observed so far in units `factor` times
        smaller or larger (cost x factor); relative costs do not change."""
        self._y *= factor
        self._xy *= factor

    def fit(self) -> tuple[float, float] | None:
        """(a, b) of cost = a + b * size, or None when not usable."""
        if self.jobs < self.min_jobs:
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
