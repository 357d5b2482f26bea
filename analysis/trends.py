"""Trend charts from the history: one point per night and series, change points marked.

For one machine fingerprint (the runs of other machines are never drawn on the same axes),
every series (target, load setting, connections) gets a small plot of its nightly median
requests/s, and another of its p50 latency; every target with a cost pass (``fwbench cost``,
``[nightly] cost``) one of its instructions per request. The change points the history gate
finds are drawn as dashed vertical lines at the first night of the new level, red when it got
worse, green when better, with the change in percent. The change-point table says what differs
between the nights either side of each change (packages, suite commit, machine:
:mod:`analysis.explain`). Figures follow :mod:`analysis.charts`' style (constrained layout,
Agg, PNG + SVG).

Output of :func:`write_trends` in a report folder: ``trends/<metric>.png`` and ``.svg``,
``trends/trends.md`` (Markdown with image links) and ``trends/trends.html`` (an HTML
``<section id="trends">`` with the PNGs embedded as data: URIs, so it can go straight into the
self-contained report page, whose Content-Security-Policy allows only data: images).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analysis.changepoint import ChangePoint, change_points
from analysis.charts import DPI, FONT, STYLE, Chart, label, render
from analysis.explain import explain_change
from analysis.gate import COST, HIGHER_IS_BETTER, LABELS, HistoryParams
from analysis.history import History, SeriesKey

TRENDS_DIR = "trends"
MARKER = "<!-- fwbench:trends -->"
"""Where a report page wants the trends section; :func:`embed` puts it there (or before the
details section, or at the end of the body)."""
CHART_METRICS = ("rps", "p50")
COLUMNS = 3
WORSE, BETTER, LINE = "#c0392b", "#2e7d32", "#3b6ea5"


class Point(Protocol):
    """One night of a series: a load series' NightPoint or a target's CostPoint."""

    @property
    def night(self) -> str: ...

    @property
    def run_id(self) -> str: ...

    def value(self, metric: str) -> float | None: ...


@dataclass(frozen=True)
class SeriesTrend:
    key: SeriesKey
    points: tuple[Point, ...]
    change_points: dict[str, tuple[ChangePoint, ...]] = field(default_factory=dict)
    title: str = ""  # instead of "target (load, cN)"
    explained: dict[int, str] = field(default_factory=dict)  # night index -> what changed

    @property
    def name(self) -> str:
        if self.title:
            return self.title
        target, load, conns = self.key
        return f"{target} ({load}, c{conns})"

    def values(self, metric: str) -> list[float]:
        return [v for p in self.points if (v := p.value(metric)) is not None]


@dataclass(frozen=True)
class Trends:
    fingerprint: str
    machine: str  # a short description: host and CPU
    series: tuple[SeriesTrend, ...]
    charts: tuple[Chart, ...]
    other_machines: int  # runs of other fingerprints, not drawn
    html: str = ""
    markdown: str = ""
    files: tuple[Path, ...] = ()


def trend_data(
    history: History, fingerprint: str, params: HistoryParams
) -> tuple[SeriesTrend, ...]:
    """Every series of one machine with its change points per charted metric."""
    return tuple(
        _trend(history, key, points, CHART_METRICS, params)
        for key, points in history.series(fingerprint).items()
    )


def cost_trend_data(
    history: History, fingerprint: str, params: HistoryParams
) -> tuple[SeriesTrend, ...]:
    """Every target's instructions per request on one machine, with its change points."""
    return tuple(
        _trend(history, (target, COST, 1), points, (COST,), params, f"{target} (callgrind)")
        for target, points in history.cost_series(fingerprint).items()
    )


def _trend(
    history: History,
    key: SeriesKey,
    points: Sequence[Point],
    metrics: Sequence[str],
    params: HistoryParams,
    title: str = "",
) -> SeriesTrend:
    """One series with its change points and what differs at each of them."""
    cps: dict[str, tuple[ChangePoint, ...]] = {}
    for metric in metrics:
        values = [p.value(metric) for p in points]
        if len(values) >= params.min_nights and all(v is not None for v in values):
            cps[metric] = tuple(
                change_points(
                    [float(v) for v in values if v is not None],
                    window=params.window,
                    max_pvalue=params.max_pvalue,
                )
            )
    at = {cp.index for found in cps.values() for cp in found if 0 < cp.index < len(points)}
    explained = {
        i: explain_change(history, key[0], points[i - 1].run_id, points[i].run_id).text
        for i in sorted(at)
    }
    return SeriesTrend(key, tuple(points), cps, title, explained)


def chart(series: Sequence[SeriesTrend], metric: str, machine: str) -> Figure | None:
    """Small multiples, one per series: the nightly value and its change points."""
    drawn = [s for s in series if s.values(metric)]
    if not drawn:
        return None
    cols = min(COLUMNS, len(drawn))
    rows = math.ceil(len(drawn) / cols)
    fig = Figure(figsize=(3.6 * cols + 0.4, 2.5 * rows + 0.7), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(drawn) :]:
        ax.set_visible(False)
    for ax, s in zip(axes.flat, drawn, strict=False):
        xs = [i for i, p in enumerate(s.points) if p.value(metric) is not None]
        ys = [float(v) for p in s.points if (v := p.value(metric)) is not None]
        ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.0, color=LINE)
        for cp in s.change_points.get(metric, ()):
            worse = (cp.change_pct < 0) == HIGHER_IS_BETTER[metric]
            color = WORSE if worse else BETTER
            ax.axvline(cp.index - 0.5, color=color, linestyle="--", linewidth=1.0)
            ax.annotate(
                f"{cp.change_pct:+.1f} %",
                xy=(cp.index - 0.5, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -10),
                textcoords="offset points",
                fontsize=FONT - 2,
                color=color,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            )
        ax.set_title(label(s.name, 40), fontsize=FONT, loc="left")
        nights = [p.night for p in s.points]
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _, n=nights: n[int(v)][5:] if 0 <= int(v) < len(n) else "")
        )
        if metric in ("rps", COST):
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    fig.suptitle(
        label(f"{LABELS[metric]} per night · machine {machine}", 110),
        x=0.01,
        ha="left",
        fontsize=FONT + 1,
    )
    fig.supxlabel(
        "night (MM-DD, UTC); dashed: change points (red worse, green better)",
        x=0.01,
        ha="left",
        fontsize=FONT - 2,
        color="#555555",
    )
    return fig


def _describe(history: History, fingerprint: str) -> str:
    info = history.machine(fingerprint)
    host = str(info.get("hostname", ""))
    return f"{host} {fingerprint[:8]}".strip()


def build(
    history: History, *, fingerprint: str | None = None, params: HistoryParams | None = None
) -> Trends | None:
    """Trends of one machine (default: the newest run's); None when the history is empty."""
    params = params or HistoryParams()
    if fingerprint is None:
        latest = history.latest_run()
        if latest is None:
            return None
        fingerprint = latest.fingerprint
    machine = _describe(history, fingerprint)
    load_series = trend_data(history, fingerprint, params)
    cost_series = cost_trend_data(history, fingerprint, params)
    series = load_series + cost_series
    charts = []
    for metric, drawn in [(m, load_series) for m in CHART_METRICS] + [(COST, cost_series)]:
        with matplotlib.rc_context(cast(Any, STYLE)):
            fig = chart(drawn, metric, machine)
        if fig is not None:
            alt = f"{LABELS[metric]} per night for {len(drawn)} series, change points marked"
            charts.append(render(fig, f"trend-{metric}", f"{LABELS[metric]} per night", alt))
    others = sum(n for fp, n in history.fingerprints().items() if fp != fingerprint)
    t = Trends(fingerprint, machine, series, tuple(charts), others)
    return Trends(
        t.fingerprint,
        t.machine,
        t.series,
        t.charts,
        t.other_machines,
        html_section(t),
        markdown_section(t),
    )


def _cp_rows(t: Trends) -> list[tuple[str, str, str, float, float, float, float, int, str]]:
    rows = []
    for s in t.series:
        for metric, cps in s.change_points.items():
            for cp in cps:
                night = s.points[cp.index].night
                rows.append(
                    (s.name, LABELS[metric], night, cp.mean_before, cp.mean_after,
                     cp.change_pct, cp.pvalue, cp.n_after, s.explained.get(cp.index, ""))
                )  # fmt: skip
    return sorted(rows, key=lambda r: (r[2], r[0]), reverse=True)


def _intro(t: Trends) -> str:
    nights = max((len(s.points) for s in t.series), default=0)
    text = (
        f"Median of each night's trials on machine {t.machine} (fingerprint {t.fingerprint}): "
        f"{len(t.series)} series, up to {nights} nights. Change points: E-Divisive means with a "
        "t-test, as the history gate finds them."
    )
    if t.other_machines:
        text += f" {t.other_machines} run(s) from other machines are not drawn."
    return text


def html_section(t: Trends) -> str:
    """The ``<section id="trends">`` for the report page (images as data: URIs)."""
    e = html.escape
    out = ['<section id="trends"><h2>Trends</h2>', f'<p class="small">{e(_intro(t))}</p>']
    for c in t.charts:
        data = base64.b64encode(c.png).decode("ascii")
        out.append(
            f'<figure class="chart" id="chart-{e(c.name)}"><img src="data:image/png;base64,'
            f'{data}" width="{c.width_px}" height="{c.height_px}" alt="{e(c.alt)}">'
            f"<figcaption>{e(c.title)}</figcaption></figure>"
        )
    if not t.charts:
        out.append("<p>No nights stored yet.</p>")
    rows = _cp_rows(t)
    if rows:
        out.append(
            "<h3>Change points</h3><table><thead><tr><th>series</th><th>metric</th>"
            '<th>night</th><th class="num">before</th><th class="num">after</th>'
            '<th class="num">change</th><th class="num">p-value</th>'
            '<th class="num">nights since</th><th>what changed</th></tr></thead><tbody>'
        )
        for name, metric, night, before, after, change, p, n, why in rows:
            out.append(
                f"<tr><td>{e(name)}</td><td>{e(metric)}</td><td>{e(night)}</td>"
                f'<td class="num">{before:,.2f}</td><td class="num">{after:,.2f}</td>'
                f'<td class="num">{change:+.1f} %</td><td class="num">{p:.2g}</td>'
                f'<td class="num">{n}</td><td>{e(why)}</td></tr>'
            )
        out.append("</tbody></table>")
    else:
        out.append("<p>No change point in the history.</p>")
    out.append("</section>")
    return "\n".join(out)


def markdown_section(t: Trends) -> str:
    """The same as Markdown, with the charts as links to ``trends/<name>.png``."""
    lines = ["## Trends", "", _intro(t), ""]
    lines += [f"![{c.alt}]({TRENDS_DIR}/{c.name}.png)" for c in t.charts]
    rows = _cp_rows(t)
    if rows:
        lines += [
            "",
            "| series | metric | night | before | after | change | p-value | nights since "
            "| what changed |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {n} | {m} | {d} | {b:,.2f} | {a:,.2f} | {c:+.1f} % | {p:.2g} | {k} | {w} |"
            for n, m, d, b, a, c, p, k, w in rows
        ]
    return "\n".join(lines) + "\n"


def write_trends(
    history: History,
    report_dir: Path,
    *,
    fingerprint: str | None = None,
    params: HistoryParams | None = None,
) -> Trends | None:
    """Build the trends and write ``report_dir/trends/``; None when the history is empty."""
    t = build(history, fingerprint=fingerprint, params=params)
    if t is None:
        return None
    out = report_dir / TRENDS_DIR
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for c in t.charts:
        for suffix, data in ((".png", c.png), (".svg", c.svg)):
            path = out / f"{c.name}{suffix}"
            path.write_bytes(data)
            files.append(path)
    for name, text in (("trends.html", t.html), ("trends.md", t.markdown)):
        path = out / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return Trends(
        t.fingerprint,
        t.machine,
        t.series,
        t.charts,
        t.other_machines,
        t.html,
        t.markdown,
        tuple(files),
    )


def embed(page: str, section: str) -> str:
    """Put the trends section into a report page: at :data:`MARKER`, else before the details
    section, else before ``</body>``. A section embedded before is replaced."""
    start = page.find('<section id="trends">')
    if start >= 0:
        end = page.find("</section>", start)
        if end >= 0:
            return page[:start] + section + page[end + len("</section>") :]
    if MARKER in page:
        return page.replace(MARKER, section, 1)
    for anchor in ('<section id="details">', "</body>"):
        at = page.find(anchor)
        if at >= 0:
            return page[:at] + section + "\n" + page[at:]
    return page + section
