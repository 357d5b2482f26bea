"""Trial records: one immutable, versioned record per trial, written as JSON lines.

Format history (``schema`` field):
- ``fwbench.trial/1``: first version. Later additions, each optional with a default (older
  records read as before): ``status = "not_applicable"`` (the target does not serve the
  setting's scenario; ``failure`` says why, nothing was measured), ``database`` (the scenario
  database's kind, engine and version) and ``database_stats`` (a PostgreSQL server's
  processes over the window); ``protocol`` (``http1`` when absent), ``streams`` (1) and
  ``message_size`` (ws-echo's message bytes, None otherwise). For ``scenario = "ws-echo"``
  ``requests`` counts echoed messages and ``rps`` is messages/s; latency is the round trip.

A run directory ``reports/runs/<run-id>/`` holds:
- ``run.json``: the run's header (run id, start time, config used, machine fingerprint,
  verifier verdicts of the targets);
- ``trials.jsonl``: one :class:`TrialRecord` per line, appended (and flushed) as each trial
  finishes, so an interrupted run keeps every finished trial;
- ``samples/<trial_id>.jsonl``: the sampler's time series of that trial;
- ``logs/``: the servers' output.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from loadgen.records.jsonl import (
    RecordError,
    append_json_line,
    check_version,
    read_typed,
)

SCHEMA = "fwbench.trial/1"
KNOWN_SCHEMAS = frozenset({SCHEMA})

TrialStatus = Literal["ok", "failed", "not_applicable"]
TRIAL_STATUSES: tuple[str, ...] = ("ok", "failed", "not_applicable")
ERROR_KINDS = ("connect", "timeout", "reset", "status", "body", "parse")
LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max")
"""The percentiles of a :class:`Latency`, in its field names (milliseconds)."""


@dataclass(frozen=True)
class Latency:
    """Percentiles in milliseconds from an HDR histogram (1 µs..60 s, 3 significant digits)."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    def percentiles(self) -> dict[str, float]:
        """``{"p50": ..., "p90": ..., "p99": ..., "p999": ..., "max": ...}`` in ms."""
        return {key: getattr(self, key) for key in LATENCY_KEYS}


@dataclass(frozen=True)
class ProcStats:
    """Sampler summary for a set of processes over the measured window."""

    cpu_mean_pct: float  # of one core (100 = one core busy)
    cpu_max_pct: float
    cpu_user_s: float
    cpu_system_s: float
    rss_peak_bytes: int
    uss_peak_bytes: int
    threads_max: int
    ctx_switches: int
    processes_max: int


@dataclass(frozen=True)
class TrialRecord:
    run_id: str
    trial_id: str  # "<target>/<load>/c<connections>/t<trial>"
    trial: int  # 1-based trial number of this (target, load, connections)
    started_at: str  # ISO 8601, UTC
    status: TrialStatus
    failure: str  # why it failed, "" when ok
    # what was measured
    target: str
    framework: str
    framework_version: str
    server: str
    server_version: str
    python: str
    kind: str
    keepalive: bool
    workers: int  # server worker processes
    # how it was measured
    client: str  # "raw" | "locust"
    client_settings: dict[str, Any]  # procs, cpus, check_every, timeout; locust workers, users
    load: str  # the load setting's name
    scenario: str  # "hello" | "json" | "db" | "queries" | "fortunes" | "browse"
    model: str  # "closed" | "open"
    connections: int
    rate: float | None  # asked requests/s for the open model
    duration_s: float  # measured window
    warmup_s: float
    # what came out
    requests: int
    rps: float
    errors: dict[str, int]
    reconnects: int
    late: int  # open model: requests that could not be sent on time
    latency_ms: Latency | None  # corrected for the open model
    latency_uncorrected_ms: Latency | None  # open model only: from the actual send time
    hist: str  # encoded HDR histogram of latencies in µs ("" when none)
    hist_uncorrected: str
    target_stats: ProcStats | None
    client_stats: ProcStats | None
    sampler_cpu_pct: float | None  # the sampler's own cost, % of one core
    cpu_s_per_1k: float | None  # target CPU-seconds per 1,000 requests
    client_cpu_pct: float | None  # client CPU as % of its CPU set
    client_saturated: bool
    other_cpu_pct: float | None  # CPU used by unrelated processes during the window
    startup_s: float | None
    idle_rss_bytes: int | None
    machine: dict[str, Any]  # the fingerprint (see loadgen.machine)
    workers_finished: int | None = None  # locust: workers that finished
    schema: str = SCHEMA
    # the scenario database ({} for hello/json): kind ("sqlite"/"postgres"), engine, version
    database: dict[str, Any] = field(default_factory=dict)
    database_stats: ProcStats | None = None  # the PostgreSQL server's processes (not SQLite's)
    extra: dict[str, Any] = field(default_factory=dict)
    protocol: str = "http1"  # "http1" | "h2c" | "h2" (loadgen.records.scenarios.PROTOCOLS)
    streams: int = 1  # concurrent streams per connection (HTTP/2)
    message_size: int | None = None  # ws-echo: bytes per message; None for HTTP scenarios

    def __post_init__(self) -> None:
        if self.status not in TRIAL_STATUSES:
            raise RecordError(f"status {self.status!r}")
        if self.status == "failed" and not self.failure:
            raise RecordError("a failed trial says why")
        if self.status == "not_applicable" and not self.failure:
            raise RecordError("a not-applicable trial says why (in failure)")
        if self.requests < 0 or self.duration_s < 0:
            raise RecordError("negative counts")

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialRecord:
        check_version("record version", d.get("schema"), KNOWN_SCHEMAS)
        data = dict(d)
        for key in ("latency_ms", "latency_uncorrected_ms"):
            if data.get(key) is not None:
                data[key] = Latency(**data[key])
        for key in ("target_stats", "client_stats", "database_stats"):
            if data.get(key) is not None:
                data[key] = ProcStats(**data[key])
        return cls(**data)


# --- the flat row of a record (one row per trial in analysis' frames) -------------------------

_ROW_SKIPPED = frozenset(
    {"client_settings", "latency_uncorrected_ms", "workers_finished", "schema", "extra"}
)
"""Fields with no column: nested settings, the open loop's second latency, locust details."""
_STATS = ("target_stats", "client_stats", "database_stats")


def _stats_columns(role: str) -> tuple[str, ...]:
    return (f"{role}_cpu_s", *(f"{role}_{f.name}" for f in fields(ProcStats)))


def _columns_of(name: str) -> tuple[str, ...]:
    if name == "errors":
        return ("errors_total", *(f"errors_{k}" for k in ERROR_KINDS), "errors_other")
    if name == "latency_ms":
        return ("latency_count", "mean_ms", *(f"{k}_ms" for k in LATENCY_KEYS))
    if name in _STATS:
        return _stats_columns(name.removesuffix("_stats"))
    if name == "machine":
        return ("fingerprint",)
    if name == "database":
        return ("database_kind", "database_version")
    return (name,)


ROW_COLUMNS: tuple[str, ...] = tuple(
    col for f in fields(TrialRecord) if f.name not in _ROW_SKIPPED for col in _columns_of(f.name)
)
"""The columns of :func:`trial_row`, in the record's field order."""


def trial_row(r: TrialRecord) -> dict[str, Any]:
    """The record as one flat row (see :data:`ROW_COLUMNS`): nested values spread into columns
    by one rule each, so a field added to :class:`TrialRecord` reaches the frame by itself."""
    row: dict[str, Any] = {}
    for f in fields(r):
        name, value = f.name, getattr(r, f.name)
        if name in _ROW_SKIPPED:
            continue
        if name == "errors":
            row["errors_total"] = r.error_count
            row.update({f"errors_{k}": int(value.get(k, 0)) for k in ERROR_KINDS})
            row["errors_other"] = sum(v for k, v in value.items() if k not in ERROR_KINDS)
        elif name == "latency_ms":
            row["latency_count"] = value.count if value else None
            row["mean_ms"] = value.mean if value else None
            row.update({f"{k}_ms": getattr(value, k) if value else None for k in LATENCY_KEYS})
        elif name in _STATS:
            role = name.removesuffix("_stats")
            row[f"{role}_cpu_s"] = (value.cpu_user_s + value.cpu_system_s) if value else None
            for sf in fields(ProcStats):
                row[f"{role}_{sf.name}"] = getattr(value, sf.name) if value else None
        elif name == "machine":
            row["fingerprint"] = str(value.get("fingerprint", ""))
        elif name == "database":
            row["database_kind"] = str(value.get("kind", ""))
            row["database_version"] = str(value.get("version", ""))
        else:
            row[name] = value
    if row["cpu_s_per_1k"] is None and row["target_cpu_s"] is not None and r.requests:
        row["cpu_s_per_1k"] = row["target_cpu_s"] / r.requests * 1000.0
    return row


def append_record(path: Path, record: TrialRecord) -> None:
    """Append one record as a line and make it durable before returning."""
    append_json_line(path, record.to_dict())


def read_records(path: Path) -> Iterator[TrialRecord]:
    """The records of a ``trials.jsonl``; a torn last line is skipped (see
    :mod:`loadgen.records.jsonl`), any other bad line raises :class:`RecordError`."""
    return read_typed(path, TrialRecord.from_dict)
