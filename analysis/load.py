"""Read run directories into pandas frames: one row per trial, samples in a frame of their own.

A run directory (see :mod:`loadgen.records`) holds ``run.json``, ``trials.jsonl`` and
``samples/<trial_id with '/' as '__'>.jsonl``. Versions this code does not know are refused
with a message naming the file and the versions it does know; everything else is read
tolerantly (an interrupted run has no ``finished_at``, maybe no trials, maybe torn samples).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import LoadError
from loadgen.records import ERROR_KINDS, RUN_SCHEMA, RecordError, TrialRecord, read_records

KNOWN_RUN_SCHEMAS = frozenset({RUN_SCHEMA})

__all__ = ["LoadError", "Loaded", "RunInfo", "load_runs", "read_run_info", "samples_name"]


@dataclass(frozen=True)
class RunInfo:
    """The header of one run (``run.json``)."""

    run_id: str
    path: Path
    started_at: str
    finished_at: str | None
    interrupted: bool
    config: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    machine_warnings: tuple[str, ...] = ()
    verdicts: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Loaded:
    """Everything read from one or more runs."""

    runs: tuple[RunInfo, ...]
    trials: pd.DataFrame  # one row per trial: TRIAL_COLUMNS
    samples: pd.DataFrame  # one row per (sample, role): SAMPLE_COLUMNS
    verdicts: pd.DataFrame  # one row per (run, target): VERDICT_COLUMNS


LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max")

TRIAL_COLUMNS: tuple[str, ...] = (
    "run_id", "trial_id", "trial", "started_at", "status", "failure",
    "target", "framework", "framework_version", "server", "server_version", "python", "kind",
    "keepalive", "workers",
    "client", "load", "scenario", "model", "connections", "rate", "duration_s", "warmup_s",
    "requests", "rps", "errors_total", *(f"errors_{k}" for k in ERROR_KINDS), "errors_other",
    "reconnects", "late",
    "latency_count", "latency_mean_ms", *(f"{k}_ms" for k in LATENCY_KEYS),
    "hist", "hist_uncorrected",
    "target_cpu_s", "target_cpu_mean_pct", "target_rss_peak_bytes", "target_uss_peak_bytes",
    "target_threads_max", "target_procs_max",
    "client_cpu_s", "client_cpu_pct", "client_saturated",
    "sampler_cpu_pct", "cpu_s_per_1k", "other_cpu_pct",
    "startup_s", "idle_rss_bytes", "fingerprint",
)  # fmt: skip

SAMPLE_ROLES = ("target", "client")
SAMPLE_FIELDS = ("cpu_user_s", "cpu_system_s", "rss", "uss", "threads", "procs")
# loadgen.sampler writes ``rss_bytes``/``uss_bytes``; both spellings are read.
_ALIASES = {"rss": "rss_bytes", "uss": "uss_bytes"}
SAMPLE_COLUMNS: tuple[str, ...] = (
    "run_id", "trial_id", "role", "t", "elapsed_s", *SAMPLE_FIELDS, "cpu_pct",
)  # fmt: skip

VERDICT_COLUMNS: tuple[str, ...] = (
    "run_id", "target", "framework", "framework_version", "server", "server_version", "python",
    "kind", "ok", "failures", "warnings", "startup_s", "idle_rss_bytes", "keepalive",
    "package_count", "env_size_bytes",
)  # fmt: skip


def samples_name(trial_id: str) -> str:
    """The samples file of a trial: its id with '/' replaced by '__'."""
    return trial_id.replace("/", "__") + ".jsonl"


def read_run_info(run_dir: Path) -> RunInfo:
    path = run_dir / "run.json"
    if not path.is_file():
        raise LoadError(f"{run_dir}: not a run directory (no run.json)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise LoadError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise LoadError(f"{path}: expected a JSON object")
    schema = raw.get("schema")
    if schema not in KNOWN_RUN_SCHEMAS:
        raise LoadError(
            f"{path}: run version {schema!r} is not one this fwbench reads "
            f"(knows {', '.join(sorted(KNOWN_RUN_SCHEMAS))}); use the fwbench that wrote it"
        )
    finished = raw.get("finished_at")
    verdicts = tuple(v for v in raw.get("verdicts") or () if isinstance(v, dict))
    return RunInfo(
        run_id=str(raw.get("run_id") or run_dir.name),
        path=run_dir,
        started_at=str(raw.get("started_at") or ""),
        finished_at=None if finished is None else str(finished),
        interrupted=bool(raw.get("interrupted")) or finished is None,
        config=dict(raw.get("config") or {}),
        machine=dict(raw.get("machine") or {}),
        machine_warnings=tuple(str(w) for w in raw.get("machine_warnings") or ()),
        verdicts=verdicts,
    )


def read_trials(run_dir: Path) -> list[TrialRecord]:
    path = run_dir / "trials.jsonl"
    if not path.is_file():
        return []
    try:
        return list(read_records(path))
    except RecordError as exc:
        raise LoadError(str(exc)) from None


def trial_row(r: TrialRecord) -> dict[str, Any]:
    lat = r.latency_ms
    ts, cs = r.target_stats, r.client_stats
    row: dict[str, Any] = {
        "run_id": r.run_id,
        "trial_id": r.trial_id,
        "trial": r.trial,
        "started_at": r.started_at,
        "status": r.status,
        "failure": r.failure,
        "target": r.target,
        "framework": r.framework,
        "framework_version": r.framework_version,
        "server": r.server,
        "server_version": r.server_version,
        "python": r.python,
        "kind": r.kind,
        "keepalive": r.keepalive,
        "workers": r.workers,
        "client": r.client,
        "load": r.load,
        "scenario": r.scenario,
        "model": r.model,
        "connections": r.connections,
        "rate": r.rate,
        "duration_s": r.duration_s,
        "warmup_s": r.warmup_s,
        "requests": r.requests,
        "rps": r.rps,
        "errors_total": r.error_count,
        "reconnects": r.reconnects,
        "late": r.late,
        "latency_count": lat.count if lat else None,
        "latency_mean_ms": lat.mean if lat else None,
        "hist": r.hist,
        "hist_uncorrected": r.hist_uncorrected,
        "target_cpu_s": (ts.cpu_user_s + ts.cpu_system_s) if ts else None,
        "target_cpu_mean_pct": ts.cpu_mean_pct if ts else None,
        "target_rss_peak_bytes": ts.rss_peak_bytes if ts else None,
        "target_uss_peak_bytes": ts.uss_peak_bytes if ts else None,
        "target_threads_max": ts.threads_max if ts else None,
        "target_procs_max": ts.processes_max if ts else None,
        "client_cpu_s": (cs.cpu_user_s + cs.cpu_system_s) if cs else None,
        "client_cpu_pct": r.client_cpu_pct,
        "client_saturated": r.client_saturated,
        "sampler_cpu_pct": r.sampler_cpu_pct,
        "cpu_s_per_1k": r.cpu_s_per_1k,
        "other_cpu_pct": r.other_cpu_pct,
        "startup_s": r.startup_s,
        "idle_rss_bytes": r.idle_rss_bytes,
        "fingerprint": str(r.machine.get("fingerprint", "")),
    }
    for kind in ERROR_KINDS:
        row[f"errors_{kind}"] = int(r.errors.get(kind, 0))
    row["errors_other"] = sum(v for k, v in r.errors.items() if k not in ERROR_KINDS)
    for key in LATENCY_KEYS:
        row[f"{key}_ms"] = getattr(lat, key) if lat else None
    if row["cpu_s_per_1k"] is None and ts and r.requests:
        row["cpu_s_per_1k"] = (ts.cpu_user_s + ts.cpu_system_s) / r.requests * 1000.0
    return row


def trials_frame(records: Iterable[TrialRecord]) -> pd.DataFrame:
    return pd.DataFrame([trial_row(r) for r in records], columns=list(TRIAL_COLUMNS))


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def read_samples(path: Path, run_id: str, trial_id: str) -> list[dict[str, Any]]:
    """Rows of one samples file: tolerant of torn lines, missing roles and missing keys.

    The header line (``{"schema": "fwbench.samples/1", ...}``) has no ``t`` and is skipped.
    """
    rows: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return rows
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        t = _number(obj.get("t"))
        if t is None:
            continue
        for role in SAMPLE_ROLES:
            part = obj.get(role)
            if not isinstance(part, dict):
                continue
            row: dict[str, Any] = {"run_id": run_id, "trial_id": trial_id, "role": role, "t": t}
            for key in SAMPLE_FIELDS:
                value = part.get(key)
                if value is None and key in _ALIASES:
                    value = part.get(_ALIASES[key])
                row[key] = _number(value)
            rows.append(row)
    return rows


def samples_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Samples with ``elapsed_s`` from each trial's first sample and CPU % of one core."""
    df = pd.DataFrame(
        rows, columns=[c for c in SAMPLE_COLUMNS if c not in ("elapsed_s", "cpu_pct")]
    )
    for col in ("t", *SAMPLE_FIELDS):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df = df.sort_values(["run_id", "trial_id", "role", "t"], kind="stable").reset_index(drop=True)
    keys = [df["run_id"], df["trial_id"], df["role"]]
    df["elapsed_s"] = df["t"] - df.groupby(keys)["t"].transform("min")
    cpu = df["cpu_user_s"].fillna(0.0) + df["cpu_system_s"].fillna(0.0)
    cpu = cpu.where(df["cpu_user_s"].notna() | df["cpu_system_s"].notna())
    d_cpu = cpu.groupby(keys).diff()
    d_t = df.groupby(keys)["t"].diff()
    pct = (d_cpu / d_t * 100.0).where(d_t > 0)
    df["cpu_pct"] = pct.clip(lower=0.0)
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
    }


def load_runs(run_dirs: Sequence[Path], *, samples: bool = True) -> Loaded:
    """Read every run directory; refuses unknown versions with :class:`LoadError`."""
    if not run_dirs:
        raise LoadError("no run directory given")
    runs: list[RunInfo] = []
    records: list[TrialRecord] = []
    sample_rows: list[dict[str, Any]] = []
    verdict_rows: list[dict[str, Any]] = []
    for run_dir in run_dirs:
        info = read_run_info(Path(run_dir))
        runs.append(info)
        trials = read_trials(info.path)
        records.extend(trials)
        verdict_rows.extend(verdict_row(info.run_id, v) for v in info.verdicts)
        if samples:
            for r in trials:
                path = info.path / "samples" / samples_name(r.trial_id)
                if path.is_file():
                    sample_rows.extend(read_samples(path, r.run_id, r.trial_id))
    return Loaded(
        runs=tuple(runs),
        trials=trials_frame(records),
        samples=samples_frame(sample_rows),
        verdicts=pd.DataFrame(verdict_rows, columns=list(VERDICT_COLUMNS)),
    )
