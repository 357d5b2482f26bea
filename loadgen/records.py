"""Trial records: one immutable, versioned record per trial, written as JSON lines.

Format history (``schema`` field):
- ``fwbench.trial/1``: first version.

A run directory ``reports/runs/<run-id>/`` holds:
- ``run.json``: the run's header (run id, start time, config used, machine fingerprint,
  verifier verdicts of the targets);
- ``trials.jsonl``: one :class:`TrialRecord` per line, appended (and flushed) as each trial
  finishes, so an interrupted run keeps every finished trial;
- ``samples/<trial_id>.jsonl``: the sampler's time series of that trial;
- ``logs/``: the servers' output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SCHEMA = "fwbench.trial/1"
RUN_SCHEMA = "fwbench.run/1"
KNOWN_SCHEMAS = frozenset({SCHEMA})

TrialStatus = Literal["ok", "failed"]
ERROR_KINDS = ("connect", "timeout", "reset", "status", "body", "parse")


class RecordError(ValueError):
    pass


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
    scenario: str  # "hello" | "browse"
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
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in ("ok", "failed"):
            raise RecordError(f"status {self.status!r}")
        if self.status == "failed" and not self.failure:
            raise RecordError("a failed trial says why")
        if self.requests < 0 or self.duration_s < 0:
            raise RecordError("negative counts")

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrialRecord:
        schema = d.get("schema")
        if schema not in KNOWN_SCHEMAS:
            raise RecordError(
                f"record version {schema!r} is not one this fwbench reads "
                f"(knows {', '.join(sorted(KNOWN_SCHEMAS))})"
            )
        data = dict(d)
        for key in ("latency_ms", "latency_uncorrected_ms"):
            if data.get(key) is not None:
                data[key] = Latency(**data[key])
        for key in ("target_stats", "client_stats"):
            if data.get(key) is not None:
                data[key] = ProcStats(**data[key])
        return cls(**data)


def append_record(path: Path, record: TrialRecord) -> None:
    """Append one record as a line and make it durable before returning."""
    line = json.dumps(record.to_dict(), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_records(path: Path) -> Iterator[TrialRecord]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError:
                # A run killed mid-write leaves at most one torn last line: skip it.
                continue
            try:
                yield TrialRecord.from_dict(raw)
            except (TypeError, RecordError) as exc:
                raise RecordError(f"{path}:{n}: {exc}") from None
