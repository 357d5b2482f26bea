"""The header of a run: ``run.json``, written by the runner, read by every reader.

Format history (``schema`` field):
- ``fwbench.run/1``: first version.

The runner writes the header when the run starts (``finished_at`` None), again once the
targets are verified (``verdicts``) and when the run ends or is interrupted. The file is
replaced atomically each time, so a reader never sees half a header.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from loadgen.records.jsonl import RecordError, check_version

RUN_SCHEMA = "fwbench.run/1"
KNOWN_RUN_SCHEMAS = frozenset({RUN_SCHEMA})
HEADER_FILE = "run.json"

FINGERPRINT_KEYS = (
    "hostname",
    "cpu_model",
    "cpu_count",
    "server_cpus",
    "client_cpus",
    "governor",
    "turbo",
    "kernel",
    "memory_bytes",
)
"""The keys of a machine fingerprint (:mod:`loadgen.machine`) that must match for two results
to be compared; the rest is informative."""


@dataclass(frozen=True)
class RunHeader:
    run_id: str
    started_at: str  # ISO 8601, UTC
    finished_at: str | None = None  # None while running (or when the run was killed)
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM: not every trial ran
    config: dict[str, Any] = field(default_factory=dict)  # the config used, as a table
    machine: dict[str, Any] = field(default_factory=dict)  # the fingerprint (loadgen.machine)
    machine_warnings: tuple[str, ...] = ()
    targets: tuple[dict[str, Any], ...] = ()  # target metadata (loadgen.targets.Target)
    verdicts: tuple[dict[str, Any], ...] = ()  # the verifier's verdicts (loadgen.verify)
    schema: str = RUN_SCHEMA

    @property
    def incomplete(self) -> bool:
        """Interrupted, or never finished (killed): not every trial of the plan ran."""
        return self.interrupted or self.finished_at is None

    @property
    def fingerprint(self) -> str:
        return str(self.machine.get("fingerprint") or "")

    def updated(self, **changes: Any) -> RunHeader:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("machine_warnings", "targets", "verdicts"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, fallback_id: str = "") -> RunHeader:
        """A header from its JSON table; refuses versions this fwbench does not know."""
        schema = d.get("schema")
        check_version("run version", schema, KNOWN_RUN_SCHEMAS)
        finished = d.get("finished_at")
        return cls(
            run_id=str(d.get("run_id") or fallback_id),
            started_at=str(d.get("started_at") or ""),
            finished_at=None if finished is None else str(finished),
            interrupted=bool(d.get("interrupted")),
            config=dict(d.get("config") or {}),
            machine=dict(d.get("machine") or {}),
            machine_warnings=tuple(str(w) for w in d.get("machine_warnings") or ()),
            targets=tuple(t for t in d.get("targets") or () if isinstance(t, dict)),
            verdicts=tuple(v for v in d.get("verdicts") or () if isinstance(v, dict)),
            schema=str(schema),
        )

    def write(self, run_dir: Path) -> None:
        """Replace ``run_dir/run.json`` atomically."""
        tmp = run_dir / (HEADER_FILE + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        tmp.replace(run_dir / HEADER_FILE)


def read_header(run_dir: Path) -> RunHeader:
    """The header of ``run_dir``; :class:`RecordError` names the file and what is wrong."""
    path = run_dir / HEADER_FILE
    if not path.is_file():
        raise RecordError(f"{run_dir}: not a run directory (no {HEADER_FILE})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{path}: expected a JSON object")
    try:
        return RunHeader.from_dict(raw, fallback_id=run_dir.name)
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None
