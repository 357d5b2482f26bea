"""E-Divisive means with a t-test (analysis.changepoint) and the history gate's rule
(analysis.gate.open_changes), on seeded synthetic series with known steps.

The last tests are the proof the issue asks for: on enough seeded histories to mean something,
the measured false-alert rate on flat histories and the detection rate and delay on steps, held
to bounds (3 % noise: a 6 % drop caught in >= 90 % of series within 7 nights; flat 40-night
histories alerting in <= 10 %). ``python -m benchmarks.synthetic --report`` prints the full table.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from analysis.changepoint import ChangePoint, change_points, q_matrix, student_t
from analysis.gate import HistoryParams, is_known, open_changes
from benchmarks.synthetic import Case, evaluate, make_series, table, watch


def brute_q(x: list[float], tau: int, kappa: int) -> float:
    a, b = x[:tau], x[tau:kappa]
    n, m = len(a), len(b)
    cross = sum(abs(i - j) for i in a for j in b)
    wa = sum(abs(i - j) for i, j in itertools.combinations(a, 2))
    wb = sum(abs(i - j) for i, j in itertools.combinations(b, 2))
    q = 2 / (n + m) * cross
    if n > 1:
        q -= 2 * m / ((n + m) * (n - 1)) * wa
    if m > 1:
        q -= 2 * n / ((n + m) * (m - 1)) * wb
    return q


def test_q_matrix_matches_the_definition() -> None:
    x = np.random.default_rng(1).normal(size=11).tolist()
    q = q_matrix(np.array(x))
    for tau in range(1, 11):
        for kappa in range(2, 12):
            got = q[tau - 1, kappa - 2]
            if kappa > tau:
                assert got == pytest.approx(brute_q(x, tau, kappa), abs=1e-12)
            else:
                assert got == -np.inf


def test_student_t_matches_scipy_and_otava() -> None:
    rng = np.random.default_rng(2)
    for n1, n2 in ((3, 5), (10, 2), (30, 30)):
        a, b = rng.normal(10, 1, n1), rng.normal(10.5, 2, n2)
        textbook = sps.ttest_ind(a, b, equal_var=True).pvalue
        assert student_t(a, b, otava=False) == pytest.approx(textbook, rel=1e-9)
        # Otava: ttest_ind_from_stats fed with np.std (population deviations)
        otava = sps.ttest_ind_from_stats(a.mean(), a.std(), n1, b.mean(), b.std(), n2).pvalue
        assert student_t(a, b) == pytest.approx(otava, rel=1e-9)
        assert student_t(a, b) < student_t(a, b, otava=False)
    assert student_t([1.0], [2.0]) == 1.0  # no degree of freedom
    assert student_t([5.0, 5.0], [5.0, 5.0]) == 1.0
    assert student_t([5.0, 5.0], [6.0, 6.0]) == 0.0


def test_flat_and_short_series_have_no_change_point() -> None:
    assert change_points([]) == []
    assert change_points([1.0, 2.0]) == []
    assert change_points([7.0] * 40) == []
    flat = np.random.default_rng(3).normal(100, 1, 60)
    assert change_points(flat) == []


def test_one_step_is_found_where_it_is() -> None:
    rng = np.random.default_rng(4)
    x = np.r_[rng.normal(100, 1, 30), rng.normal(90, 1, 20)]
    [cp] = change_points(x)
    assert isinstance(cp, ChangePoint)
    assert cp.index == 30
    assert (cp.n_before, cp.n_after) == (30, 20)
    assert cp.mean_before == pytest.approx(x[:30].mean())
    assert cp.mean_after == pytest.approx(x[30:].mean())
    assert cp.change_pct == pytest.approx((x[30:].mean() / x[:30].mean() - 1) * 100)
    assert cp.pvalue < 1e-10


def test_two_steps_and_sliding_windows() -> None:
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(100, 1, 40), rng.normal(92, 1, 40), rng.normal(97, 1, 40)]
    assert [c.index for c in change_points(x, window=50)] == [40, 80]
    assert [c.index for c in change_points(x, window=30)] == [40, 80]


def test_deterministic_and_min_magnitude_merges_small_changes() -> None:
    rng = np.random.default_rng(6)
    x = np.r_[rng.normal(100, 0.2, 30), rng.normal(99, 0.2, 30)]  # a 1 % change, very clear
    assert change_points(x) == change_points(x.copy())
    assert [c.index for c in change_points(x)] == [30]
    assert change_points(x, min_magnitude=0.02) == []


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        change_points([1.0, float("nan"), 3.0])
    with pytest.raises(ValueError):
        change_points(np.ones((3, 3)))


# --- the history gate's rule ----------------------------------------------------------------


P = HistoryParams()


def steady(n: int, level: float = 1000.0, seed: int = 7, noise: float = 0.01) -> list[float]:
    values: list[float] = (level * (1 + np.random.default_rng(seed).normal(0, noise, n))).tolist()
    return values


def test_a_drop_alerts_once_it_has_held_three_nights() -> None:
    base = steady(30)
    low = [v * 0.9 for v in steady(5, seed=8)]
    assert open_changes(base + low[:2], P) == []  # two nights: not yet
    [ch] = open_changes(base + low[:3], P)
    assert ch.index == 30 and ch.nights == 3
    assert ch.worse_pct == pytest.approx(10, abs=1.5)


def test_direction_depends_on_the_metric() -> None:
    base = steady(30)
    up = [v * 1.1 for v in steady(4, seed=9)]
    assert open_changes(base + up, P) == []  # more requests/s: better
    [ch] = open_changes(base + up, P, higher_is_better=False)  # more latency: worse
    assert ch.worse_pct > 0


def test_two_bad_nights_then_back_to_normal_do_not_alert() -> None:
    base = steady(30)
    x = [*base, base[0] * 0.85, base[1] * 0.85, *steady(4, seed=10)]
    assert open_changes(x, P) == []
    # three bad nights did hold: that alerts, even once they are over
    y = [*base, base[0] * 0.85, base[1] * 0.85, base[2] * 0.85, *steady(4, seed=10)]
    [ch] = open_changes(y, P)
    assert (ch.index, ch.nights) == (30, 3)


def test_a_small_shift_on_a_quiet_machine_does_not_alert() -> None:
    base = steady(30, noise=0.003)
    x = base + [v * 0.985 for v in steady(6, seed=12, noise=0.003)]  # 1.5 %: below 3 %
    assert open_changes(x, P) == []
    [ch] = open_changes(x, HistoryParams(min_drop_pct=1.0))
    assert ch.index == 30


def test_is_known_tolerates_a_moving_change_point() -> None:
    assert is_known(31, [30])
    assert is_known(26, [30])
    assert not is_known(25, [30])
    assert not is_known(30, [])


def test_watch_alerts_once_per_drop() -> None:
    case = Case("drop", step_pct=-10.0, noise_pct=1.0)
    x = make_series(case, np.random.default_rng(11))
    alerts = watch(x, P, first_night=20)
    assert len(alerts) == 1
    assert abs(alerts[0].index - case.step_night) <= 1
    assert alerts[0].night - case.step_night + 1 == P.nights_held


# --- the proof: measured rates on seeded synthetic histories --------------------------------


def test_flat_histories_rarely_alert() -> None:
    n = 250
    r = evaluate(Case("flat, 3 % noise"), P, series=n)
    print(f"\nflat, 3 % noise: {r.false_alert_rate:.1%} of {n} series alerted in 40 nights")
    assert r.false_alert_rate <= 0.10


def test_a_six_percent_drop_is_caught_within_seven_nights() -> None:
    n = 400
    r = evaluate(Case("6 % drop, 3 % noise", step_pct=-6.0), P, series=n, detection_only=True)
    print(
        f"\n6 % drop, 3 % noise: caught in {r.detected_rate:.1%} of {n} series within 7 nights, "
        f"delay median {r.delay(50):.0f} / p90 {r.delay(90):.0f} nights"
    )
    assert r.detected_rate >= 0.90
    assert r.delay(50) <= 5


def test_bigger_drops_are_caught_sooner_and_small_ones_less() -> None:
    results = [evaluate(Case(f"{s} % drop", step_pct=-s), P, series=100) for s in (3.0, 10.0)]
    print("\n" + table(results))
    three, ten = results
    assert ten.detected_rate >= 0.97 and ten.delay(90) <= 4
    assert three.detected_rate < ten.detected_rate
