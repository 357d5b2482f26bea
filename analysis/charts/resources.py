"""Target CPU and RSS over one trial per target, as sparklines (from the sampler's samples)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.charts.figure import BAR_COLOR, FONT, _figure, _note, _suptitle, _with_style, label
from analysis.summary import Group, Setting, Summary


def _median_trial(summary: Summary, g: Group) -> str | None:
    rows = summary.ok_trials(g).sort_values(["rps", "trial_id"])
    if not len(rows):
        return None
    return str(rows.iloc[(len(rows) - 1) // 2]["trial_id"])


def _finite_max(values: Any) -> float:
    """The largest finite value, 0.0 when there is none (no all-NaN warning)."""
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 0.0


@_with_style
def resources(summary: Summary, setting: Setting) -> Figure | None:
    """Target CPU and RSS over one trial per target, as sparklines: one row per target.

    The trial is the one with the median requests/s. CPU is drawn on a fixed 0..100 % band
    (of one core; a multi-process server can exceed it and is clipped, with its peak written
    beside it); RSS on one scale shared by every row, so rows compare.
    """
    smp = summary.samples
    rows: list[tuple[Group, Any]] = []
    groups = [g for g in summary.groups if g.setting == setting and g.ok_trials]
    groups.sort(key=lambda g: (not g.ranked, -(g.rps_median or 0.0), g.target))
    for g in groups:
        trial = _median_trial(summary, g)
        if trial is None:
            continue
        d = smp[(smp["trial_id"] == trial) & (smp["role"] == "target")]
        if len(d):
            rows.append((g, d))
    if not rows:
        return None
    n = len(rows)
    fig = _figure(11.0, 1.4 + 0.3 * n)
    ax_cpu, ax_rss = fig.subplots(1, 2, sharey=True)
    t_max = max(float(d["elapsed_s"].max()) for _, d in rows) or 1.0
    rss_top = max(_finite_max(d["rss"].to_numpy(dtype=float)) for _, d in rows) or 1.0
    cpu_peak = max(_finite_max(d["cpu_pct"].to_numpy(dtype=float)) for _, d in rows)
    cpu_top = 100.0 * max(1, math.ceil(cpu_peak / 100.0 - 0.05))  # several workers: > 100 %
    for i, (_g, d) in enumerate(rows):
        base = n - 1 - i + 0.12
        x = d["elapsed_s"].to_numpy(dtype=float)
        cpu = d["cpu_pct"].to_numpy(dtype=float)  # NaN on each first sample: not drawn
        rss = d["rss"].to_numpy(dtype=float)
        for ax in (ax_cpu, ax_rss):
            ax.axhline(base, color="#bbbbbb", linewidth=0.5, zorder=1)
            ax.axhline(base + 0.76, color="#dddddd", linewidth=0.5, linestyle=":", zorder=1)
        ax_cpu.plot(
            x,
            base + 0.76 * np.clip(cpu, 0, cpu_top) / cpu_top,
            color=BAR_COLOR,
            linewidth=1.0,
            zorder=2,
        )
        ax_rss.plot(x, base + 0.76 * rss / rss_top, color="#c2681d", linewidth=1.0, zorder=2)
        known = cpu[np.isfinite(cpu)]
        peak_cpu = float(known.max()) if known.size else 0.0
        mean_cpu = float(known.mean()) if known.size else 0.0
        for ax, note in (
            (ax_cpu, f"mean {mean_cpu:.0f} %, peak {peak_cpu:.0f} %"),
            (ax_rss, f"peak {_finite_max(rss) / 2**20:,.0f} MiB"),
        ):
            ax.text(t_max * 1.02, base + 0.3, note, fontsize=FONT - 2, va="center")
    names = [label(g.target) + ("" if g.ranked else " *") for g, _ in rows]
    ax_cpu.set_yticks([n - 1 - i + 0.5 for i in range(n)], names)
    ax_cpu.set_ylim(0, n)
    for ax, title in (
        (ax_cpu, f"target CPU, % of one core (band: 0 to {cpu_top:.0f} %)"),
        (ax_rss, f"target RSS (band: 0 to {rss_top / 2**20:,.0f} MiB)"),
    ):
        ax.set_xlim(0, t_max * 1.45)
        ax.set_xticks([v for v in MaxNLocator(4).tick_values(0, t_max) if 0 <= v <= t_max])
        ax.set_xlabel("seconds since the trial's first sample")
        ax.set_title(title, loc="left", fontsize=FONT)
        ax.grid(False)
        ax.tick_params(axis="y", length=0)
    _suptitle(fig, label(f"Over the trial with the median requests/s · {setting.label()}", 150))
    if any(not g.ranked for g, _ in rows):
        _note(fig, "* not ranked: see the table")
    return fig
