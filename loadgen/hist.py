"""Latency histograms: HDR (1 µs to 60 s, 3 significant digits), mergeable across processes.

Recording straight into ``hdrhistogram`` costs about 2.3 µs of Python per value, a sixth of
the whole budget of a request in a client that must keep up with wrk. So the hot path only
appends raw nanosecond integers to an ``array('q')`` (a C-level append, tens of ns), and the
values go into the HDR histogram in bulk once the window is over: numpy folds them to
microseconds and counts the distinct values, and each distinct value is recorded once with its
count (about 0.1 µs a value all told, off the clock).

Histograms travel between processes as the standard compressed base64 HDR encoding
(:meth:`Histogram.encode`), which is also what result records keep, so any HdrHistogram
implementation can read them back.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram

from loadgen.records.trial import Latency

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_FIGURES = 3

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


class Histogram:
    """An HDR latency histogram counting microseconds."""

    def __init__(self) -> None:
        self._hdr: Any = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)

    @classmethod
    def decode(cls, encoded: str) -> Histogram:
        hist = cls()
        hist.add_encoded(encoded)
        return hist

    @classmethod
    def merged(cls, encoded: Iterable[str]) -> Histogram:
        """One histogram holding every value of the encoded histograms."""
        hist = cls()
        for text in encoded:
            hist.add_encoded(text)
        return hist

    @property
    def count(self) -> int:
        return int(self._hdr.get_total_count())

    def record_us(self, value_us: int, count: int = 1) -> None:
        """Record one value (clamped to the histogram's range)."""
        self._hdr.record_value(min(max(int(value_us), 0), HIGHEST_US), count)

    def record_ns_bulk(self, samples_ns: array[int] | Sequence[int]) -> None:
        """Record many nanosecond latencies at once (rounded to the nearest microsecond)."""
        if not len(samples_ns):
            return
        # Imported here, after the window: numpy's import (and its BLAS threads) stays off the
        # client's hot path and out of worker processes until their measurement is over.
        import numpy as np

        if isinstance(samples_ns, array):
            values = np.frombuffer(samples_ns, dtype=np.int64)
        else:
            values = np.asarray(samples_ns, dtype=np.int64)
        micros = np.clip((values + 500) // 1000, 0, HIGHEST_US)
        distinct, counts = np.unique(micros, return_counts=True)
        record = self._hdr.record_value
        for value, count in zip(distinct.tolist(), counts.tolist(), strict=True):
            record(value, count)

    def add(self, other: Histogram) -> None:
        self._hdr.add(other._hdr)

    def add_encoded(self, encoded: str) -> None:
        """Add the values of a histogram encoded by :meth:`encode` (from any process)."""
        self._hdr.decode_and_add(encoded)

    def encode(self) -> str:
        """The compressed base64 HDR encoding (``HISTFAAA...``)."""
        data = self._hdr.encode()
        return data.decode("ascii") if isinstance(data, bytes) else str(data)

    def value_at_percentile_us(self, percentile: float) -> int:
        return int(self._hdr.get_value_at_percentile(percentile))

    def summary(self) -> Latency:
        """Percentiles in milliseconds (all zero for an empty histogram)."""
        hdr = self._hdr
        total = int(hdr.get_total_count())
        if not total:
            return Latency(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        at = hdr.get_percentile_to_value_dict(list(PERCENTILES))
        p50, p90, p99, p999 = (int(at[p]) / 1000.0 for p in PERCENTILES)
        return Latency(
            count=total,
            mean=round(float(hdr.get_mean_value()) / 1000.0, 6),
            p50=p50,
            p90=p90,
            p99=p99,
            p999=p999,
            max=int(hdr.get_max_value()) / 1000.0,
        )


def summarize_encoded(encoded: Iterable[str]) -> Latency:
    """The summary of the merge of encoded histograms."""
    return Histogram.merged(encoded).summary()
