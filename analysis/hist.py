"""Latency histograms: decode, merge and read the HDR histograms stored in trial records.

Records carry ``HdrHistogram(1, 60_000_000, 3).encode()`` of latencies in microseconds. The
``hdrhistogram`` package reads a percentile by walking its counts array in Python, once per
question; a report asks hundreds of questions (five percentiles and a spectrum of ~100 points
per target), so here the counts go into a numpy array once and every percentile is a binary
search over the cumulative counts. The answers are the package's own: the same target count
(``int(p * total / 100 + 0.5)``, at least 1) and the same "highest equivalent value" of the bucket
it falls in (``tests/test_analysis_hist.py`` checks that against
``HdrHistogram.get_value_at_percentile``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3

# The percentiles a report shows, in percent, with the keys used in frames and JSON.
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p999", 99.9),
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def new_histogram() -> HdrHistogram:
    """An empty histogram with the layout every record uses."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@dataclass(frozen=True)
class _Layout:
    lowest: IntArray  # lowest value (µs) of the bucket at each counts index
    highest: IntArray  # highest equivalent value (µs) of that bucket


@lru_cache(maxsize=1)
def _layout() -> _Layout:
    h = new_histogram()
    lowest = np.array([h.get_value_from_index(i) for i in range(h.counts_len)], dtype=np.int64)
    highest = np.array([h.get_highest_equivalent_value(int(v)) for v in lowest], dtype=np.int64)
    return _Layout(lowest, highest)


def _same_layout(h: HdrHistogram) -> bool:
    return bool(
        h.lowest_trackable_value == LOWEST_US
        and h.highest_trackable_value == HIGHEST_US
        and h.significant_figures == SIGNIFICANT_DIGITS
    )


def decode_counts(encoded: str) -> IntArray:
    """The counts array of one encoded histogram, in the standard layout."""
    h = HdrHistogram.decode(encoded)
    if not _same_layout(h):  # another layout: let the package re-bucket it
        std = new_histogram()
        std.add(h)
        h = std
    return np.ctypeslib.as_array(h.counts).astype(np.int64)


class LatencyHistogram:
    """Merged latency counts in the standard layout, read in milliseconds."""

    def __init__(self, counts: IntArray) -> None:
        self.counts = counts
        self._cumulative = np.cumsum(counts)
        self.total = int(self._cumulative[-1]) if len(counts) else 0

    @classmethod
    def merge(cls, encoded: Iterable[str]) -> LatencyHistogram | None:
        """All the histograms added together; ``None`` when there is none (or all are empty)."""
        total: IntArray | None = None
        for enc in encoded:
            if not enc:
                continue
            counts = decode_counts(enc)
            total = counts if total is None else total + counts
        if total is None or not total.any():
            return None
        return cls(total)

    @classmethod
    def from_values_us(cls, values: Sequence[float] | FloatArray) -> LatencyHistogram:
        return cls(counts_of(values))

    def value_us(self, percentile: float) -> int:
        """The value at ``percentile`` (0..100) the way ``HdrHistogram`` answers it."""
        return int(self.values_us([percentile])[0])

    def values_us(self, percentiles: Sequence[float] | FloatArray) -> IntArray:
        if self.total == 0:
            return np.zeros(len(percentiles), dtype=np.int64)
        lay = _layout()
        p = np.minimum(np.asarray(percentiles, dtype=np.float64), 100.0)
        target = np.maximum((p * self.total / 100.0 + 0.5).astype(np.int64), 1)
        idx = np.searchsorted(self._cumulative, target, side="left")
        idx = np.minimum(idx, len(self.counts) - 1)
        return np.where(p > 0, lay.highest[idx], lay.lowest[idx])

    def percentiles_ms(self) -> dict[str, float]:
        """p50, p90, p99, p99.9 and max, in milliseconds."""
        values = self.values_us([p for _, p in PERCENTILES])
        out = {key: float(v) / 1000.0 for (key, _), v in zip(PERCENTILES, values, strict=True)}
        out["max"] = self.max_us() / 1000.0
        return out

    def max_us(self) -> int:
        if self.total == 0:
            return 0
        last = int(np.flatnonzero(self.counts)[-1])
        return int(_layout().highest[last])

    def mean_us(self) -> float:
        """Mean over bucket midpoints (as the package computes it)."""
        if self.total == 0:
            return 0.0
        lay = _layout()
        mid = lay.lowest + (lay.highest - lay.lowest + 1) // 2
        return float((self.counts * mid).sum()) / self.total

    def spectrum_ms(self, points: int = 120) -> tuple[FloatArray, FloatArray]:
        """The percentile spectrum (HdrHistogram style) as (percentile, latency ms) arrays.

        Percentiles are spaced evenly in ``log10(1 / (1 - p))`` from 0 up to the last one the
        count can resolve (``1 - 1 / total``), then the maximum at 100.
        """
        if self.total == 0:
            return np.zeros(0), np.zeros(0)
        top = np.log10(max(self.total, 2))
        nines = np.linspace(0.0, top, points)
        pct = 100.0 * (1.0 - 10.0 ** (-nines))
        values = self.values_us(pct).astype(np.float64) / 1000.0
        pct = np.append(pct, 100.0)
        values = np.append(values, self.max_us() / 1000.0)
        return pct, values


def counts_of(values_us: Sequence[float] | FloatArray) -> IntArray:
    """Counts in the standard layout of latencies given in µs (clamped to 1 µs .. 60 s)."""
    lay = _layout()
    v = np.clip(np.asarray(values_us, dtype=np.float64), LOWEST_US, HIGHEST_US).astype(np.int64)
    idx = np.searchsorted(lay.lowest, v, side="right") - 1
    return np.bincount(idx, minlength=len(lay.lowest)).astype(np.int64)


def histogram_of(values_us: Sequence[float] | FloatArray) -> HdrHistogram:
    """A real ``HdrHistogram`` holding ``values_us`` (recorded one bucket at a time: fast)."""
    counts = counts_of(values_us)
    h = new_histogram()
    lowest = _layout().lowest
    for i in np.flatnonzero(counts):
        h.record_value(int(lowest[i]), int(counts[i]))
    return h


def encode(h: HdrHistogram) -> str:
    """The record form of a histogram: base64 text."""
    raw = h.encode()
    return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)
