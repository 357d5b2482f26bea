"""Cost beside speed: instructions per request (callgrind) and requests/s, one row a target."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from analysis import fmt
from analysis.charts.figure import BAR_COLOR, BAR_IN, FONT, _figure, _note, _with_style, label
from analysis.summary import Summary

RPS_COLOR = "#6b9f3a"


@_with_style
def cost_and_rps(summary: Summary) -> Figure | None:
    """Two panels sharing the target axis, cheapest on top: instructions per request (whiskers:
    the windows' range) and median requests/s (blank where the target was not ranked)."""
    rows = [c for c in summary.costs if c.ok]
    if not rows:
        return None
    n = len(rows)
    with_rps = any(c.rps is not None for c in rows)
    fig = _figure(10.0 if with_rps else 8.0, 1.7 + BAR_IN * max(n, 4))
    if with_rps:
        left, right = fig.subplots(1, 2, sharey=True)
    else:  # a cost pass alone: no requests/s to draw beside it
        left, right = fig.add_subplot(), None
    y = np.arange(n)
    cost = np.array([(c.instructions_per_request or 0.0) / 1000.0 for c in rows])
    left.barh(y, cost, color=BAR_COLOR, height=0.65, zorder=2)
    for yi, c in zip(y, rows, strict=True):
        text = (
            f"{(c.instructions_per_request or 0) / 1000:,.0f}k (spread {c.spread_pct or 0:.2f} %)"
        )
        left.text(float(c.instructions_per_request or 0) / 1000.0 + cost.max() * 0.01, float(yi),
                  text, va="center", ha="left", fontsize=FONT - 2)  # fmt: skip
    left.set_yticks(y, [label(c.target) for c in rows])
    left.set_ylim(max(n, 4) - 0.5, -0.6)
    left.set_xlim(0, max(cost.max(), 1.0) * 1.6)
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}k"))
    left.set_xlabel("instructions per request (callgrind, lower is better)")
    left.grid(axis="y", visible=False)
    left.set_title("Cost per request", loc="left")
    _note(fig, "User-space instructions only, one connection: kernel work, waiting and multi-core "
          "effects are not in the count.")  # fmt: skip
    if right is None:
        return fig
    rps = np.array([c.rps if c.rps is not None else 0.0 for c in rows])
    right.barh(y, rps, color=RPS_COLOR, height=0.65, zorder=2)
    for yi, c in zip(y, rows, strict=True):
        right.text(float(c.rps or 0.0) + max(rps.max(), 1.0) * 0.01, float(yi),
                   fmt.rps(c.rps) if c.rps is not None else "not ranked",
                   va="center", ha="left", fontsize=FONT - 2)  # fmt: skip
    right.set_xlim(0, max(rps.max(), 1.0) * 1.3)
    right.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    right.set_xlabel("requests/s (median of trials, higher is better)")
    right.grid(axis="y", visible=False)
    setting = next((c.rps_setting for c in rows if c.rps_setting), "")
    right.set_title(label(f"Requests/s · {setting}" if setting else "Requests/s", 60), loc="left")
    return fig
