"""The latency spectrum: every ranked target's latency by percentile, HDR style."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analysis.charts.figure import (
    _figure,
    _footnote,
    _legend,
    _log_ms_axis,
    _style,
    _with_style,
    label,
)
from analysis.summary import Ranking

_NINES = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)
_NINES_LABELS = ("0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%")


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
