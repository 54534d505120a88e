"""The scheduler's job cost model: relative cost from the preprocessed text's
size and how much of it comes from the main file."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
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
    """Cost = b * (size - 40 KB), main bytes not known (an older wrapper):
    the whole size is fitted, and the model ranks a 240 KB job above what
    plain proportion to the average size (~95 KB) would say."""
    model = CostModel()
    sizes = [50_000, 60_000, 70_000, 80_000, 90_000, 100_000, 120_000, 240_000] * 4
    for size in sizes:
        model.relative(size)
        model.observe(size, 1e-5 * (size - 40_000))
    a, b, c = model.fit() or (0.0, 0.0, 0.0)
    assert math.isclose(b, 1e-5, rel_tol=1e-6) and math.isclose(a, -0.4, rel_tol=1e-6)
    assert b == c  # one measure: the whole size
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


# (main bytes, header bytes) of jobs whose two measures vary independently
# (as in a real code base: a big .c file need not include big headers)
_JOBS = [
    (m, r) for m in (2_000, 10_000, 30_000, 60_000, 120_000) for r in (40_000, 80_000, 160_000)
]


def _fed(cost: Callable[[int, int], float], jobs: list[tuple[int, int]] = _JOBS) -> CostModel:
    model = CostModel()
    for _ in range(3):
        for m, r in jobs:
            model.relative(m + r, m)
            model.observe(m + r, cost(m, r), main=m)
    return model


def test_main_bytes_predict_what_the_whole_size_cannot() -> None:
    """C: the cost is in the main file's bytes, headers cost nothing. A small
    file with big headers is cheap, a big file with small headers is not,
    though the two are the same size."""
    model = _fed(lambda m, r: 0.1 + 1e-5 * m)
    a, b, c = model.fit() or (0.0, 0.0, 0.0)
    assert math.isclose(b, 1e-5, rel_tol=1e-6) and math.isclose(a, 0.1, rel_tol=1e-6)
    assert abs(c) < 1e-12
    assert model.predicted(100_000, 2_000) == pytest.approx(0.12)
    assert model.predicted(100_000, 60_000) == pytest.approx(0.7)
    assert model.relative(100_000, 60_000) > 5 * model.relative(100_000, 2_000)
    # a job that does not tell its main bytes splits as the others did (~30 %)
    assert 0.2 < model.main_share < 0.5
    share = round(100_000 * model.main_share)
    assert model.predicted(100_000) == model.predicted(100_000, share)


def test_header_text_counts_where_it_costs() -> None:
    """C++-like: the headers' text costs too (templates, inline functions), at its own rate."""
    model = _fed(lambda m, r: 1e-5 * m + 2e-6 * r)
    a, b, c = model.fit() or (0.0, 0.0, 0.0)
    assert math.isclose(b, 1e-5, rel_tol=1e-6) and math.isclose(c, 2e-6, rel_tol=1e-6)
    assert abs(a) < 1e-9
    assert model.predicted(170_000, 10_000) == pytest.approx(0.1 + 0.32)


def test_header_text_that_seems_to_save_cost_is_left_out() -> None:
    """Noise can make more header text look cheaper: then the main bytes alone."""
    model = _fed(lambda m, r: 0.5 + 1e-5 * m - 1e-6 * r)
    a, b, c = model.fit() or (0.0, 0.0, 0.0)
    assert c == 0.0 and math.isclose(b, 1e-5, rel_tol=1e-6)
    assert model.predicted(170_000, 10_000) == pytest.approx(a + 0.1)


def test_one_measure_that_hardly_varies_falls_back_to_the_whole_size() -> None:
    """Every file includes the same headers: the whole size says what the main bytes say."""
    same_headers = [(m, 50_000) for m, _ in _JOBS]
    model = _fed(lambda m, r: 1e-5 * m, same_headers)
    a, b, c = model.fit() or (0.0, 0.0, 0.0)
    assert b == c and math.isclose(b, 1e-5, rel_tol=1e-6)
    assert model.predicted(150_000, 100_000) == pytest.approx(1.0)


def test_relative_cost_is_clipped() -> None:
    model = CostModel()
    model.relative(1000)
    assert model.relative(1_000_000) == COST_RANGE[1]
    assert model.relative(1) == COST_RANGE[0]


@given(
    st.lists(
        st.tuples(st.integers(0, 10**7), st.floats(0, 1e4, allow_nan=False), st.integers(0, 10**7)),
        max_size=60,
    ),
    st.integers(0, 10**8),
    st.integers(0, 10**8),
)
def test_relative_cost_always_bounded(
    jobs: list[tuple[int, float, int]], size: int, main: int
) -> None:
    model = CostModel(min_jobs=2)
    for job_size, cost, job_main in jobs:
        model.relative(job_size, job_main)
        model.observe(job_size, cost, main=job_main)
    value = model.relative(size, main)
    assert math.isfinite(value) and COST_RANGE[0] <= value <= COST_RANGE[1]
    predicted = model.predicted(size, main)
    assert predicted is None or (math.isfinite(predicted) and predicted > 0)
