"""Bisect records: which changed package reproduces a drop (``fwbench bisect``).

Format history (``schema`` field):
- ``fwbench.bisect/1``: first version.

A bisect's folder holds ``bisect.json``: one :class:`BisectRecord`, the package sets compared
(``good`` and ``bad``, each a run id or a lock file), the changed packages, every candidate
environment measured (good plus one change, or a pair when one change needs another, or half of
the changed set when it is large) with its change in requests/s against good and the corrected
p-value, and the culprits. ``fwbench nightly``'s automatic bisects append the same records, one
a line, to ``bisect.jsonl`` next to ``regressions.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.records.jsonl import RecordError, append_json_line, check_version, json_objects
from loadgen.records.packages import PackageChange

BISECT_SCHEMA = "fwbench.bisect/1"
KNOWN_BISECT_SCHEMAS = frozenset({BISECT_SCHEMA})
BISECT_FILE = "bisect.json"  # in a bisect's folder
NIGHTLY_BISECT_FILE = "bisect.jsonl"  # next to a night's regressions.json


def _num(v: object) -> float | None:
    return None if v is None else float(v)  # type: ignore[arg-type]


def _change(c: PackageChange) -> dict[str, str]:
    return {"name": c.name, "good": c.before, "bad": c.after}


def _unchange(d: Mapping[str, Any]) -> PackageChange:
    name, good, bad = (str(d.get(k) or "") for k in ("name", "good", "bad"))
    return PackageChange(name, good, bad)


@dataclass(frozen=True)
class Measured:
    """One environment measured against good: the bad side, or a candidate."""

    label: str  # "bad", "+werkzeug", "+flask+werkzeug", "half-a"
    changes: tuple[PackageChange, ...]  # what differs from good (before: good, after: bad)
    round: int  # 1, or the binary search's level
    change_pct: float | None  # median requests/s vs good's, signed; None: not measured
    p_value: float | None  # Welch's, corrected across the round's tests
    trials: int  # good trials of this environment
    verdict: str  # culprit, partial, no effect, faster, reproduced, not reproduced, ...
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "packages": [_change(c) for c in self.changes],
            "round": self.round,
            "change_pct": self.change_pct,
            "p_value": self.p_value,
            "trials": self.trials,
            "verdict": self.verdict,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measured:
        return cls(
            label=str(d["label"]),
            changes=tuple(_unchange(c) for c in d.get("packages") or ()),
            round=int(d.get("round") or 1),
            change_pct=_num(d.get("change_pct")),
            p_value=_num(d.get("p_value")),
            trials=int(d.get("trials") or 0),
            verdict=str(d.get("verdict") or ""),
            detail=str(d.get("detail") or ""),
        )


@dataclass(frozen=True)
class Culprit:
    """A package whose change alone (or with the one it needs) reproduces the drop."""

    name: str
    good: str  # its version on the good side ("" when added)
    bad: str  # on the bad side ("" when removed)
    change_pct: float
    p_value: float
    candidate: str  # the candidate that showed it ("+name", or "+name+other" for a pair)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "good": self.good,
            "bad": self.bad,
            "change_pct": self.change_pct,
            "p_value": self.p_value,
            "candidate": self.candidate,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Culprit:
        return cls(
            str(d["name"]),
            str(d.get("good") or ""),
            str(d.get("bad") or ""),
            float(d["change_pct"]),
            float(d["p_value"]),
            str(d.get("candidate") or ""),
        )


@dataclass(frozen=True)
class BisectRecord:
    target: str
    good: str  # the good side: a run id or a lock file
    bad: str
    changed: tuple[PackageChange, ...]
    bad_side: Measured | None  # bad vs good in the last round; None when nothing was measured
    candidates: tuple[Measured, ...]
    culprits: tuple[Culprit, ...]
    trials: int  # asked per environment
    wall_s: float
    run_dir: str  # the bisect's folder (its rounds are run folders inside it)
    started_at: str
    load: Mapping[str, Any]  # duration, warmup, connections
    note: str = ""  # why there is no culprit, when there is none
    # --profile: the differential flame graph of bad against good (a path in the folder) and
    # the functions whose samples per 1,000 requests changed most ({function, good, bad})
    flame_diff: str = ""
    flame_top: tuple[Mapping[str, Any], ...] = ()
    schema: str = BISECT_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "target": self.target,
            "good": self.good,
            "bad": self.bad,
            "changed": [_change(c) for c in self.changed],
            "bad_side": self.bad_side.to_dict() if self.bad_side else None,
            "candidates": [c.to_dict() for c in self.candidates],
            "culprits": [c.to_dict() for c in self.culprits],
            "trials": self.trials,
            "wall_s": self.wall_s,
            "run_dir": self.run_dir,
            "started_at": self.started_at,
            "load": dict(self.load),
            "note": self.note,
            "flame_diff": self.flame_diff,
            "flame_top": [dict(r) for r in self.flame_top],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BisectRecord:
        check_version("bisect format", d.get("schema"), KNOWN_BISECT_SCHEMAS)
        side = d.get("bad_side")
        return cls(
            target=str(d["target"]),
            good=str(d.get("good") or ""),
            bad=str(d.get("bad") or ""),
            changed=tuple(_unchange(c) for c in d.get("changed") or ()),
            bad_side=Measured.from_dict(side) if isinstance(side, Mapping) else None,
            candidates=tuple(Measured.from_dict(c) for c in d.get("candidates") or ()),
            culprits=tuple(Culprit.from_dict(c) for c in d.get("culprits") or ()),
            trials=int(d.get("trials") or 0),
            wall_s=float(d.get("wall_s") or 0.0),
            run_dir=str(d.get("run_dir") or ""),
            started_at=str(d.get("started_at") or ""),
            load=dict(d.get("load") or {}),
            note=str(d.get("note") or ""),
            flame_diff=str(d.get("flame_diff") or ""),
            flame_top=tuple(dict(r) for r in d.get("flame_top") or () if isinstance(r, Mapping)),
            schema=str(d["schema"]),
        )

    def write(self, folder: Path) -> Path:
        """``bisect.json`` in ``folder``, replaced atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / BISECT_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(tmp, path)
        return path


def read_bisect(path: Path) -> BisectRecord:
    """A ``bisect.json``; :class:`RecordError` names the file when it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: not a readable bisect record ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object")
    try:
        return BisectRecord.from_dict(data)
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None


def append_bisect(path: Path, rec: BisectRecord) -> None:
    """One record as a line of ``bisect.jsonl`` (a night's automatic bisects)."""
    append_json_line(path, rec.to_dict())


def read_bisects(path: Path) -> Iterator[BisectRecord]:
    for n, obj in json_objects(path):
        try:
            yield BisectRecord.from_dict(obj)
        except RecordError as exc:
            raise RecordError(f"{path}:{n}: {exc}") from None
