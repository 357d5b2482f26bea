"""Cost records: user-space instructions per request, counted under callgrind, one per target.

Format history (``schema`` field):
- ``fwbench.cost/1``: first version.

A run directory holds ``cost.jsonl`` next to ``trials.jsonl`` when the run had a cost pass
(``fwbench cost``, ``fwbench run --cost``, ``[nightly] cost = true``): one :class:`CostRecord`
per target and fresh server, appended as each target finishes. A target that could not be
counted (no environment, no start under valgrind, a wrong answer) has a record too, with
``status = "failed"`` and the reason: never a silent gap.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from loadgen.records.jsonl import (
    RecordError,
    append_json_line,
    check_version,
    read_typed,
)

COST_SCHEMA = "fwbench.cost/1"
KNOWN_COST_SCHEMAS = frozenset({COST_SCHEMA})
COST_FILE = "cost.jsonl"

CostStatus = Literal["ok", "failed"]

COST_LIMITS = (
    "Instructions per request count the user-space instructions the server's processes ran "
    "(callgrind, exact and repeatable); kernel work (syscalls, the network stack), waiting, "
    "lock contention and multi-core effects are not in it, and it is measured at low "
    "concurrency (one keep-alive connection). It complements requests/s; it is neither a "
    "throughput nor a latency figure."
)
"""What the figure is and is not: shown wherever the figure is (command, report, compare)."""


def spread_pct(values: Sequence[float]) -> float:
    """(max - min) / median × 100: how far apart the windows are, in percent of the median."""
    if not values:
        return 0.0
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid * 100.0 if mid else 0.0


@dataclass(frozen=True)
class CostProcess:
    """One process of the server's tree: its share of the count."""

    pid: int
    command: str  # the process's command line (shortened)
    instructions_per_request: float  # median over the windows
    share_pct: float  # of the target's instructions per request

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostProcess:
        return cls(
            pid=int(d["pid"]),
            command=str(d.get("command", "")),
            instructions_per_request=float(d["instructions_per_request"]),
            share_pct=float(d.get("share_pct", 0.0)),
        )


@dataclass(frozen=True)
class CostRecord:
    run_id: str
    target: str
    started_at: str  # ISO 8601, UTC
    status: CostStatus
    failure: str  # why it could not be counted; "" when ok
    framework: str = ""
    framework_version: str = ""
    server: str = ""
    server_version: str = ""
    python: str = ""
    requests_per_window: int = 0
    warmup_requests: int = 0
    windows: tuple[float, ...] = ()  # instructions per request of each window, in order
    processes: tuple[CostProcess, ...] = ()
    reconnects: int = 0  # connections the server closed that the client had to open again
    startup_s: float | None = None  # under valgrind
    counted_s: float = 0.0  # wall-clock seconds of the counted windows
    interval_ms: float = 0.0  # the counted requests' fixed pace (0: back to back)
    late_requests: int = 0  # paced requests that started late (the answer took longer)
    probe_ms_per_request: float | None = None  # the pace probe's median ms/request (counting on)
    tool: str = ""  # "valgrind-3.19.0"
    tool_args: tuple[str, ...] = ()
    machine: dict[str, Any] = field(default_factory=dict)
    schema: str = COST_SCHEMA

    def __post_init__(self) -> None:
        if self.schema not in KNOWN_COST_SCHEMAS:
            raise RecordError(f"cost record version {self.schema!r} is not one this fwbench reads")
        if self.status == "ok" and not self.windows:
            raise RecordError(f"cost record of {self.target}: ok without any window")
        if self.status == "failed" and not self.failure:
            raise RecordError(f"cost record of {self.target}: failed without a reason")

    @property
    def instructions_per_request(self) -> float | None:
        """The median of the windows (None when nothing was counted)."""
        return float(statistics.median(self.windows)) if self.windows else None

    @property
    def spread_pct(self) -> float | None:
        return spread_pct(self.windows) if self.windows else None

    @property
    def fingerprint(self) -> str:
        return str(self.machine.get("fingerprint") or "")

    def failed(self, why: str) -> CostRecord:
        return replace(self, status="failed", failure=why)

    def summary(self) -> dict[str, Any]:
        """The figures ``fwbench cost --json`` prints (one object per target)."""
        ipr = self.instructions_per_request
        sp = self.spread_pct
        return {
            "target": self.target,
            "status": self.status,
            "failure": self.failure,
            "instructions_per_request": None if ipr is None else round(ipr, 1),
            "spread_pct": None if sp is None else round(sp, 4),
            "windows": [round(w, 1) for w in self.windows],
            "requests_per_window": self.requests_per_window,
            "warmup_requests": self.warmup_requests,
            "processes": [asdict(p) for p in self.processes],
            "framework": self.framework,
            "framework_version": self.framework_version,
            "server": self.server,
            "server_version": self.server_version,
            "reconnects": self.reconnects,
            "run_id": self.run_id,
            "interval_ms": self.interval_ms,
            "probe_ms_per_request": self.probe_ms_per_request,
            "late_requests": self.late_requests,
            "limits": COST_LIMITS,
        }

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = list(self.windows)
        d["processes"] = [asdict(p) for p in self.processes]
        d["tool_args"] = list(self.tool_args)
        d["instructions_per_request"] = self.instructions_per_request  # for readers of the JSON
        d["spread_pct"] = self.spread_pct
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CostRecord:
        schema = d.get("schema")
        check_version("cost record version", schema, KNOWN_COST_SCHEMAS)
        status = d.get("status")
        if status not in ("ok", "failed"):
            raise RecordError(f"cost record status {status!r} is not 'ok' or 'failed'")
        startup = d.get("startup_s")
        return cls(
            run_id=str(d.get("run_id", "")),
            target=str(d["target"]),
            started_at=str(d.get("started_at", "")),
            status=status,
            failure=str(d.get("failure", "")),
            framework=str(d.get("framework", "")),
            framework_version=str(d.get("framework_version", "")),
            server=str(d.get("server", "")),
            server_version=str(d.get("server_version", "")),
            python=str(d.get("python", "")),
            requests_per_window=int(d.get("requests_per_window", 0)),
            warmup_requests=int(d.get("warmup_requests", 0)),
            windows=tuple(float(w) for w in d.get("windows") or ()),
            processes=tuple(CostProcess.from_dict(p) for p in d.get("processes") or ()),
            reconnects=int(d.get("reconnects", 0)),
            startup_s=None if startup is None else float(startup),
            counted_s=float(d.get("counted_s", 0.0)),
            interval_ms=float(d.get("interval_ms", 0.0)),
            late_requests=int(d.get("late_requests", 0)),
            probe_ms_per_request=_float_or_none(d.get("probe_ms_per_request")),
            tool=str(d.get("tool", "")),
            tool_args=tuple(str(a) for a in d.get("tool_args") or ()),
            machine=dict(d.get("machine") or {}),
            schema=str(schema),
        )


def append_cost(path: Path, rec: CostRecord) -> None:
    """Append one record as one line, flushed and fsynced (an interrupted run keeps it)."""
    append_json_line(path, rec.to_dict())


def read_costs(path: Path) -> Iterator[CostRecord]:
    """The records of a ``cost.jsonl``; a record this fwbench cannot read is refused, named."""
    return read_typed(path, CostRecord.from_dict)


def run_costs(run_dir: Path) -> list[CostRecord]:
    """The cost records of a run directory ([] when it had no cost pass)."""
    path = run_dir / COST_FILE
    return list(read_costs(path)) if path.is_file() else []


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
