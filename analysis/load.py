"""Read run directories into pandas frames: one row per trial, samples in a frame of their own.

A run directory (see :mod:`loadgen.records`) holds ``run.json``, ``trials.jsonl`` and
``samples/<trial_id with '/' as '__'>.jsonl``. Versions this code does not know are refused
with a message naming the file and the versions it does know; everything else is read
tolerantly (an interrupted run has no ``finished_at``, maybe no trials, maybe torn samples).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import LoadError
from loadgen.records import (
    ROW_COLUMNS,
    CostRecord,
    RecordError,
    RunHeader,
    TrialRecord,
    read_header,
    read_records,
    run_costs,
    trial_row,
)
from loadgen.records.samples import ROLES, cpu_pct_series, read_samples

__all__ = ["LoadError", "Loaded", "RunInfo", "load_runs", "read_run_info", "samples_name"]


@dataclass(frozen=True)
class RunInfo(RunHeader):
    """The header of one run (the schema's :class:`~loadgen.records.RunHeader`) and its folder."""

    path: Path = Path()


@dataclass(frozen=True)
class Loaded:
    """Everything read from one or more runs."""

    runs: tuple[RunInfo, ...]
    trials: pd.DataFrame  # one row per trial: TRIAL_COLUMNS
    samples: pd.DataFrame  # one row per (sample, role): SAMPLE_COLUMNS
    verdicts: pd.DataFrame  # one row per (run, target): VERDICT_COLUMNS
    costs: tuple[CostRecord, ...] = field(default=())  # cost.jsonl of every run, in order


TRIAL_COLUMNS: tuple[str, ...] = ROW_COLUMNS
"""One row per trial: the record's flat row (:func:`loadgen.records.trial_row`)."""

SAMPLE_FIELDS = ("cpu_user_s", "cpu_system_s", "rss", "uss", "threads", "procs")
SAMPLE_COLUMNS: tuple[str, ...] = (
    "run_id", "trial_id", "role", "t", "elapsed_s", *SAMPLE_FIELDS, "cpu_pct",
)  # fmt: skip

VERDICT_COLUMNS: tuple[str, ...] = (
    "run_id", "target", "framework", "framework_version", "server", "server_version", "python",
    "kind", "ok", "failures", "warnings", "startup_s", "idle_rss_bytes", "keepalive",
    "package_count", "env_size_bytes", "scenarios", "protocols",
)  # fmt: skip


def samples_name(trial_id: str) -> str:
    """The samples file of a trial: its id with '/' replaced by '__'."""
    return trial_id.replace("/", "__") + ".jsonl"


def read_run_info(run_dir: Path) -> RunInfo:
    try:
        header = read_header(run_dir)
    except RecordError as exc:
        raise LoadError(str(exc)) from None
    return RunInfo(path=run_dir, **{f.name: getattr(header, f.name) for f in fields(header)})


def read_trials(run_dir: Path) -> list[TrialRecord]:
    path = run_dir / "trials.jsonl"
    if not path.is_file():
        return []
    try:
        return list(read_records(path))
    except RecordError as exc:
        raise LoadError(str(exc)) from None


def read_cost_records(run_dir: Path) -> list[CostRecord]:
    try:
        return run_costs(run_dir)
    except RecordError as exc:
        raise LoadError(str(exc)) from None


def trials_frame(records: Iterable[TrialRecord]) -> pd.DataFrame:
    return pd.DataFrame([trial_row(r) for r in records], columns=list(TRIAL_COLUMNS))


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def read_sample_rows(path: Path, run_id: str, trial_id: str) -> list[dict[str, Any]]:
    """Rows of one samples file, one per (sample, role), each with the role's CPU % of one core
    over its sampling interval (:func:`loadgen.records.samples.cpu_pct_series`)."""
    try:
        samples = read_samples(path)
    except RecordError as exc:
        raise LoadError(str(exc)) from None
    pct = {role: cpu_pct_series(samples, role) for role in ROLES}
    rows: list[dict[str, Any]] = []
    for i, s in enumerate(samples):
        for role in ROLES:
            r = s.for_role(role)
            rows.append(
                {
                    "run_id": run_id,
                    "trial_id": trial_id,
                    "role": role,
                    "t": s.t,
                    "cpu_user_s": r.cpu_user_s,
                    "cpu_system_s": r.cpu_system_s,
                    "rss": r.rss_bytes,
                    "uss": r.uss_bytes,
                    "threads": r.threads,
                    "procs": r.procs,
                    "cpu_pct": pct[role][i],
                }
            )
    return rows


def samples_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows of :func:`read_sample_rows`, with ``elapsed_s`` from each trial's first sample."""
    df = pd.DataFrame(rows, columns=[c for c in SAMPLE_COLUMNS if c != "elapsed_s"])
    for col in ("t", *SAMPLE_FIELDS, "cpu_pct"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df = df.sort_values(["run_id", "trial_id", "role", "t"], kind="stable").reset_index(drop=True)
    keys = [df["run_id"], df["trial_id"], df["role"]]
    df["elapsed_s"] = df["t"] - df.groupby(keys)["t"].transform("min")
    return df[list(SAMPLE_COLUMNS)]


def verdict_row(run_id: str, v: dict[str, Any]) -> dict[str, Any]:
    checks = [c for c in v.get("checks") or () if isinstance(c, dict)]

    def notes(status: str) -> str:
        return "; ".join(
            f"{c.get('name', '?')}: {c.get('reason', '')}".rstrip(": ")
            for c in checks
            if c.get("status") == status
        )

    packages = v.get("packages")
    count = v.get("package_count")
    if count is None and isinstance(packages, list):
        count = len(packages)
    return {
        "run_id": run_id,
        "target": str(v.get("target", "")),
        "framework": str(v.get("framework", "")),
        "framework_version": str(v.get("framework_version", "")),
        "server": str(v.get("server", "")),
        "server_version": str(v.get("server_version", "")),
        "python": str(v.get("python", "")),
        "kind": str(v.get("kind", "")),
        "ok": bool(v.get("ok")),
        "failures": notes("fail"),
        "warnings": notes("warn"),
        "startup_s": _number(v.get("startup_s")),
        "idle_rss_bytes": _number(v.get("idle_rss_bytes")),
        "keepalive": v.get("keepalive") if isinstance(v.get("keepalive"), bool) else None,
        "package_count": _number(count),
        "env_size_bytes": _number(v.get("env_size_bytes")),
        "scenarios": scenario_verdicts(v),
        "protocols": scenario_verdicts(v, "protocols"),
    }


def scenario_verdicts(v: dict[str, Any], key: str = "scenarios") -> dict[str, dict[str, Any]]:
    """A verdict's ``scenarios`` (name -> ``{"ok": True/False/None, "reason"}``, None: not
    applicable), or its HTTP/2 ``protocols`` (``key``); {} for a verdict written before
    they existed."""
    raw = v.get(key)
    out: dict[str, dict[str, Any]] = {}
    for name, sv in (raw if isinstance(raw, dict) else {}).items():
        if isinstance(sv, dict):
            ok = sv.get("ok")
            out[str(name)] = {
                "ok": ok if isinstance(ok, bool) else None,
                "reason": str(sv.get("reason") or ""),
            }
    return out


def scenario_verdict(verdict: dict[str, Any] | None, scenario: str) -> dict[str, Any] | None:
    """The verifier's ``{"ok", "reason"}`` for a scenario beyond hello (ok None: not applicable,
    or not declared); None for hello or without a verdict."""
    if verdict is None or scenario == "hello":
        return None
    table = verdict.get("scenarios")
    known = table if isinstance(table, dict) else {}
    return known.get(scenario) or {"ok": None, "reason": "the target does not serve it"}


def protocol_verdict(verdict: dict[str, Any] | None, protocol: str) -> dict[str, Any]:
    """The verifier's ``{"ok", "reason"}`` for an HTTP/2 protocol of a verdict row's
    ``protocols``; {} for http1, an undeclared protocol, or a verdict without protocols."""
    table = (verdict or {}).get("protocols")
    found = table.get(protocol) if isinstance(table, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def load_runs(run_dirs: Sequence[Path], *, samples: bool = True) -> Loaded:
    """Read every run directory; refuses unknown versions with :class:`LoadError`."""
    if not run_dirs:
        raise LoadError("no run directory given")
    runs: list[RunInfo] = []
    records: list[TrialRecord] = []
    sample_rows: list[dict[str, Any]] = []
    verdict_rows: list[dict[str, Any]] = []
    costs: list[CostRecord] = []
    for run_dir in run_dirs:
        path = Path(run_dir)
        info = read_run_info(path)
        runs.append(info)
        trials = read_trials(path)
        records.extend(trials)
        costs.extend(read_cost_records(path))
        verdict_rows.extend(verdict_row(info.run_id, v) for v in info.verdicts)
        if samples:
            for r in trials:
                path = Path(run_dir) / "samples" / samples_name(r.trial_id)
                if path.is_file():
                    sample_rows.extend(read_sample_rows(path, r.run_id, r.trial_id))
    return Loaded(
        runs=tuple(runs),
        trials=trials_frame(records),
        samples=samples_frame(sample_rows),
        verdicts=pd.DataFrame(verdict_rows, columns=list(VERDICT_COLUMNS)),
        costs=tuple(costs),
    )
