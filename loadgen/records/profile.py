"""Profile records: where a target's server spent its time under load, sampled by py-spy.

Format history (``schema`` field):
- ``fwbench.profile/1``: first version.

A run directory holds ``profiles.jsonl`` when the run had a profile pass (``fwbench run
--profile``, ``[nightly] profile = true``): one :class:`ProfileRecord` per target, appended as
each target finishes, and the sampled stacks of each in ``profiles/<target>.collapsed``
(py-spy's raw format: the collapsed stacks of Brendan Gregg's flame graph tools, one line
``frame;frame;...;frame COUNT`` per distinct stack, root first). The profiled trial is a trial
of its own after the measured ones: its figures are never ranked or gated, and not in
``trials.jsonl``. A target that could not be profiled has a record too, ``status = "failed"``
with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from loadgen.records.jsonl import (
    RecordError,
    append_json_line,
    check_version,
    read_typed,
)

PROFILE_SCHEMA = "fwbench.profile/1"
KNOWN_PROFILE_SCHEMAS = frozenset({PROFILE_SCHEMA})
PROFILE_FILE = "profiles.jsonl"
PROFILES_DIR = "profiles"

ProfileStatus = Literal["ok", "failed"]

Stacks = dict[tuple[str, ...], int]
"""Collapsed stacks: each distinct stack (root first) and how many samples it had."""


def parse_collapsed(text: str) -> Stacks:
    """The stacks of collapsed-stack text (``a;b;c 12`` per line); equal stacks are summed.

    The count is the last space-separated word of a line (a frame may hold spaces: py-spy's
    ``handle (uvicorn/protocols/http/httptools_impl.py:42)``). Blank lines are skipped; a line
    without a whole-number count is refused with ``ValueError`` naming the line.
    """
    out: Stacks = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            raise ValueError(f"line {n}: not 'frame;frame;... COUNT': {line[:120]!r}")
        frames = tuple(stack.split(";"))
        out[frames] = out.get(frames, 0) + int(count)
    return out


def format_collapsed(stacks: Mapping[tuple[str, ...], int]) -> str:
    """The text :func:`parse_collapsed` reads, stacks sorted (the same stacks, the same text)."""
    return "".join(f"{';'.join(k)} {v}\n" for k, v in sorted(stacks.items()))


@dataclass(frozen=True)
class ProfileRecord:
    run_id: str
    target: str
    started_at: str  # ISO 8601, UTC
    status: ProfileStatus
    error: str  # why it could not be profiled; "" when ok
    framework: str = ""
    framework_version: str = ""
    server: str = ""
    server_version: str = ""
    requests: int = 0  # answered in the profiled window
    errors: int = 0  # the load's errors in the window (any kind)
    samples: int = 0  # stacks sampled by py-spy (every process and thread)
    rate_hz: int = 0  # py-spy's sampling rate
    duration_s: float = 0.0  # the load's window
    connections: int = 0
    warmup_s: float = 0.0
    gil: bool = True  # only the thread holding the GIL was sampled (py-spy --gil)
    stacks: str = ""  # the collapsed stacks, relative to the run folder; "" when none
    pids: tuple[int, ...] = ()  # the server's processes when the window ended
    py_spy: str = ""  # "py-spy 0.4.3"
    schema: str = PROFILE_SCHEMA

    def __post_init__(self) -> None:
        if self.schema not in KNOWN_PROFILE_SCHEMAS:
            raise RecordError(f"profile record version {self.schema!r} is not one this reads")
        if self.status == "failed" and not self.error:
            raise RecordError(f"profile record of {self.target}: failed without a reason")
        if self.status == "ok" and not self.stacks:
            raise RecordError(f"profile record of {self.target}: ok without stacks")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def failed(self, why: str) -> ProfileRecord:
        return replace(self, status="failed", error=why)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pids"] = list(self.pids)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProfileRecord:
        schema = d.get("schema")
        check_version("profile record version", schema, KNOWN_PROFILE_SCHEMAS)
        status = d.get("status")
        if status not in ("ok", "failed"):
            raise RecordError(f"profile record status {status!r} is not 'ok' or 'failed'")
        return cls(
            run_id=str(d.get("run_id", "")),
            target=str(d["target"]),
            started_at=str(d.get("started_at", "")),
            status=status,
            error=str(d.get("error", "")),
            framework=str(d.get("framework", "")),
            framework_version=str(d.get("framework_version", "")),
            server=str(d.get("server", "")),
            server_version=str(d.get("server_version", "")),
            requests=int(d.get("requests", 0)),
            errors=int(d.get("errors", 0)),
            samples=int(d.get("samples", 0)),
            rate_hz=int(d.get("rate_hz", 0)),
            duration_s=float(d.get("duration_s", 0.0)),
            connections=int(d.get("connections", 0)),
            warmup_s=float(d.get("warmup_s", 0.0)),
            gil=bool(d.get("gil", True)),
            stacks=str(d.get("stacks", "")),
            pids=tuple(int(p) for p in d.get("pids") or ()),
            py_spy=str(d.get("py_spy", "")),
            schema=str(schema),
        )

    def read_stacks(self, run_dir: Path) -> Stacks:
        """This record's stacks, read from its run folder ({} when it has none)."""
        if not self.stacks:
            return {}
        return parse_collapsed((run_dir / self.stacks).read_text(encoding="utf-8"))


def stacks_path(target: str) -> str:
    """Where a target's stacks go, relative to the run folder."""
    safe = "".join(c if c.isalnum() or c in "._-@" else "_" for c in target)
    return f"{PROFILES_DIR}/{safe}.collapsed"


def append_profile(path: Path, rec: ProfileRecord) -> None:
    """Append one record as one line, flushed and fsynced (an interrupted run keeps it)."""
    append_json_line(path, rec.to_dict())


def read_profiles(path: Path) -> Iterator[ProfileRecord]:
    """The records of a ``profiles.jsonl``; one this fwbench cannot read is refused, named."""
    return read_typed(path, ProfileRecord.from_dict)


def run_profiles(run_dir: Path) -> list[ProfileRecord]:
    """The profile records of a run directory ([] when it had no profile pass)."""
    path = run_dir / PROFILE_FILE
    return list(read_profiles(path)) if path.is_file() else []
