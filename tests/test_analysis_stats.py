"""analysis.stats on distributions whose answers are known."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from analysis import stats

Draw = Callable[[np.random.Generator, int], npt.NDArray[np.float64]]


def _coverage(draw: Draw, true_value: float, *, n: int, experiments: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(experiments):
        values = draw(rng, n)
        ci = stats.bootstrap_ci(values, resamples=2000, seed=i)
        assert ci is not None
        hits += ci[0] <= true_value <= ci[1]
    return hits / experiments


def test_bootstrap_ci_of_the_median_covers_a_normal_median_about_95_percent() -> None:
    cover = _coverage(
        lambda rng, n: rng.normal(1000.0, 50.0, n), 1000.0, n=25, experiments=400, seed=1
    )
    # The percentile bootstrap of a median runs a little under nominal at small n.
    assert 0.90 <= cover <= 0.99, cover


def test_bootstrap_ci_of_the_median_covers_a_skewed_median() -> None:
    # Log-normal(mu, sigma): the median is exp(mu), the mean is not.
    mu = math.log(5000.0)
    cover = _coverage(
        lambda rng, n: rng.lognormal(mu, 0.4, n), math.exp(mu), n=30, experiments=400, seed=2
    )
    assert 0.90 <= cover <= 0.99, cover


def test_bootstrap_ci_of_the_mean_covers_a_normal_mean() -> None:
    rng = np.random.default_rng(3)
    hits = 0
    for i in range(300):
        ci = stats.bootstrap_ci(rng.normal(10.0, 2.0, 40), statistic="mean", resamples=2000, seed=i)
        assert ci is not None
        hits += ci[0] <= 10.0 <= ci[1]
    assert 0.90 <= hits / 300 <= 0.99


def test_bootstrap_ci_narrows_with_more_trials() -> None:
    rng = np.random.default_rng(4)
    small = stats.bootstrap_ci(rng.normal(100, 5, 8))
    large = stats.bootstrap_ci(rng.normal(100, 5, 200))
    assert small is not None and large is not None
    assert (large[1] - large[0]) < (small[1] - small[0]) / 2


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_with_five_trials_or_fewer_the_interval_is_their_range(n: int) -> None:
    values = [100.0 + 7 * i for i in range(n)]
    assert stats.bootstrap_ci(values) == (min(values), max(values))


def test_bootstrap_is_seeded_and_needs_two_values() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.5, 10.5, 12.5]
    assert stats.bootstrap_ci(values) == stats.bootstrap_ci(values)
    assert stats.bootstrap_ci([5.0]) is None
    assert stats.bootstrap_ci([]) is None
    assert stats.bootstrap_ci([1.0, float("nan")]) is None  # NaN is dropped: one value left
    with pytest.raises(ValueError):
        stats.bootstrap_ci(values, statistic="mode")
    with pytest.raises(ValueError):
        stats.bootstrap_ci(values, confidence=1.5)


def test_coefficient_of_variation_known_values() -> None:
    # mean 10, sample sd 1 -> 0.1
    assert stats.coefficient_of_variation([9.0, 10.0, 11.0]) == pytest.approx(0.1)
    assert stats.coefficient_of_variation([5.0, 5.0, 5.0]) == 0.0
    assert stats.coefficient_of_variation([5.0]) is None
    assert stats.coefficient_of_variation([-1.0, 1.0]) is None  # mean 0: undefined
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([]) is None


def test_welch_matches_scipy() -> None:
    from scipy import stats as sps

    rng = np.random.default_rng(5)
    for _ in range(20):
        a = rng.normal(100, 5, int(rng.integers(2, 12)))
        b = rng.normal(104, 9, int(rng.integers(2, 12)))
        mine = stats.welch(a, b)
        ref = sps.ttest_ind(b, a, equal_var=False)
        assert mine is not None
        assert mine.t == pytest.approx(float(ref.statistic))
        assert mine.p == pytest.approx(float(ref.pvalue))


def test_welch_textbook_example() -> None:
    # Welch (1947)-style worked example: two groups with unequal variances.
    a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    w = stats.welch(a, b)
    assert w is not None
    assert w.t == pytest.approx(2.46, abs=0.01)
    assert w.df == pytest.approx(24.9, abs=0.1)
    assert w.p == pytest.approx(0.021, abs=0.001)


def test_welch_degenerate_cases() -> None:
    assert stats.welch([1.0], [2.0, 3.0]) is None
    same = stats.welch([5.0, 5.0], [5.0, 5.0])
    assert same is not None and same.p == 1.0
    apart = stats.welch([5.0, 5.0], [6.0, 6.0])
    assert apart is not None and apart.p == 0.0 and apart.t > 0


def test_holm_known_values() -> None:
    # Sorted p: 0.01, 0.02, 0.03, 0.04 -> 0.04, 0.06, 0.06, 0.06 (monotone), order kept.
    assert stats.holm([0.03, 0.01, None, 0.04, 0.02]) == pytest.approx(
        [0.06, 0.04, None, 0.06, 0.06]
    )
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0]
    assert stats.holm([]) == []


def test_intervals_overlap() -> None:
    assert stats.intervals_overlap((1, 3), (2, 4))
    assert stats.intervals_overlap((1, 3), (3, 4))
    assert not stats.intervals_overlap((1, 2), (2.5, 4))
    assert stats.intervals_overlap(None, (1, 2))
