"""The footprint at rest: start-up time, idle memory, packages and environment size."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.charts.figure import BAR_IN, FONT, _figure, _suptitle, _with_style, label
from analysis.summary import Footprint


@_with_style
def footprint(fps: Sequence[Footprint]) -> Figure | None:
    """Start-up time, idle memory, packages and environment size per verified target."""
    rows = sorted((f for f in fps if f.ok), key=lambda f: (f.startup_s or math.inf, f.target))
    if not rows:
        return None
    n = len(rows)
    fig = _figure(11.0, 1.3 + BAR_IN * max(n, 4))
    axes = fig.subplots(1, 4, sharey=True)
    panels: list[tuple[str, Callable[[Footprint], float | None], Callable[[float], str]]] = [
        ("start-up, s", lambda f: f.startup_s, lambda v: f"{v:.2f}"),
        (
            "idle RSS, MiB",
            lambda f: None if f.idle_rss_bytes is None else f.idle_rss_bytes / 2**20,
            lambda v: f"{v:.0f}",
        ),
        (
            "packages",
            lambda f: None if f.package_count is None else float(f.package_count),
            lambda v: f"{v:.0f}",
        ),
        (
            "environment, MiB",
            lambda f: None if f.env_size_bytes is None else f.env_size_bytes / 2**20,
            lambda v: f"{v:.0f}",
        ),
    ]
    y = np.arange(n)
    for ax, (title, get, text) in zip(axes, panels, strict=True):
        vals = [get(f) for f in rows]
        known = [v for v in vals if v is not None]
        ax.barh(y, [v or 0.0 for v in vals], color="#6b8e5a", height=0.65, zorder=2)
        top = max(known) if known else 1.0
        for yi, v in zip(y, vals, strict=True):
            s = "n/a" if v is None else text(v)
            ax.text((v or 0.0) + top * 0.02, yi, s, va="center", fontsize=FONT - 2)
        ax.set_xlim(0, top * 1.35 if top > 0 else 1.0)
        ax.set_title(title, loc="left", fontsize=FONT)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(3))
    axes[0].set_yticks(y, [label(f.target) for f in rows])
    axes[0].set_ylim(max(n, 4) - 0.5, -0.6)
    _suptitle(fig, "Footprint at rest (from the verifier), sorted by start-up time")
    return fig
