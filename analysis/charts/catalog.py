"""Every chart a summary has data for, rendered, named and described, in the page's order."""

from __future__ import annotations

import re

from matplotlib.figure import Figure

from analysis.charts.cost import cost_and_rps
from analysis.charts.figure import Chart, render
from analysis.charts.footprint import footprint
from analysis.charts.latency import latency_spectrum
from analysis.charts.resources import resources
from analysis.charts.scaling import worker_scaling
from analysis.charts.throughput import rps_bars, sweep
from analysis.summary import Summary


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def all_charts(summary: Summary) -> list[Chart]:
    """Every chart the summary has data for, rendered, in the order the page shows them."""
    out: list[Chart] = []

    def add(fig: Figure | None, name: str, title: str, alt: str) -> None:
        if fig is not None:
            out.append(render(fig, name, title, alt))

    for i, r in enumerate(summary.rankings, 1):
        tag = f"{i}-{r.setting.slug()}"
        where = r.setting.label()
        n = len(r.ranked)
        add(
            rps_bars(r),
            f"rps-{tag}",
            f"Requests/s · {where}",
            f"Bar chart of median requests/s with 95 % confidence whiskers for {n} ranked "
            f"targets under {where}, fastest first.",
        )
        add(
            latency_spectrum(r),
            f"latency-{tag}",
            f"Latency by percentile · {where}",
            f"Latency percentile spectrum (log axes) of {n} ranked targets under {where}.",
        )
    for load in dict.fromkeys(s.load for s in summary.settings):
        add(
            sweep(summary, load),
            f"sweep-{_slug(load)}",
            f"Connection sweep · {load}",
            f"Requests/s and p99 latency against connection count for {load}.",
        )
    if summary.scaling:
        add(
            worker_scaling(summary),
            "scaling",
            "Worker scaling",
            f"Requests/s and scaling efficiency against worker count for {len(summary.scaling)} "
            "series, with 95 % confidence whiskers; the dashed line is linear scaling.",
        )
    if summary.costs:
        n = sum(c.ok for c in summary.costs)
        add(
            cost_and_rps(summary),
            "cost",
            "Cost per request and requests/s",
            f"Two bar charts side by side for {n} counted targets, cheapest first: user-space "
            "instructions per request under callgrind, and median requests/s.",
        )
    if summary.settings:
        first = summary.settings[0]
        add(
            resources(summary, first),
            "resources",
            f"Target CPU and RSS over a trial · {first.label()}",
            "Target CPU and RSS over the trial with the median requests/s, one row per target.",
        )
    add(
        footprint(summary.footprints),
        "footprint",
        "Footprint at rest",
        "Start-up time, idle memory, package count and environment size per target.",
    )
    return out
