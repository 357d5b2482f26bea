"""Charts (matplotlib, PNG and SVG), each a pure function of the summary.

Readable at a glance with 30 targets: names go on the y axis of horizontal bars (never under
rotated x ticks), legends sit outside the plot, every figure uses the constrained layout so no
two labels overlap (:func:`overlapping_texts` checks that, and the tests call it). Only ranked
groups are drawn as results; the others are named in a footnote, so no figure that a saturated
client or a failed check produced looks like a result. Figures are built on
:class:`matplotlib.figure.Figure` directly (no pyplot state), with the Agg renderer.
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ParamSpec

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from analysis import fmt
from analysis.summary import Footprint, Group, Ranking, Setting, Summary

DPI = 100
FONT = 9
BAR_IN = 0.27  # height per bar, inches
STYLE: dict[str, Any] = {
    "font.size": FONT,
    "axes.titlesize": FONT + 1,
    "axes.labelsize": FONT,
    "xtick.labelsize": FONT - 1,
    "ytick.labelsize": FONT - 1,
    "legend.fontsize": FONT - 1,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "fwbench",  # stable element ids
    "svg.fonttype": "path",  # text as outlines: the SVG renders the same everywhere
}
BAR_COLOR = "#3b6ea5"
LINE_STYLES = ("-", "--", ":", "-.")
TAB10 = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class Chart:
    name: str  # file stem, e.g. "rps-1-closed-64-raw-hello-c64"
    title: str
    alt: str  # what the chart shows, in words (the img alt text)
    png: bytes
    svg: bytes
    width_px: int
    height_px: int


def label(text: str, limit: int = 36) -> str:
    """A name made safe for matplotlib text (no mathtext) and short enough for an axis."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def _styled() -> AbstractContextManager[None]:
    """Our rcParams for the duration of a block (matplotlib's stubs want literal keys)."""
    rc: Any = STYLE
    return matplotlib.rc_context(rc)


P = ParamSpec("P")


def _with_style(build: Callable[P, Figure | None]) -> Callable[P, Figure | None]:
    """Build a chart under our rcParams (sizes are taken when the artists are made)."""

    @functools.wraps(build)
    def styled(*args: P.args, **kwargs: P.kwargs) -> Figure | None:
        with _styled():
            return build(*args, **kwargs)

    return styled


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(i: int) -> dict[str, Any]:
    colors = TAB10
    return {"color": colors[i % 10], "linestyle": LINE_STYLES[(i // 10) % len(LINE_STYLES)]}


def _footnote(fig: Figure, others: Sequence[Group], what: str = "Not drawn") -> None:
    if not others:
        return
    short = {
        "client_saturated": "client saturated",
        "failed": "failed",
        "not_measured": "not measured",
    }
    names = [f"{label(g.target, 24)} ({short.get(g.state, g.state)})" for g in others]
    text = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    _note(fig, f"{what}: {text}; see the table.")


def _note(fig: Figure, text: str) -> None:
    """A footnote under the plots (as the figure's x label, so the layout makes room)."""
    fig.supxlabel(text, x=0.01, ha="left", fontsize=FONT - 2, color="#555555")


def render(fig: Figure, name: str, title: str, alt: str) -> Chart:
    with _styled():
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
        # The layout is settled by the first draw; a second pass would only cost time.
        fig.set_layout_engine("none")
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    w, h = fig.get_size_inches()
    return Chart(name, title, alt, png.getvalue(), svg.getvalue(), int(w * DPI), int(h * DPI))


# --- requests/s bars ------------------------------------------------------------------------


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
    med = np.array([row.group.rps_median or 0.0 for row in rows])
    lo = np.array(
        [row.group.rps_ci[0] if row.group.rps_ci else m for row, m in zip(rows, med, strict=True)]
    )
    hi = np.array(
        [row.group.rps_ci[1] if row.group.rps_ci else m for row, m in zip(rows, med, strict=True)]
    )
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


# --- latency spectrum -----------------------------------------------------------------------

_NINES = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
_NINES_LABELS = ("0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%")


def _legend(fig: Figure, ax: Axes, n: int) -> None:
    ncol = 1 if n <= 18 else 2
    fig.legend(
        *ax.get_legend_handles_labels(),
        loc="outside right upper",
        ncol=ncol,
        frameon=False,
        handlelength=2.2,
    )


def _log_ms_axis(ax: Axes, values: Sequence[float]) -> None:
    ax.set_yscale("log")
    lo = max(min(values), 1e-3)
    hi = max(max(values), lo * 10)
    ticks = [10.0**k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(ticks[0], ticks[-1])


@_with_style
def latency_spectrum(r: Ranking) -> Figure | None:
    """Every ranked target's latency by percentile, HDR style: log latency over log nines."""
    groups = [row.group for row in r.ranked if row.group.hist is not None]
    if not groups:
        return None
    fig = _figure(10.0 if len(groups) > 18 else 9.0, 4.8)
    ax = fig.add_subplot()
    top = 1.0
    values: list[float] = []
    for i, g in enumerate(groups):
        assert g.hist is not None
        pct, ms = g.hist.spectrum_ms()
        keep = pct < 100.0
        x = 1.0 / (1.0 - pct[keep] / 100.0)
        ax.plot(x, ms[keep], label=label(g.target, 28), linewidth=1.3, **_style(i))
        top = max(top, float(x.max()))
        values += [float(ms[keep].min()), float(ms.max())]
    ax.set_xscale("log")
    shown = [k for k, v in enumerate(_NINES) if v <= top * 1.0001] or [0]
    ax.xaxis.set_major_locator(FixedLocator([_NINES[k] for k in shown]))
    ax.xaxis.set_major_formatter(FixedFormatterSafe([_NINES_LABELS[k] for k in shown]))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(1.0, top)
    _log_ms_axis(ax, values)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency, ms (log)")
    ax.set_title(label(f"Latency by percentile · {r.setting.label()}", 110), loc="left")
    _legend(fig, ax, len(groups))
    _footnote(fig, r.others)
    return fig


class FixedFormatterSafe(FuncFormatter):
    """Labels by tick position, for a FixedLocator (empty past the end)."""

    def __init__(self, labels: Sequence[str]) -> None:
        self._labels = list(labels)
        super().__init__(self._at)

    def _at(self, _value: float, pos: int | None) -> str:
        return self._labels[pos] if pos is not None and 0 <= pos < len(self._labels) else ""


# --- sweeps ---------------------------------------------------------------------------------


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
        if g.setting in settings and not g.ranked and g.state != "not_measured"
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
        med = np.array([g.rps_median or 0.0 for g in pts])
        lo = np.array([g.rps_ci[0] if g.rps_ci else m for g, m in zip(pts, med, strict=True)])
        hi = np.array([g.rps_ci[1] if g.rps_ci else m for g, m in zip(pts, med, strict=True)])
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
    fig.suptitle(label(f"Connection sweep · {load}", 110), x=0.01, ha="left", fontsize=FONT + 1)
    _legend(fig, ax_rps, len(targets))
    _footnote(fig, _unique(left_out), "Points not drawn")
    return fig


def _unique(groups: Sequence[Group]) -> list[Group]:
    seen: dict[str, Group] = {}
    for g in groups:
        seen.setdefault(g.target, g)
    return list(seen.values())


# --- resources over time --------------------------------------------------------------------


def _median_trial(summary: Summary, g: Group) -> str | None:
    t = summary.trials
    s = g.setting
    mask = (
        (t["target"] == g.target)
        & (t["load"] == s.load)
        & (t["connections"] == s.connections)
        & (t["client"] == s.client)
        & (t["scenario"] == s.scenario)
        & (t["status"] == "ok")
    )
    rows = t[mask].sort_values(["rps", "trial_id"])
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
        ax_cpu.text(
            t_max * 1.02,
            base + 0.3,
            f"mean {mean_cpu:.0f} %, peak {peak_cpu:.0f} %",
            fontsize=FONT - 2,
            va="center",
        )
        ax_rss.text(
            t_max * 1.02,
            base + 0.3,
            f"peak {_finite_max(rss) / 2**20:,.0f} MiB",
            fontsize=FONT - 2,
            va="center",
        )
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
    fig.suptitle(
        label(f"Over the trial with the median requests/s · {setting.label()}", 150),
        x=0.01,
        ha="left",
        fontsize=FONT + 1,
    )
    if any(not g.ranked for g, _ in rows):
        _note(fig, "* not ranked: see the table")
    return fig


# --- footprint ------------------------------------------------------------------------------


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
    fig.suptitle(
        "Footprint at rest (from the verifier), sorted by start-up time",
        x=0.01,
        ha="left",
        fontsize=FONT + 1,
    )
    return fig


# --- all of them ----------------------------------------------------------------------------


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


def overlapping_texts(fig: Figure, tolerance: float = 0.5) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap (and texts cut by the figure's edge)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    agg: Any = canvas  # draw() and get_renderer() are untyped in matplotlib's stubs
    with _styled():
        agg.draw()
    renderer = agg.get_renderer()
    texts = _drawn_texts(fig)
    boxes = []
    for t in texts:
        bb = t.get_window_extent(renderer)
        if bb.width <= 0 or bb.height <= 0:
            continue
        boxes.append((t.get_text(), bb))
    fb = fig.bbox
    out: list[tuple[str, str]] = []
    for name, bb in boxes:
        if bb.x0 < fb.x0 - 1 or bb.y0 < fb.y0 - 1 or bb.x1 > fb.x1 + 1 or bb.y1 > fb.y1 + 1:
            out.append((name, "<figure edge>"))
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i][1], boxes[j][1]
            w = min(a.x1, b.x1) - max(a.x0, b.x0)
            h = min(a.y1, b.y1) - max(a.y0, b.y0)
            if w > tolerance and h > tolerance:
                out.append((boxes[i][0], boxes[j][0]))
    return out


def _drawn_texts(fig: Figure) -> list[Text]:
    """The texts a drawn figure shows: titles, labels, tick labels in view, legends, notes."""
    found: list[Text] = list(fig.texts)  # holds the suptitle and supxlabel too
    for leg in fig.legends:
        found += leg.get_texts()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        private: Any = ax  # the left and right titles and the drawn ticks are private
        found += [ax.title, private._left_title, private._right_title]
        found += [ax.xaxis.label, ax.yaxis.label]
        for axis in (private.xaxis, private.yaxis):
            # The ticks actually drawn (inside the view); get_ticklabels() holds stale ones too.
            for tick in axis._update_ticks():
                found += [tick.label1, tick.label2]
        found += ax.texts
        ax_legend = ax.get_legend()
        if ax_legend is not None:
            found += ax_legend.get_texts()
    return [t for t in found if t.get_visible() and t.get_text().strip()]
