"""Charts (matplotlib, PNG and SVG), each a pure function of the summary.

Readable at a glance with 30 targets: names go on the y axis of horizontal bars (never under
rotated x ticks), legends sit outside the plot, every figure uses the constrained layout so no
two labels overlap (:func:`overlapping_texts` checks that, and the tests call it). Only ranked
groups are drawn as results; the others are named in a footnote, so no figure that a saturated
client or a failed check produced looks like a result. Figures are built on
:class:`matplotlib.figure.Figure` directly (no pyplot state), with the Agg renderer.

The modules: :mod:`~analysis.charts.figure` (style, sizes, footnotes, :func:`render` to a
:class:`Chart`), one module per family of chart (:mod:`~analysis.charts.throughput`,
:mod:`~analysis.charts.latency`, :mod:`~analysis.charts.resources`,
:mod:`~analysis.charts.footprint`, :mod:`~analysis.charts.cost`),
:mod:`~analysis.charts.catalog` (:func:`all_charts`, what the report shows) and
:mod:`~analysis.charts.layout` (the overlap check).
"""

from analysis.charts.catalog import all_charts
from analysis.charts.cost import cost_and_rps
from analysis.charts.figure import DPI, FONT, STYLE, Chart, label, render
from analysis.charts.figure import _figure as _figure  # the tests build bare figures with it
from analysis.charts.footprint import footprint
from analysis.charts.latency import latency_spectrum
from analysis.charts.layout import overlapping_texts
from analysis.charts.resources import resources
from analysis.charts.throughput import rps_bars, sweep

__all__ = [
    "DPI",
    "FONT",
    "STYLE",
    "Chart",
    "all_charts",
    "cost_and_rps",
    "footprint",
    "label",
    "latency_spectrum",
    "overlapping_texts",
    "render",
    "resources",
    "rps_bars",
    "sweep",
]
