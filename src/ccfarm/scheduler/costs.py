"""What a compile job costs, learnt from the jobs the farm ran. Pure."""

from __future__ import annotations

#: a job's cost relative to the average is kept within these bounds
COST_RANGE = (0.1, 10.0)

# The fit's sums over the jobs that count (each decayed): their count, the
# main file's bytes m, the rest r (the headers' text), m*m, m*r, r*r; and,
# from _Y on, those holding the cost y (seconds x speed): y, m*y, r*y. In a
# host's share (`CostModel._hosts`) these last three hold seconds: counted
# at a new speed, they are scaled by it.
_N, _M, _R, _MM, _MR, _RR, _Y, _MY, _RY = range(9)
_SUMS = 9

#: cost = a + b x main bytes + c x the rest (see `CostModel`)
Fit = tuple[float, float, float]
#: (a, b, c, low, high): a fit and the bounds its predictions are kept in (`CostModel.line`)
Line = tuple[float, float, float, float, float]


class CostModel:
    """A job's cost relative to the average job, from its preprocessed text.

    Cost does not grow in proportion to size: the headers every file
    includes are mostly declarations, cheap to compile, while function
    bodies are where an optimising compiler spends its time (Lua's lvm.c is
    2.7x an average file's preprocessed size and costs ~5x its compile
    time). So a job is measured twice, by the bytes of its text that come
    from its main file (m) and by the rest (r, the headers'), and the model
    fits cost = a + b*m + c*r by least squares over the jobs that ended
    (cost: their lease's seconds x the host's speed), each new job weighing
    `weight` (recent builds count most). Over Lua's C files, m alone
    predicts the compile time with a correlation of 0.97, the whole size
    with 0.77-0.82; in C++ the headers' templates and inline functions are
    compiled too, and c says how much they weigh. Where the fit on both is
    not usable (a measure that hardly varies, the two moving together, or a
    coefficient below 0) it is fitted on m alone (when more rest does not
    cost more) or on the whole size (b = c); until `min_jobs` have ended, or
    while no fit is usable (sizes all alike, cost not growing with size), a
    job's cost is taken as proportional to its size. A job of unknown size
    (0) is an average job; one whose main bytes are not known (0: an older
    wrapper, no line markers) is taken to split its text as the jobs asked
    for did (all of it counts as the rest while none told).
    """

    def __init__(self, weight: float = 1 / 32, min_jobs: int = 8) -> None:
        self.weight = weight
        self.min_jobs = min_jobs
        self.jobs = 0  # jobs observed
        self.mean_size = 0.0  # moving average of the sizes asked for
        #: moving average of the main file's share of them (those that told)
        self.main_share = 0.0
        # the fit's sums, each kept divided by `_g`, the product of the
        # decays so far: a host's share of them can then be weighed again in
        # O(1) when its speed is corrected
        self._g = 1.0
        self._s = [0.0] * _SUMS
        #: per host: [the speed its jobs count at (0: they do not count),
        #: then its share of the sums, seconds in place of costs] (over _g)
        self._hosts: dict[str, list[float]] = {}

    def relative(self, size: int, main: int = 0) -> float:
        """The cost of a job of `size` bytes (`main` of them from its main
        file) over the average job's; the size joins the average of the sizes
        asked for, its main share the average of those."""
        if size <= 0:
            return 1.0
        self.mean_size = (
            float(size)
            if self.mean_size <= 0
            else self.mean_size + (size - self.mean_size) * self.weight
        )
        if main > 0:
            share = min(main, size) / size
            self.main_share = (
                share
                if self.main_share <= 0
                else self.main_share + (share - self.main_share) * self.weight
            )
        fit = self.fit()
        if fit is None:
            value = size / self.mean_size
        else:
            a, b, c = fit
            m, r = self.measures(size, main)
            value = (a + b * m + c * r) * self._s[_N] / self._s[_Y]
        low, high = COST_RANGE
        return min(high, max(low, value))

    def observe(self, size: int, cost: float, main: int = 0) -> None:
        """A job of `size` bytes (`main` from its main file) ended, having
        cost `cost` (seconds x speed)."""
        if size <= 0 or cost <= 0:
            return
        part = self._part(size, main, cost, self._decay())
        s = self._s
        for i in range(_SUMS):
            s[i] += part[i]
        self._keep_bounded()

    def observe_on(self, host: str, size: int, seconds: float, speed: float, main: int = 0) -> None:
        """A job of `size` bytes (`main` from its main file) ended after
        `seconds` on `host`: its cost is seconds x `speed`, the host's speed
        as the farm now believes it (0: not believed, its jobs do not
        count), until `respeed`."""
        if size <= 0 or seconds <= 0 or speed < 0:
            return
        share = self._hosts.get(host)
        if share is None:
            share = self._hosts[host] = [speed] + [0.0] * _SUMS
        elif share[0] != speed:
            self.respeed(host, speed)
        part = self._part(size, main, seconds, self._decay())
        for i in range(_SUMS):
            share[i + 1] += part[i]
        if speed > 0:
            self._count(part, speed, 1.0)
        self._keep_bounded()

    def respeed(self, host: str, speed: float) -> None:
        """`host`'s jobs, past ones included, count at `speed` from now on (0: not at all)."""
        share = self._hosts.get(host)
        if share is None or share[0] == speed:
            return
        part = share[1:]
        if share[0] > 0:
            self._count(part, share[0], -1.0)
        if speed > 0:
            self._count(part, speed, 1.0)
        share[0] = speed

    def forget(self, host: str) -> None:
        """`host` left: its jobs stay in the sums as they count now."""
        self._hosts.pop(host, None)

    def measures(self, size: int, main: int) -> tuple[float, float]:
        """(main-file bytes, the rest) of a job of `size` bytes, `main` of
        them from its main file (0: not known, see the class's doc)."""
        main = min(main, size) if main > 0 else round(size * self.main_share)
        return float(main), float(size - main)

    def _part(self, size: int, main: int, cost: float, weight: float) -> list[float]:
        """One job's terms of the sums, times `weight`."""
        m, r = self.measures(size, main)
        return [
            weight,
            m * weight,
            r * weight,
            m * m * weight,
            m * r * weight,
            r * r * weight,
            cost * weight,
            m * cost * weight,
            r * cost * weight,
        ]

    def _decay(self) -> float:
        """One more job: every earlier one weighs `weight` less; its own weight (over _g)."""
        self._g *= 1.0 - self.weight
        self.jobs += 1
        return 1.0 / self._g

    def _count(self, part: list[float], speed: float, sign: float) -> None:
        s = self._s
        for i in range(_SUMS):
            value = part[i] * speed if i >= _Y else part[i]
            s[i] = max(0.0, s[i] + sign * value)

    def _keep_bounded(self) -> None:
        """Bring the sums back to plain values before 1/_g overflows."""
        g = self._g
        if g >= 1e-100:
            return
        self._s = [value * g for value in self._s]
        for share in self._hosts.values():
            for i in range(1, _SUMS + 1):
                share[i] *= g
        self._g = 1.0

    @property
    def _empty(self) -> bool:
        """Do no jobs count (all of them on hosts whose speed is not believed)?"""
        return self._s[_N] * self._g < 0.5

    @property
    def warm(self) -> bool:
        """Have enough jobs ended for `predicted` to mean something?"""
        return self.jobs >= self.min_jobs

    def predicted(self, size: int, main: int = 0, line: Line | None = None) -> float | None:
        """What a job of `size` bytes (`main` from its main file) costs
        (seconds x speed), from the fit or, while it is not usable, in
        proportion to the observed jobs' sizes; None before any job ended or
        for a job of unknown size. `line`: `line()` as computed already (for
        many predictions at once)."""
        if line is None:
            line = self.line()
        if size <= 0 or line is None:
            return None
        a, b, c, low, high = line
        m, r = self.measures(size, main)
        return min(high, max(low, a + b * m + c * r))

    def line(self) -> Line | None:
        """(a, b, c, low, high) of `predicted` as it is now: cost = a + b x
        main bytes + c x the rest, kept within [low, high] (for many
        predictions at once); None before any job counted."""
        if self._empty:
            return None
        s = self._s
        mean_cost = s[_Y] / s[_N]
        fit = self.fit()
        if fit is None:
            per_byte = s[_Y] / max(s[_M] + s[_R], 1e-9)
            fit = (0.0, per_byte, per_byte)
        return *fit, COST_RANGE[0] * mean_cost, COST_RANGE[1] * mean_cost

    def mean_cost(self) -> float | None:
        """An average job's cost (seconds x speed), once `min_jobs` ended."""
        if self.jobs < self.min_jobs or self._empty or self._s[_N] <= 0:
            return None
        return self._s[_Y] / self._s[_N]

    def fit(self) -> Fit | None:
        """(a, b, c) of cost = a + b * main bytes + c * the rest, or None when
        no fit is usable (see the class's doc)."""
        if self.jobs < self.min_jobs or self._empty:
            return None
        s = self._s
        n = s[_N]
        m, r, y = s[_M] / n, s[_R] / n, s[_Y] / n
        mm = s[_MM] / n - m * m  # the (co)variances
        mr = s[_MR] / n - m * r
        rr = s[_RR] / n - r * r
        my = s[_MY] / n - m * y
        ry = s[_RY] / n - r * y
        main_varies = mm > (0.05 * m) ** 2
        if main_varies and rr > (0.05 * r) ** 2:
            det = mm * rr - mr * mr
            if det > 0.01 * mm * rr:  # the two do not move together
                b = (my * rr - ry * mr) / det
                c = (ry * mm - my * mr) / det
                if b > 0 and c >= 0:
                    return y - b * m - c * r, b, c
                if b > 0 and my > 0:  # more rest does not cost more: main bytes alone
                    b = my / mm
                    return y - b * m, b, 0.0
        whole = m + r  # the whole size
        var = mm + 2 * mr + rr
        if var <= (0.05 * whole) ** 2:  # sizes too alike to tell anything
            return None
        b = (my + ry) / var
        if b <= 0:
            return None
        return y - b * whole, b, b
