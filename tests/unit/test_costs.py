"""The scheduler's job cost model: relative cost from preprocessed size."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ccfarm.scheduler.costs import COST_RANGE, CostModel


def test_unknown_size_is_an_average_job() -> None:
    model = CostModel()
    assert model.relative(0) == 1.0
    assert model.mean_size == 0.0  # it did not join the average


def test_proportional_to_size_until_enough_jobs_ended() -> None:
    model = CostModel(weight=0.5, min_jobs=3)
    assert model.relative(100) == 1.0  # the first size is the average
    assert model.relative(300) == 300 / 200  # average now (100 + 300) / 2
    for size in (100, 200):
        model.observe(size, size / 100)
    assert model.fit() is None  # two jobs: not enough
    assert model.relative(200) == 1.0


def test_learns_that_headers_cost_little() -> None:
    """Cost = b * (size - 40 KB): the fitted model ranks a 240 KB job above
    what plain proportion to the average size (~95 KB) would say."""
    model = CostModel()
    sizes = [50_000, 60_000, 70_000, 80_000, 90_000, 100_000, 120_000, 240_000] * 4
    for size in sizes:
        model.relative(size)
        model.observe(size, 1e-5 * (size - 40_000))
    a, b = model.fit() or (0.0, 0.0)
    assert math.isclose(b, 1e-5, rel_tol=1e-6) and math.isclose(a, -0.4, rel_tol=1e-6)
    mean_cost = sum(1e-5 * (s - 40_000) for s in sizes) / len(sizes)  # all weigh ~alike
    expect = 1e-5 * (240_000 - 40_000) / mean_cost
    assert abs(model.relative(240_000) - expect) / expect < 0.1
    assert model.relative(240_000) > 1.15 * 240_000 / model.mean_size


def test_unusable_fits_fall_back_to_proportion() -> None:
    alike = CostModel(min_jobs=2)
    for _ in range(10):
        alike.observe(1000, 1.0)
    assert alike.fit() is None  # one size only
    shrinking = CostModel(min_jobs=2)
    for size in (1000, 2000, 3000, 4000):
        shrinking.observe(size, 5.0 - size / 1000)
    assert shrinking.fit() is None  # bigger is not costlier: no trust in it
    shrinking.relative(1000)
    assert shrinking.relative(3000) == 3000 / shrinking.mean_size


def test_relative_cost_is_clipped() -> None:
    model = CostModel()
    model.relative(1000)
    assert model.relative(1_000_000) == COST_RANGE[1]
    assert model.relative(1) == COST_RANGE[0]


@given(
    st.lists(st.tuples(st.integers(0, 10**7), st.floats(0, 1e4, allow_nan=False)), max_size=60),
    st.integers(0, 10**8),
)
def test_relative_cost_always_bounded(jobs: list[tuple[int, float]], size: int) -> None:
    model = CostModel(min_jobs=2)
    for job_size, cost in jobs:
        model.relative(job_size)
        model.observe(job_size, cost)
    value = model.relative(size)
    assert math.isfinite(value) and COST_RANGE[0] <= value <= COST_RANGE[1]
