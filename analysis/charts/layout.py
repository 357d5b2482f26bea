"""The layout check the tests run on every chart: no two drawn texts overlap, none is cut."""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from analysis.charts.figure import _styled


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
