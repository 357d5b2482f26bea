"""The figure plumbing every chart shares: style, sizes, footnotes, and rendering to PNG + SVG.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot state), with the Agg
renderer and the constrained layout; :data:`STYLE` holds our rcParams, which a builder takes on
through :func:`_with_style` and :func:`render` uses again when it writes the files.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ParamSpec

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analysis.summary import Group

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


def _suptitle(fig: Figure, text: str) -> None:
    """The figure's title, left-aligned above all its plots."""
    fig.suptitle(text, x=0.01, ha="left", fontsize=FONT + 1)


def _footnote(fig: Figure, others: Sequence[Group], what: str = "Not drawn") -> None:
    if not others:
        return
    short = {
        "client_saturated": "client saturated",
        "failed": "failed",
        "not_measured": "not measured",
        "not_applicable": "not applicable",
    }
    names = [f"{label(g.target, 24)} ({short.get(g.state, g.state)})" for g in others]
    text = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    _note(fig, f"{what}: {text}; see the table.")


def _note(fig: Figure, text: str) -> None:
    """A footnote under the plots (as the figure's x label, so the layout makes room)."""
    fig.supxlabel(text, x=0.01, ha="left", fontsize=FONT - 2, color="#555555")


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


def render(fig: Figure, name: str, title: str, alt: str) -> Chart:
    with _styled():
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
        # The layout is settled by the first draw; a second pass would only cost time.
        fig.set_layout_engine("none")
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    w, h = fig.get_size_inches()
    return Chart(name, title, alt, png.getvalue(), svg.getvalue(), int(w * DPI), int(h * DPI))
