"""Worker scaling: how a target's requests/s grows with its worker count (``[server] workers``).

A worker sweep measures one series per worker count (``flask``, ``flask@w2``, ``flask@w4``, see
:mod:`loadgen.records.series`), each on as many server CPUs as it has workers. For every series
measured at two counts or more, under one load setting, this gives per count: the median
requests/s of its good trials with its bootstrap interval, CPU seconds per 1,000 requests, and
the **scaling efficiency** against the smallest count n0 (1 in a sweep that starts at one
worker)::

    efficiency(N) = rps(N) / (N / n0 × rps(n0))

1.0 is perfect linear scaling. Its interval is a percentile bootstrap over both sides' trials
(the two medians resampled independently, seeded: the same report twice is the same bytes).
A count flagged ``shared`` ran on CPUs it shared with the client (``server.worker_cpus =
"shared"``, for a machine with fewer CPUs than the sweep needs): its figure is the machine's,
not the server's alone, and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loadgen.records.series import parse_series

if TYPE_CHECKING:
    from analysis.summary import Group, Setting

RESAMPLES = 2000
SEED = 20261203


@dataclass(frozen=True)
class ScalePoint:
    workers: int
    series: str  # the series measured at this count
    trials: int  # good trials
    saturated_trials: int
    rps_median: float | None
    rps_ci: tuple[float, float] | None
    cpu_s_per_1k: float | None
    efficiency: float | None  # against the sweep's smallest count
    efficiency_ci: tuple[float, float] | None
    shared: bool  # ran on CPUs shared with the client

    def to_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "series": self.series,
            "trials": self.trials,
            "saturated_trials": self.saturated_trials,
            "rps_median": self.rps_median,
            "rps_ci": list(self.rps_ci) if self.rps_ci else None,
            "cpu_s_per_1k": self.cpu_s_per_1k,
            "efficiency": self.efficiency,
            "efficiency_ci": list(self.efficiency_ci) if self.efficiency_ci else None,
            "shared_cpus": self.shared,
        }


@dataclass(frozen=True)
class Scaling:
    """One series (its name without the worker count) under one setting, across the sweep."""

    series: str
    setting: Setting
    points: tuple[ScalePoint, ...]  # by worker count

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "setting": self.setting.label(),
            "points": [p.to_dict() for p in self.points],
        }


def efficiency_ci(
    base: Sequence[float], base_workers: int, other: Sequence[float], workers: int
) -> tuple[float, float] | None:
    """Percentile bootstrap interval (95 %) of rps(N) / (N / n0 × rps(n0)) from the trials."""
    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    rng = np.random.default_rng(SEED)
    ma = np.median(a[rng.integers(0, a.size, size=(RESAMPLES, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, size=(RESAMPLES, b.size))], axis=1)
    ratio = mb / (workers / base_workers * ma)
    lo, hi = np.quantile(ratio, [0.025, 0.975])
    return float(lo), float(hi)


def scaling(
    groups: Iterable[Group],
    workers_of: Mapping[str, int],
    config: Mapping[str, Any],
) -> tuple[Scaling, ...]:
    """The sweeps among ``groups``: every series measured at two worker counts or more.

    ``workers_of``: series name → the worker count its trials recorded; ``config``: the run's
    config table (which counts shared the client's CPUs)."""
    server = config.get("server") or {}
    cpus = config.get("cpus") or {}
    own = len(cpus.get("server") or ()) or 1
    shared_mode = server.get("worker_cpus") == "shared"
    by_key: dict[tuple[str, Setting], list[Group]] = {}
    for g in groups:
        if g.target not in workers_of:
            continue
        key = (parse_series(g.target).without_workers, g.setting)
        by_key.setdefault(key, []).append(g)
    out = []
    for (series, setting), members in by_key.items():
        counts = {workers_of[g.target] for g in members}
        if len(counts) < 2:
            continue
        members.sort(key=lambda g: workers_of[g.target])
        base = members[0]
        n0 = workers_of[base.target]
        points = []
        for g in members:
            n = workers_of[g.target]
            eff = ci = None
            if g.rps_median is not None and base.rps_median:
                eff = g.rps_median / (n / n0 * base.rps_median)
                ci = efficiency_ci(base.rps, n0, g.rps, n)
            points.append(
                ScalePoint(
                    workers=n,
                    series=g.target,
                    trials=g.ok_trials,
                    saturated_trials=g.saturated_trials,
                    rps_median=g.rps_median,
                    rps_ci=g.rps_ci,
                    cpu_s_per_1k=g.cpu_s_per_1k,
                    efficiency=eff,
                    efficiency_ci=ci,
                    shared=shared_mode and n > own,
                )
            )
        out.append(Scaling(series, setting, tuple(points)))
    return tuple(out)


def workers_by_series(trials: Any) -> dict[str, int]:
    """Series → the worker count its trials recorded (a trials frame with ``workers``)."""
    if trials is None or not len(trials) or "workers" not in trials:
        return {}
    out: dict[str, int] = {}
    for target, workers in zip(trials["target"], trials["workers"], strict=True):
        if workers is not None and workers == workers:  # not NaN
            out.setdefault(str(target), int(workers))
    return out
