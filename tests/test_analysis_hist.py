"""analysis.hist: percentiles of histograms whose answers are known, and the package's own."""

from __future__ import annotations

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from analysis import hist
from analysis.hist import LatencyHistogram


def _recorded(values: list[int]) -> HdrHistogram:
    h = hist.new_histogram()
    for v in values:
        h.record_value(v)
    return h


def test_uniform_one_to_ten_thousand_microseconds() -> None:
    h = _recorded(list(range(1, 10_001)))
    lh = LatencyHistogram.merge([hist.encode(h)])
    assert lh is not None
    assert lh.total == 10_000
    p = lh.percentiles_ms()
    # 3 significant digits: each answer within 0.1 % of the exact one, never below it.
    for key, exact_ms in (("p50", 5.0), ("p90", 9.0), ("p99", 9.9), ("p999", 9.99)):
        assert exact_ms <= p[key] <= exact_ms * 1.001, (key, p[key])
    assert 10.0 <= p["max"] <= 10.0 * 1.001


def test_a_constant_latency_is_every_percentile() -> None:
    h = hist.new_histogram()
    h.record_value(2500, 1000)  # 2.5 ms, 1000 times
    lh = LatencyHistogram.merge([hist.encode(h)])
    assert lh is not None
    p = lh.percentiles_ms()
    assert {round(v, 2) for v in p.values()} == {2.5}


def test_two_modes_known_split() -> None:
    # 99 % at 1 ms, 1 % at 100 ms: p50 and p90 at 1 ms, p99.9 and max at 100 ms.
    h = hist.new_histogram()
    h.record_value(1000, 9900)
    h.record_value(100_000, 100)
    lh = LatencyHistogram.merge([hist.encode(h)])
    assert lh is not None
    p = lh.percentiles_ms()
    assert p["p50"] == pytest.approx(1.0, rel=1e-3)
    assert p["p90"] == pytest.approx(1.0, rel=1e-3)
    assert p["p99"] == pytest.approx(1.0, rel=1e-3)  # the 9,900th value of 10,000
    assert p["p999"] == pytest.approx(100.0, rel=1e-3)
    assert p["max"] == pytest.approx(100.0, rel=1e-3)


def test_answers_match_the_hdrhistogram_package() -> None:
    rng = np.random.default_rng(11)
    encoded = []
    ref = hist.new_histogram()
    for _ in range(4):
        values = rng.lognormal(np.log(4000), 0.6, 5000)
        h = hist.histogram_of(values)
        encoded.append(hist.encode(h))
        ref.decode_and_add(encoded[-1])
    lh = LatencyHistogram.merge(encoded)
    assert lh is not None
    assert lh.total == ref.get_total_count() == 20_000
    for pct in (0.0, 1.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0):
        assert lh.value_us(pct) == ref.get_value_at_percentile(pct), pct
    assert lh.max_us() == ref.get_max_value()
    assert lh.mean_us() == pytest.approx(ref.get_mean_value())


def test_histogram_of_records_the_same_counts_as_one_by_one() -> None:
    rng = np.random.default_rng(12)
    values = rng.integers(1, 2_000_000, 3000)
    fast = hist.histogram_of(values.astype(float))
    slow = _recorded([int(v) for v in values])
    a = LatencyHistogram.merge([hist.encode(fast)])
    b = LatencyHistogram.merge([hist.encode(slow)])
    assert a is not None and b is not None
    assert np.array_equal(a.counts, b.counts)


def test_empty_and_missing_histograms() -> None:
    assert LatencyHistogram.merge([]) is None
    assert LatencyHistogram.merge(["", ""]) is None
    assert LatencyHistogram.merge([hist.encode(hist.new_histogram())]) is None
    empty = LatencyHistogram(np.zeros(10, dtype=np.int64))
    assert empty.max_us() == 0 and empty.mean_us() == 0.0
    pct, ms = empty.spectrum_ms()
    assert len(pct) == len(ms) == 0


def test_another_layout_is_rebucketed() -> None:
    other = HdrHistogram(1, 3_600_000_000, 2)
    other.record_value(1500, 10)
    lh = LatencyHistogram.merge([hist.encode(other)])
    assert lh is not None
    assert lh.total == 10
    assert lh.value_us(50) == pytest.approx(1500, rel=0.01)


def test_spectrum_is_monotonic_and_ends_at_max() -> None:
    rng = np.random.default_rng(13)
    lh = LatencyHistogram.from_values_us(rng.lognormal(np.log(3000), 0.5, 50_000))
    pct, ms = lh.spectrum_ms()
    assert pct[0] == 0.0 and pct[-1] == 100.0
    assert np.all(np.diff(pct) >= 0) and np.all(np.diff(ms) >= 0)
    assert ms[-1] == lh.max_us() / 1000.0
    assert pct[-2] <= 100.0 * (1 - 1 / 50_000) + 1e-9
