"""Channel series beside their pinned lock: which packages a ``<target>@latest`` (or ``@pre``)
series ran with that differ from the target's pinned lock.

A series' package set comes from the run folder's ``locks/<series>.txt`` (the lock it was built
from: the runner writes the resolved lock of every channel series and a copy of each pinned
one), else from the verifier's installed ``packages`` in ``run.json``. The pinned set is the
plain target's (``flask`` for ``flask@latest``) from the same run. Runs without a channel series
give nothing, so their report is as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.records import RunHeader
from loadgen.records.packages import (
    PackageChange,
    diff_packages,
    package_map,
    parse_lock,
    run_locks,
    split_series,
)


@dataclass(frozen=True)
class ChannelDiff:
    """One channel series of a run against its pinned lock."""

    series: str  # flask@latest
    pinned: str  # flask
    channel: str  # latest | pre
    changes: tuple[PackageChange, ...]
    known: bool  # both package sets were found (else ``changes`` is empty)

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "pinned": self.pinned,
            "channel": self.channel,
            "known": self.known,
            "packages": [c.to_dict() for c in self.changes],
        }


def package_sets(header: RunHeader, run_dir: Path | None) -> dict[str, dict[str, str]]:
    """Series -> package set of one run: its locks folder first, then the verdicts."""
    out: dict[str, dict[str, str]] = {}
    for v in header.verdicts:
        if v.get("target") and v.get("packages"):
            out[str(v["target"])] = package_map(v["packages"])
    if run_dir is not None:
        for series, text in run_locks(run_dir).items():
            pins = parse_lock(text)
            if pins:
                out[series] = pins
    return out


def _series(header: RunHeader, sets: Mapping[str, object]) -> list[str]:
    names = {str(v.get("target") or "") for v in header.verdicts} | set(sets)
    return sorted(n for n in names if n and split_series(n)[1] != "pinned")


def channel_diffs(runs: Iterable[tuple[RunHeader, Path | None]]) -> tuple[ChannelDiff, ...]:
    """Every channel series of the runs against its pinned lock (a later run's replaces an
    earlier one's for the same series); () when no run has a channel series."""
    found: dict[str, ChannelDiff] = {}
    for header, run_dir in runs:
        sets = package_sets(header, run_dir)
        for series in _series(header, sets):
            base, channel = split_series(series)
            mine, pinned = sets.get(series), sets.get(base)
            known = bool(mine) and bool(pinned)
            changes = diff_packages(pinned or {}, mine or {}) if known else ()
            found[series] = ChannelDiff(series, base, channel, changes, known)
    return tuple(found[s] for s in sorted(found))
