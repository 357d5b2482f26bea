"""Change-point detection: E-Divisive means with a Student's t-test, as Apache Otava does it.

Pure functions over a plain series of numbers; nothing here knows about runs or databases.

Theory of operation (Matteson & James 2014; Fleming et al., "Hunter", ICPE 2023):

- **E-Divisive means.** For a segment ``x[s:e]`` and every split ``s < τ < κ <= e``, the
  statistic ``Q(τ, κ)`` compares the mean distance between the two sides ``X = x[s:τ]`` and
  ``Y = x[τ:κ]`` with the mean distances within each side::

      Q = 2/(n+m) Σ|X_i - Y_j|
          - 2m/((n+m)(n-1)) Σ_{i<k}|X_i - X_k|
          - 2n/((n+m)(m-1)) Σ_{j<k}|Y_j - Y_k|

  (``n = τ - s``, ``m = κ - τ``). The ``τ`` of the largest ``Q`` is the candidate. Here every
  ``Q(τ, κ)`` of a segment comes from one 2-D prefix sum of the distance matrix: no loops.
- **Detector.** Within one window, the best candidate over all current segments is tested; if
  the t-test between its two sides gives ``p <= max_pvalue`` it becomes a change point and the
  search goes on, else the search stops (Otava's ``ChangePointDetector`` with ``stop_at = 0``).
- **Split.** Sliding windows of ``window`` points, stepping by ``window // 2`` (or to the last
  change point found), with a relaxed first-pass threshold (10 × ``max_pvalue``): the union of
  what they find are the *weak* change points.
- **Merge.** Each change point is re-tested between its neighbours; the weakest one whose
  p-value is too high (or, once all pass, whose relative change is at most ``min_magnitude``)
  is dropped and its neighbours re-tested, until all stand.

The t-test is Otava's exactly: Student's pooled two-sided test, fed (as Otava feeds
``scipy.stats.ttest_ind_from_stats``) with each side's *population* standard deviation
(``np.std``, ddof 0) where the formula expects the sample one. That makes it a little bolder
on short segments; it is kept because the measured rates (docs/regressions.md) are the ones
of the algorithm as Otava runs it: on seeded 3 %-noise histories it caught a 6 % drop within
7 nights in 93 % of series against 91 % with sample deviations, for about one point more of
false alerts on flat ones. :func:`student_t` offers both. The test is deterministic (no
permutations), so a report rendered twice says the same thing.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]

DEFAULT_WINDOW = 50
DEFAULT_MAX_PVALUE = 0.001


@dataclass(frozen=True)
class ChangePoint:
    """A change at ``index``: ``x[index]`` is the first point of the new level.

    ``before`` and ``after`` are the segments between this change point and its neighbours.
    """

    index: int
    pvalue: float
    mean_before: float
    mean_after: float
    std_before: float
    std_after: float
    n_before: int
    n_after: int

    @property
    def change_pct(self) -> float:
        """Relative change of the mean from before to after, in percent (signed)."""
        if self.mean_before == 0:
            return 0.0
        return (self.mean_after / self.mean_before - 1.0) * 100.0

    @property
    def magnitude(self) -> float:
        """Otava's magnitude: the larger of the forward and backward relative changes."""
        fwd = abs(self.mean_after / self.mean_before - 1.0) if self.mean_before else 0.0
        back = abs(self.mean_before / self.mean_after - 1.0) if self.mean_after else 0.0
        return max(fwd, back)


def as_series(values: Sequence[float] | FloatArray) -> FloatArray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError("a series is one-dimensional")
    if not np.all(np.isfinite(a)):
        raise ValueError("a series holds finite numbers only (drop missing nights first)")
    return a


# --- E-Divisive ------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _coefficients(
    n_pts: int,
) -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """The weights of ``Q``'s three sums for a segment of ``n_pts``, and where ``κ <= τ``."""
    tau = np.arange(1, n_pts)[:, None].astype(np.float64)
    kappa = np.arange(2, n_pts + 1)[None, :].astype(np.float64)
    n = tau
    m = kappa - tau
    total = n + m
    valid = m > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        c_cross = np.where(valid, 2.0 / total, 0.0)
        c_x = np.where(valid & (n > 1), 2.0 * m / (total * (n - 1.0)), 0.0)
        c_y = np.where(valid & (m > 1), 2.0 * n / (total * (m - 1.0)), 0.0)
    invalid = ~valid
    for a in (c_cross, c_x, c_y, invalid):
        a.setflags(write=False)
    return c_cross, c_x, c_y, invalid


def q_matrix(x: FloatArray) -> FloatArray:
    """``Q[τ-1, κ-2]`` for the whole of ``x`` (``1 <= τ < κ <= len(x)``); -inf where ``κ <= τ``."""
    n_pts = x.size
    if n_pts < 2:
        return np.full((0, 0), -np.inf)
    d = np.abs(x[:, None] - x[None, :])
    p = np.zeros((n_pts + 1, n_pts + 1))
    p[1:, 1:] = d.cumsum(axis=0).cumsum(axis=1)
    diag = np.diagonal(p)
    tk = p[1:n_pts, 2:]  # Σ D[0:τ, 0:κ]
    tt = diag[1:n_pts, None]  # Σ D[0:τ, 0:τ]
    kk = diag[None, 2:]  # Σ D[0:κ, 0:κ]
    cross = tk - tt  # Σ D[0:τ, τ:κ]
    within_x = tt / 2.0  # Σ_{i<k<τ} D
    within_y = (kk - 2.0 * tk + tt) / 2.0  # Σ_{τ<=j<k<κ} D (D is symmetric)
    c_cross, c_x, c_y, invalid = _coefficients(n_pts)
    q = c_cross * cross - c_x * within_x - c_y * within_y
    q[invalid] = -np.inf
    return q


def best_split(x: FloatArray) -> tuple[int, float] | None:
    """The candidate ``τ`` (first index of the right side) of ``x`` and its ``Q``; None if < 2."""
    if x.size < 2:
        return None
    q = q_matrix(x)
    flat = int(np.argmax(q))  # the first maximum: the smallest τ wins a tie, as in Otava
    return flat // q.shape[1] + 1, float(q.flat[flat])


# --- the t-test ------------------------------------------------------------------------------


def _pvalue(
    n1: int, m1: float, ss1: float, n2: int, m2: float, ss2: float, otava: bool = True
) -> float:
    """Pooled Student's t-test from each side's count, mean and sum of squared deviations.

    ``otava``: as Otava computes it, with population variances (``ss / n``) standing in for
    the sample ones (``ss / (n - 1)``) in the pooled variance.
    """
    df = n1 + n2 - 2
    if df <= 0:
        return 1.0
    if otava:
        ss1, ss2 = ss1 * (n1 - 1) / n1, ss2 * (n2 - 1) / n2
    se = math.sqrt(max(ss1 + ss2, 0.0) / df * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return 1.0 if m1 == m2 else 0.0
    t = abs(m1 - m2) / se
    return float(min(1.0, 2.0 * special.stdtr(df, -t)))


def student_t(
    left: Sequence[float] | FloatArray,
    right: Sequence[float] | FloatArray,
    *,
    otava: bool = True,
) -> float:
    """Two-sided pooled Student's t-test p-value; 1.0 without a degree of freedom.

    ``otava=True``: Otava's variant (population variances, see the module's docstring);
    ``False``: the textbook test (``scipy.stats.ttest_ind(equal_var=True)``).
    """
    a, b = as_series(left), as_series(right)
    if a.size == 0 or b.size == 0:
        raise ValueError("both sides need at least one point")
    ma, mb = float(a.mean()), float(b.mean())
    ssa, ssb = float(((a - ma) ** 2).sum()), float(((b - mb) ** 2).sum())
    return _pvalue(a.size, ma, ssa, b.size, mb, ssb, otava)


class _Moments:
    """Count, mean and sum of squared deviations of any segment in O(1), from prefix sums."""

    def __init__(self, x: FloatArray) -> None:
        self.shift = float(x.mean()) if x.size else 0.0
        c = x - self.shift  # centred: the sums of squares keep their precision
        self.s1: list[float] = [0.0, *np.cumsum(c).tolist()]
        self.s2: list[float] = [0.0, *np.cumsum(c * c).tolist()]

    def segment(self, lo: int, hi: int) -> tuple[int, float, float]:
        n = hi - lo
        s1 = self.s1[hi] - self.s1[lo]
        mean = s1 / n
        ss = (self.s2[hi] - self.s2[lo]) - s1 * mean
        return n, mean + self.shift, max(ss, 0.0)

    def pvalue(self, lo: int, mid: int, hi: int) -> float:
        n1, m1, ss1 = self.segment(lo, mid)
        n2, m2, ss2 = self.segment(mid, hi)
        return _pvalue(n1, m1, ss1, n2, m2, ss2)

    def change_point(self, lo: int, mid: int, hi: int) -> ChangePoint:
        n1, m1, ss1 = self.segment(lo, mid)
        n2, m2, ss2 = self.segment(mid, hi)
        return ChangePoint(
            index=mid,
            pvalue=_pvalue(n1, m1, ss1, n2, m2, ss2),
            mean_before=m1,
            mean_after=m2,
            std_before=math.sqrt(ss1 / (n1 - 1)) if n1 > 1 else 0.0,
            std_after=math.sqrt(ss2 / (n2 - 1)) if n2 > 1 else 0.0,
            n_before=n1,
            n_after=n2,
        )


def _around(bounds: list[int], index: int) -> tuple[int, int]:
    """The segment ``index`` splits, or the two it joins when it is a bound already."""
    k = bisect.bisect_left(bounds, index)
    if bounds[k] == index:
        return bounds[k - 1], bounds[k + 1]
    return bounds[k - 1], bounds[k]


def detect(
    x: FloatArray,
    max_pvalue: float,
    *,
    lo: int = 0,
    hi: int | None = None,
    moments: _Moments | None = None,
) -> list[int]:
    """E-Divisive within the window ``x[lo:hi]``: its change points (indexes into ``x``)."""
    hi = x.size if hi is None else hi
    mom = moments or _Moments(x)
    found: list[int] = []
    cands: dict[tuple[int, int], tuple[int, float] | None] = {}
    while True:
        bounds = [lo, *found, hi]
        best: tuple[int, float] | None = None
        for a, b in itertools.pairwise(bounds):
            if (a, b) not in cands:  # a segment's candidate does not change: compute it once
                cands[a, b] = best_split(x[a:b]) if b - a >= 2 else None
            cand = cands[a, b]
            if cand is not None and (best is None or cand[1] > best[1]):
                best = (a + cand[0], cand[1])
        if best is None:
            return found
        a, b = _around(bounds, best[0])
        if mom.pvalue(a, best[0], b) > max_pvalue:
            return found
        bisect.insort(found, best[0])


def split(x: FloatArray, window: int, max_pvalue: float) -> list[int]:
    """Weak change points: E-Divisive over sliding windows, as Otava's ``split``."""
    if window < 2:
        raise ValueError("window must be at least 2")
    step = window // 2
    start = 0
    mom = _Moments(x)
    found: set[int] = set()
    while start < x.size:
        end = min(start + window, x.size)
        new = detect(x, max_pvalue, lo=start, hi=end, moments=mom)
        last = new[-1] if new else 0
        start = max(last, start + step)
        found.update(new)
    return sorted(found)


def merge(
    indexes: list[int], x: FloatArray, max_pvalue: float, min_magnitude: float
) -> list[ChangePoint]:
    """Drop the weakest change point until every one passes, as Otava's ``merge``."""
    mom = _Moments(x)
    bounds = [0, *indexes, x.size]
    cps = [mom.change_point(bounds[k], i, bounds[k + 2]) for k, i in enumerate(indexes)]
    while cps:
        weakest = max(cps, key=lambda c: c.pvalue)
        if weakest.pvalue < max_pvalue:
            weakest = min(cps, key=lambda c: c.magnitude)
            if weakest.magnitude > min_magnitude:
                return cps
        k = cps.index(weakest)
        del cps[k]
        bounds = [0, *(c.index for c in cps), x.size]
        for j in (k - 1, k):  # the neighbours' sides changed
            if 0 <= j < len(cps):
                cps[j] = mom.change_point(bounds[j], cps[j].index, bounds[j + 2])
    return cps


def change_points(
    values: Sequence[float] | FloatArray,
    *,
    window: int = DEFAULT_WINDOW,
    max_pvalue: float = DEFAULT_MAX_PVALUE,
    min_magnitude: float = 0.0,
) -> list[ChangePoint]:
    """Change points of a series (Otava's ``compute_change_points``), sorted by index.

    ``min_magnitude`` is a fraction (0.03 for 3 %): change points whose relative change is at
    most this are merged away even when significant.
    """
    x = as_series(values)
    if x.size < 3:
        return []
    if max_pvalue < 0.05:
        first_pass = max_pvalue * 10
    elif max_pvalue < 0.5:
        first_pass = max_pvalue * 2
    else:
        first_pass = max_pvalue
    weak = split(x, window, first_pass)
    return merge(weak, x, max_pvalue, min_magnitude)
