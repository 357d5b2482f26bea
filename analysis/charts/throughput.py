"""Requests/s charts: the ranked bars of one load setting, and the connection sweep."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analysis import fmt
from analysis.charts.figure import (
    BAR_COLOR,
    BAR_IN,
    FONT,
    _figure,
    _footnote,
    _legend,
    _log_ms_axis,
    _style,
    _suptitle,
    _with_style,
    label,
)
from analysis.summary import Group, Ranking, Summary

_Floats = npt.NDArray[np.float64]


def _rps_whiskers(groups: Sequence[Group]) -> tuple[_Floats, _Floats, _Floats]:
    """Median requests/s of each group and its 95 % CI (the median itself where none)."""
    med = np.array([g.rps_median or 0.0 for g in groups])
    lo = np.array([g.rps_ci[0] if g.rps_ci else m for g, m in zip(groups, med, strict=True)])
    hi = np.array([g.rps_ci[1] if g.rps_ci else m for g, m in zip(groups, med, strict=True)])
    return med, lo, hi


@_with_style
def rps_bars(r: Ranking) -> Figure | None:
    """Ranked targets as horizontal bars, fastest on top, with 95 % CI whiskers."""
    if not r.ranked:
        return None
    rows = list(r.ranked)
    n = len(rows)
    fig = _figure(9.0, 1.5 + BAR_IN * max(n, 4) + (0.3 if r.others else 0.0))
    ax = fig.add_subplot()
    y = np.arange(n)
    med, lo, hi = _rps_whiskers([row.group for row in rows])
    ax.barh(y, med, color=BAR_COLOR, height=0.65, zorder=2)
    ax.errorbar(
        med,
        y,
        xerr=[med - lo, hi - med],
        fmt="none",
        ecolor="#222222",
        capsize=3,
        linewidth=1,
        zorder=3,
    )
    for yi, h, m, row in zip(y, hi, med, rows, strict=True):
        note = f"{fmt.rps(float(m))}  ({fmt.ratio(row.vs_fastest)})"
        ax.text(
            float(h + med.max() * 0.01), float(yi), note, va="center", ha="left", fontsize=FONT - 2
        )
    ax.set_yticks(y, [f"{row.rank}. {label(row.group.target)}" for row in rows])
    ax.set_ylim(max(n, 4) - 0.5, -0.6)  # fastest on top; a lone bar stays a bar
    ax.set_xlim(0, max(hi.max(), 1.0) * 1.22)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel("requests/s (median of trials; whiskers: 95 % CI)")
    ax.grid(axis="y", visible=False)
    ax.set_title(label(f"Requests/s · {r.setting.label()}", 110), loc="left")
    _footnote(fig, r.others)
    return fig


@_with_style
def sweep(summary: Summary, load: str) -> Figure | None:
    """Requests/s and p99 against connection count for one load setting's sweep."""
    settings = [s for s in summary.settings if s.load == load]
    if len({s.connections for s in settings}) < 2:
        return None
    best: dict[str, float] = {}
    for g in summary.groups:
        if g.setting in settings and g.ranked and g.rps_median is not None:
            best[g.target] = max(best.get(g.target, 0.0), g.rps_median)
    if not best:
        return None
    targets = sorted(best, key=lambda t: (-best[t], t))
    left_out = [
        g
        for g in summary.groups
        if g.setting in settings
        and not g.ranked
        and g.state not in ("not_measured", "not_applicable")
    ]
    fig = _figure(11.0 if len(targets) > 18 else 10.0, 4.4)
    ax_rps, ax_p99 = fig.subplots(1, 2)
    all_p99: list[float] = []
    conns_all = sorted({s.connections for s in settings})
    for i, target in enumerate(targets):
        pts = []
        for s in sorted(settings, key=lambda s: s.connections):
            found = summary.group(target, s)
            if found is not None and found.ranked and found.rps_median is not None:
                pts.append(found)
        if not pts:
            continue
        x = [g.setting.connections for g in pts]
        med, lo, hi = _rps_whiskers(pts)
        st = _style(i)
        ax_rps.errorbar(
            x,
            med,
            yerr=[med - lo, hi - med],
            marker="o",
            markersize=3,
            capsize=2,
            linewidth=1.2,
            label=label(target, 28),
            **st,
        )
        p99 = [(g.latency_ms or {}).get("p99") for g in pts]
        xs = [c for c, v in zip(x, p99, strict=True) if v]
        ys = [float(v) for v in p99 if v]
        if ys:
            ax_p99.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, **st)
            all_p99 += ys
    for ax in (ax_rps, ax_p99):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(conns_all))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("connections")
    ax_rps.set_ylim(bottom=0)
    ax_rps.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax_rps.set_ylabel("requests/s (median, 95 % CI)")
    if all_p99:
        _log_ms_axis(ax_p99, all_p99)
    ax_p99.set_ylabel("p99 latency, ms (log)")
    _suptitle(fig, label(f"Connection sweep · {load}", 110))
    _legend(fig, ax_rps, len(targets))
    _footnote(fig, _unique(left_out), "Points not drawn")
    return fig


def _unique(groups: Sequence[Group]) -> list[Group]:
    seen: dict[str, Group] = {}
    for g in groups:
        seen.setdefault(g.target, g)
    return list(seen.values())
