"""Latency histograms: known percentiles, bulk recording, merging across processes."""

from __future__ import annotations

import random
from array import array

import pytest

from loadgen.hist import HIGHEST_US, Histogram, summarize_encoded
from loadgen.records import Latency


def test_percentiles_of_known_values() -> None:
    hist = Histogram()
    for us in range(1, 1001):  # 1 µs .. 1 ms, one each
        hist.record_us(us)
    s = hist.summary()
    assert s.count == 1000
    # 3 significant digits: each value is within 0.1 % of the exact one.
    assert s.p50 == pytest.approx(0.500, rel=1e-3)
    assert s.p90 == pytest.approx(0.900, rel=1e-3)
    assert s.p99 == pytest.approx(0.990, rel=1e-3)
    assert s.p999 == pytest.approx(0.999, rel=1e-3)
    assert s.max == pytest.approx(1.000, rel=1e-3)
    assert s.mean == pytest.approx(0.5005, rel=1e-3)
    assert s.percentiles().keys() == {"p50", "p90", "p99", "p999", "max"}


def test_bulk_nanoseconds_equal_one_by_one() -> None:
    rng = random.Random(7)
    values_ns = [rng.randint(20_000, 50_000_000) for _ in range(5000)]
    bulk = Histogram()
    bulk.record_ns_bulk(array("q", values_ns))
    single = Histogram()
    for ns in values_ns:
        single.record_us((ns + 500) // 1000)
    assert bulk.summary() == single.summary()
    assert bulk.encode() == single.encode()


def test_merge_of_encoded_histograms_equals_the_union() -> None:
    rng = random.Random(11)
    a_ns = [int(rng.lognormvariate(13, 1)) for _ in range(3000)]
    b_ns = [int(rng.lognormvariate(14, 0.5)) for _ in range(2000)]
    a, b, union = Histogram(), Histogram(), Histogram()
    a.record_ns_bulk(a_ns)
    b.record_ns_bulk(b_ns)
    union.record_ns_bulk(a_ns + b_ns)
    merged = Histogram.merged([a.encode(), b.encode()])
    assert merged.count == 5000
    assert merged.summary() == union.summary()
    assert summarize_encoded([b.encode(), a.encode()]) == union.summary()
    for p in (1.0, 25.0, 50.0, 75.0, 99.0, 99.99):
        assert merged.value_at_percentile_us(p) == union.value_at_percentile_us(p)


def test_empty_and_out_of_range() -> None:
    empty = Histogram()
    assert empty.summary() == Latency(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert Histogram.decode(empty.encode()).count == 0
    hist = Histogram()
    hist.record_ns_bulk([0, 90_000_000_000])  # 0 and 90 s: clamped into 0 .. 60 s
    assert hist.count == 2
    assert hist.summary().max == pytest.approx(HIGHEST_US / 1000, rel=1e-3)
    assert hist.summary().count == 2
