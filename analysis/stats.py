"""Pure statistics over per-trial figures: bootstrap intervals, spread, Welch's test.

Nothing here knows about records or frames; every function takes plain numbers, so the tests
can check each one against a distribution whose answer is known.

Why a bootstrap of the median: trials on a shared machine have outliers (a neighbour wakes up,
a GC pause lands in the window); the median shrugs them off and the percentile bootstrap needs
no assumption about their shape. With few trials the interval is wide, which is the point: with
3 trials the 95 % interval of the median is the range of the trials, and the report says so.
The resampling RNG is seeded, so a report rendered twice says the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import stdtr  # scipy.stats costs seconds to import; this is the t CDF

DEFAULT_SEED = 20_240_601
DEFAULT_RESAMPLES = 10_000
CONFIDENCE = 0.95

Values = Sequence[float] | npt.NDArray[np.float64]


def _array(values: Values) -> npt.NDArray[np.float64]:
    a = np.asarray(values, dtype=np.float64)
    return a[np.isfinite(a)]


def median(values: Values) -> float | None:
    a = _array(values)
    return float(np.median(a)) if a.size else None


def bootstrap_ci(
    values: Values,
    *,
    statistic: str = "median",
    confidence: float = CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the median (or ``"mean"``); ``None`` under 2 values."""
    a = _array(values)
    if a.size < 2:
        return None
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} is not in (0, 1)")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    samples = a[idx]
    if statistic == "median":
        stat = np.median(samples, axis=1)
    elif statistic == "mean":
        stat = samples.mean(axis=1)
    else:
        raise ValueError(f"statistic {statistic!r}: use 'median' or 'mean'")
    alpha = 1.0 - confidence
    lo, hi = np.quantile(stat, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def coefficient_of_variation(values: Values) -> float | None:
    """Sample standard deviation over the mean (0.05 = 5 %); ``None`` under 2 values."""
    a = _array(values)
    if a.size < 2:
        return None
    mean = float(a.mean())
    if mean == 0:
        return None
    return float(a.std(ddof=1)) / abs(mean)


def intervals_overlap(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    """True when the two intervals share a point; an unknown interval overlaps everything."""
    if a is None or b is None:
        return True
    return a[0] <= b[1] and b[0] <= a[1]


@dataclass(frozen=True)
class Welch:
    """Welch's unequal-variance t-test of ``b`` against ``a``."""

    t: float
    df: float
    p: float
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float


def welch(a: Values, b: Values) -> Welch | None:
    """Two-sided Welch's t-test; ``None`` when either side has fewer than 2 values.

    Both sides without any spread: a difference is certain (p = 0), no difference is p = 1.
    """
    x, y = _array(a), _array(b)
    if x.size < 2 or y.size < 2:
        return None
    mx, my = float(x.mean()), float(y.mean())
    vx, vy = float(x.var(ddof=1)), float(y.var(ddof=1))
    sx, sy = vx / x.size, vy / y.size
    se2 = sx + sy
    if se2 == 0:
        p = 1.0 if mx == my else 0.0
        t = 0.0 if mx == my else math.copysign(math.inf, my - mx)
        return Welch(t, float(x.size + y.size - 2), p, x.size, y.size, mx, my)
    t = (my - mx) / math.sqrt(se2)
    df = se2**2 / ((sx**2 / (x.size - 1) if sx else 0.0) + (sy**2 / (y.size - 1) if sy else 0.0))
    p = float(2.0 * stdtr(df, -abs(t)))
    return Welch(t, df, p, x.size, y.size, mx, my)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values (``None`` stays ``None``), same order as given."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out
