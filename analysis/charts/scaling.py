"""Worker scaling: requests/s and scaling efficiency against the worker count of a sweep."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter

from analysis.charts.figure import _figure, _legend, _style, _suptitle, _with_style, label
from analysis.summary import Summary


@_with_style
def worker_scaling(summary: Summary) -> Figure | None:
    """Left: median requests/s per worker count (95 % CI); right: efficiency against the
    smallest count (95 % CI), 1.0 dashed (linear scaling). One line per series and setting."""
    sweeps = [sc for sc in summary.scaling if sum(p.rps_median is not None for p in sc.points) > 1]
    if not sweeps:
        return None
    fig = _figure(10.0, 4.4)
    ax_rps, ax_eff = fig.subplots(1, 2)
    counts: set[int] = set()
    for i, sc in enumerate(sweeps):
        pts = [p for p in sc.points if p.rps_median is not None]
        x = np.array([p.workers for p in pts], dtype=float)
        med = np.array([p.rps_median or 0.0 for p in pts])
        lo = np.array([p.rps_ci[0] if p.rps_ci else m for p, m in zip(pts, med, strict=True)])
        hi = np.array([p.rps_ci[1] if p.rps_ci else m for p, m in zip(pts, med, strict=True)])
        st = _style(i)
        name = sc.series if len(summary.settings) < 2 else f"{sc.series} · {sc.setting.load}"
        ax_rps.errorbar(x, med, yerr=[med - lo, hi - med], marker="o", markersize=3, capsize=2,
                        linewidth=1.2, label=label(name, 28), **st)  # fmt: skip
        eff = [p for p in pts if p.efficiency is not None]
        ex = np.array([p.workers for p in eff], dtype=float)
        ev = np.array([p.efficiency or 0.0 for p in eff])
        elo = np.array(
            [p.efficiency_ci[0] if p.efficiency_ci else v for p, v in zip(eff, ev, strict=True)]
        )
        ehi = np.array(
            [p.efficiency_ci[1] if p.efficiency_ci else v for p, v in zip(eff, ev, strict=True)]
        )
        ax_eff.errorbar(ex, ev, yerr=[ev - elo, ehi - ev], marker="o", markersize=3, capsize=2,
                        linewidth=1.2, **st)  # fmt: skip
        counts |= {p.workers for p in pts}
    ticks = sorted(counts)
    for ax in (ax_rps, ax_eff):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("workers (one server CPU each)")
    ax_rps.set_ylim(bottom=0)
    ax_rps.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax_rps.set_ylabel("requests/s (median, 95 % CI)")
    ax_eff.axhline(1.0, color="#777777", linestyle="--", linewidth=1.0)
    ax_eff.set_ylim(bottom=0, top=max(1.2, ax_eff.get_ylim()[1]))
    ax_eff.set_ylabel("efficiency: rps(N) / (N/n0 × rps(n0))")
    _suptitle(fig, "Worker scaling")
    _legend(fig, ax_rps, len(sweeps))
    return fig
