"""What changed at a change point: the packages, the suite's commit and the machine between the
last night before it and the first night after it.

The history gate (:mod:`analysis.gate`) stays pure: it finds a change in a series of numbers.
This module reads the history (:mod:`analysis.history`: the ``packages`` and ``locks`` tables,
and each run's ``suite_commit`` and ``fingerprint``) and says what else differs between the two
nights on either side of it:

- **packages**: every package of the series (``flask``, ``flask@latest``) whose version differs
  (:func:`loadgen.records.packages.diff_packages`), from the verifier's installed list of each
  night, or the pins of its stored lock;
- **suite_commit** and **machine** (fingerprint), named only when they differ.

A change with none of these differences says so: then it is the machine (something the
fingerprint does not see) or noise. :func:`attach` puts an :class:`Explanation` on each
history finding; regressions.json, the Markdown alert and the webhook payload carry it
(:meth:`analysis.gate.Finding.to_dict`), and the trends' change-point table shows its text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from loadgen.records.packages import PackageChange, diff_packages

if TYPE_CHECKING:  # no import cycle: gate imports this module for the Explanation type
    from analysis.gate import Finding
    from analysis.history import CostPoint, History, NightPoint, SeriesKey

NOTHING = "no package, suite or machine difference between the two nights: the machine or noise"


@dataclass(frozen=True)
class Explanation:
    """What differs between the last night before a change and the first night after it."""

    series: str  # the target as measured: ``flask``, ``flask@latest``
    before_run: str
    after_run: str
    before_night: str
    after_night: str
    packages: tuple[PackageChange, ...] = ()
    packages_known: bool = True  # both nights' package sets were stored
    suite_commit: tuple[str, str] | None = None  # (before, after), only when they differ
    machine: tuple[str, str] | None = None  # fingerprints (before, after), when they differ

    @property
    def text(self) -> str:
        """One line: ``2 packages changed: werkzeug 3.1.3 → 3.1.9, blinker 1.8.2 → 1.9.0``."""
        parts = []
        if self.packages:
            n = len(self.packages)
            listed = ", ".join(c.text() for c in self.packages)
            parts.append(f"{n} package{'s' if n != 1 else ''} changed: {listed}")
        if self.suite_commit:
            b, a = self.suite_commit
            parts.append(f"suite commit {b[:12] or '?'} → {a[:12] or '?'}")
        if self.machine:
            b, a = self.machine
            parts.append(f"machine fingerprint {b[:12]} → {a[:12]}")
        if not self.packages_known:
            parts.append(
                f"packages not stored for {self.series} on both nights "
                f"({self.before_night}, {self.after_night}): their difference is unknown"
            )
        return "; ".join(parts) if parts else NOTHING

    def to_dict(self) -> dict[str, Any]:
        """The keys a finding's dict gains: ``packages``, ``suite_commit`` and ``machine``
        (each only when they differ: ``packages`` always, as a list), ``explained``."""
        d: dict[str, Any] = {
            "compared": {
                "before": {"run_id": self.before_run, "night": self.before_night},
                "after": {"run_id": self.after_run, "night": self.after_night},
            },
            "packages": [c.to_dict() for c in self.packages],
            "packages_known": self.packages_known,
        }
        if self.suite_commit:
            d["suite_commit"] = dict(zip(("before", "after"), self.suite_commit, strict=True))
        if self.machine:
            d["machine"] = dict(zip(("before", "after"), self.machine, strict=True))
        d["explained"] = self.text
        return d


def explain_change(history: History, series: str, before_run: str, after_run: str) -> Explanation:
    """What differs for ``series`` between two stored runs (the nights either side of a
    change point)."""
    before, after = history.run_facts(before_run), history.run_facts(after_run)
    pb, pa = history.packages(before_run, series), history.packages(after_run, series)
    known = bool(pb) and bool(pa)

    def differs(key: str) -> tuple[str, str] | None:
        b, a = before.get(key, ""), after.get(key, "")
        return (b, a) if b != a else None

    return Explanation(
        series=series,
        before_run=before_run,
        after_run=after_run,
        before_night=before.get("night", ""),
        after_night=after.get("night", ""),
        packages=diff_packages(pb, pa) if known else (),
        packages_known=known,
        suite_commit=differs("suite_commit"),
        machine=differs("fingerprint"),
    )


def night_before(run_ids: Sequence[str], change_run_id: str) -> str | None:
    """The run just before ``change_run_id`` in a series' runs (oldest first); None when it
    is the first night or not in the series."""
    try:
        i = list(run_ids).index(change_run_id)
    except ValueError:
        return None
    return run_ids[i - 1] if i > 0 else None


def attach(
    findings: Sequence[Finding],
    history: History,
    series: Mapping[SeriesKey, Sequence[NightPoint]],
    cost_series: Mapping[str, Sequence[CostPoint]] | None = None,
) -> list[Finding]:
    """Every history finding with its :class:`Explanation` (``series``/``cost_series``: the
    nights the gate read, oldest first); within-run findings are returned as they are."""
    out = []
    for f in findings:
        if f.gate != "history":
            out.append(f)
            continue
        if f.metric == "cost":
            run_ids = [p.run_id for p in (cost_series or {}).get(f.target, ())]
        else:
            run_ids = [p.run_id for p in series.get((f.target, f.load, f.connections), ())]
        before = night_before(run_ids, f.change_run_id)
        if before is None:
            out.append(f)
            continue
        why = explain_change(history, f.target, before, f.change_run_id)
        out.append(replace(f, explanation=why))
    return out
