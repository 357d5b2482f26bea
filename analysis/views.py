"""Side-by-side views of the deployment matrix: one framework on several servers, one target on
several Pythons, and which frameworks are no longer maintained.

- **By server**: frameworks measured through two targets or more (Flask on gunicorn, Granian,
  waitress, uWSGI...), per load setting, each target's median requests/s with its interval and
  its share of the framework's fastest: the server's effect, framework held fixed. Only plain
  series take part (not a channel, Python or worker variant: those have their own views).
- **By Python**: targets measured on several interpreters (target.toml ``python = [...]``,
  series ``<target>@py3.13``), the same way.
- **Maintenance**: targets whose ``target.toml`` says ``maintained = false``, with the date of
  their last release, so a slow or failing unmaintained framework is read as such.

Pure: the summary's groups and the runs' target metadata in, rows out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadgen.records.series import SeriesName, parse_series

if TYPE_CHECKING:
    from analysis.summary import Group, Setting


@dataclass(frozen=True)
class Cell:
    series: str  # the target (or series) measured
    label: str  # what varies: the server ("gunicorn 27.0.1 (gthread)") or the Python ("3.13")
    rps_median: float | None
    rps_ci: tuple[float, float] | None
    share: float | None  # of the fastest in the row (1.0 for the fastest)
    state: str  # the group's state (ranked, client_saturated, failed...)

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "label": self.label,
            "rps_median": self.rps_median,
            "rps_ci": list(self.rps_ci) if self.rps_ci else None,
            "share": self.share,
            "state": self.state,
        }


@dataclass(frozen=True)
class Row:
    """One framework (by server) or one target (by Python) under one setting."""

    name: str
    setting: Setting
    cells: tuple[Cell, ...]  # fastest first

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "setting": self.setting.label(),
            "cells": [c.to_dict() for c in self.cells],
        }


def _row(name: str, setting: Setting, members: Sequence[tuple[Group, str]]) -> Row:
    best = max((g.rps_median or 0.0 for g, _ in members if g.ranked), default=0.0)
    cells = [
        Cell(
            g.target,
            label,
            g.rps_median,
            g.rps_ci,
            (g.rps_median / best) if best and g.ranked and g.rps_median else None,
            g.state,
        )
        for g, label in members
    ]
    cells.sort(key=lambda c: (-(c.rps_median or 0.0) if c.share is not None else 1.0, c.series))
    return Row(name, setting, tuple(cells))


def by_server(groups: Iterable[Group]) -> tuple[Row, ...]:
    """Frameworks measured through two plain targets or more, per setting."""
    buckets: dict[tuple[str, Setting], list[tuple[Group, str]]] = {}
    for g in groups:
        if not g.framework or parse_series(g.target) != SeriesName(g.target):
            continue
        label = f"{g.server} {g.server_version}".strip()
        buckets.setdefault((g.framework, g.setting), []).append((g, label))
    return tuple(
        _row(fw, setting, members)
        for (fw, setting), members in sorted(buckets.items(), key=lambda kv: kv[0][0].lower())
        if len({g.target for g, _ in members}) > 1 and any(g.ranked for g, _ in members)
    )


def by_python(groups: Iterable[Group]) -> tuple[Row, ...]:
    """Targets measured on two interpreters or more, per setting."""
    buckets: dict[tuple[str, Setting], list[tuple[Group, str]]] = {}
    for g in groups:
        parts = parse_series(g.target)
        if (
            parts.workers
            or parts.channel != "pinned"
            or (parts.base == g.target and "@" in g.target)
        ):
            continue
        key = (parts.base, g.setting)
        buckets.setdefault(key, []).append((g, g.python or parts.python or "?"))
    return tuple(
        _row(base, setting, members)
        for (base, setting), members in sorted(buckets.items(), key=lambda kv: kv[0][0])
        if len({label for _, label in members}) > 1
    )


def maintenance(targets: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Target → "unmaintained, last release YYYY-MM-DD" for those marked so in target.toml."""
    out: dict[str, str] = {}
    for t in targets:
        if t.get("maintained") is False:
            when = str(t.get("last_release") or "")
            out[str(t.get("name"))] = "unmaintained" + (f", last release {when}" if when else "")
    return out
