"""The framework-by-scenario matrix of the report's front page (pure, over a :class:`Summary`).

Rows: targets; columns: the run's scenarios in the contract's order (hello, json, db, queries,
fortunes); a cell: the target's median requests/s relative to the fastest ranked target of that
scenario (``100 %`` the fastest), or why there is no figure: ``n/a`` (the target cannot serve the
scenario), ``failed verification``, ``failed``, ``client's limit``, ``not measured``. A scenario
measured under several load settings is shown under its first in the report's order (the
column names it). Only a run with a scenario beyond hello has a matrix: a hello run's report is
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.summary import Group, Setting, Summary
from loadgen.records.scenarios import SCENARIOS

MATRIX_TITLE = "Relative speed by scenario"
MATRIX_NOTE = (
    "Each cell: the target's median requests/s over the fastest ranked target's in that "
    "scenario (100 %: the fastest). n/a: the target cannot serve the scenario (the reason is in "
    "the scenario's ranking, under Not ranked); failed verification: its answers in that "
    "scenario were wrong, so it was not measured there."
)

_TEXT = {
    "not_applicable": "n/a",
    "client_saturated": "client's limit",
    "not_measured": "not measured",
}


@dataclass(frozen=True)
class MatrixCell:
    state: str  # the group's state (analysis.summary.State)
    relative: float | None  # median requests/s over the scenario's fastest (ranked only)
    rps_median: float | None
    reason: str

    @property
    def text(self) -> str:
        if self.state == "ranked" and self.relative is not None:
            return f"{self.relative * 100:.0f} %"
        if self.state == "failed":
            return "failed verification" if "verification" in self.reason else "failed"
        return _TEXT.get(self.state, self.state.replace("_", " "))

    def to_dict(self) -> dict[str, Any]:
        rel = None if self.relative is None else round(self.relative, 4)
        rps = None if self.rps_median is None else round(self.rps_median, 2)
        return {
            "state": self.state,
            "relative": rel,
            "rps_median": rps,
            "text": self.text,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ScenarioMatrix:
    scenarios: tuple[str, ...]
    settings: tuple[Setting, ...]  # the setting each column shows, one per scenario
    rows: tuple[tuple[str, tuple[MatrixCell | None, ...]], ...]  # target, cell per scenario

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenarios": list(self.scenarios),
            "settings": {n: s.label() for n, s in zip(self.scenarios, self.settings, strict=True)},
            "rows": [
                {
                    "target": target,
                    "cells": {
                        n: None if c is None else c.to_dict()
                        for n, c in zip(self.scenarios, cells, strict=True)
                    },
                }
                for target, cells in self.rows
            ],
            "note": MATRIX_NOTE,
        }


def _cell(g: Group | None, fastest: float | None) -> MatrixCell | None:
    if g is None:
        return None
    rel = None
    if g.ranked and g.rps_median is not None and fastest:
        rel = g.rps_median / fastest
    return MatrixCell(g.state, rel, g.rps_median if g.ranked else None, g.reason)


def scenario_matrix(s: Summary) -> ScenarioMatrix | None:
    """The matrix, or None when the run measured no scenario beyond hello."""
    present = {x.scenario for x in s.settings}
    if present <= {"hello"}:
        return None
    order = {name: i for i, name in enumerate(SCENARIOS)}
    scenarios = sorted(present, key=lambda n: (order.get(n, len(order)), n))
    columns = [next(x for x in s.settings if x.scenario == n) for n in scenarios]
    fastest: list[float | None] = []
    for setting in columns:
        ranking = next((r for r in s.rankings if r.setting == setting), None)
        fastest.append(ranking.ranked[0].group.rps_median if ranking and ranking.ranked else None)
    targets = sorted({g.target for g in s.groups if g.setting in columns})
    rows = [
        (t, tuple(_cell(s.group(t, c), f) for c, f in zip(columns, fastest, strict=True)))
        for t in targets
    ]

    def key(row: tuple[str, tuple[MatrixCell | None, ...]]) -> tuple[int, float, str]:
        rels = [c.relative for c in row[1] if c is not None and c.relative is not None]
        return (-len(rels), -(sum(rels) / len(rels) if rels else 0.0), row[0])

    return ScenarioMatrix(tuple(scenarios), tuple(columns), tuple(sorted(rows, key=key)))
