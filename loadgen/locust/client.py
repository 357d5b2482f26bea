"""Locust as a load client, from fwbench's side: :func:`run_locust` gives a raw-client result.

Locust monkey-patches its process with gevent on import, so it never runs in fwbench's own
process: this module starts ``python -m loadgen.locust.driver`` processes
(:mod:`loadgen.locust.launch`) and never imports locust. A run is either one ``local`` process
(``workers == 0``) or a ``master`` with ``workers`` local worker processes (and, if asked,
workers from other machines joining with ``fwbench locust-worker``). All of them are children
of this process, in its process group, pinned to the client CPUs (workers round robin), and
stopped by PID whatever happens.

Order of a run: the scenario is resolved and the host checked here; the master (or local
process) and the local workers start together (importing locust takes seconds; the workers
retry until the master listens on the port chosen here); every process imports the locustfile
first, and an import error stops the run before any load; the master waits, bounded, for every
worker to connect and accept the setup; the load runs; the master collects the workers' reports
and writes one result file, read here into the same :class:`~loadgen.records.LoadResult` as
the raw client's (:meth:`~loadgen.records.LoadResult.measured`). The events and formats are in
:mod:`loadgen.locust.protocol`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadgen.locust.launch import Processes, child_env, drive
from loadgen.locust.recording import ProcessReport, merge
from loadgen.locust.spec import LocustError, LocustSpec, resolve_locustfile
from loadgen.records import LoadResult, Window
from loadgen.safety import check_host


@dataclass(frozen=True)
class LocustProcess:
    """One load-generating locust process of a run, as it reported."""

    role: str  # "local" | "worker"
    hostname: str
    pid: int
    local: bool
    requests: int  # good answers in the window
    errors: int
    cpu_pct: float  # % of one core over the window


@dataclass(frozen=True)
class LocustInfo:
    """What a locust run adds to its :class:`~loadgen.records.LoadResult`."""

    mode: str  # "local" | "distributed"
    workers_started: int  # workers that took part (0 for a local run)
    workers_finished: int  # workers whose report came in at the end
    locust_requests: int  # locust's own count of the window's requests (its per-second stats)
    locust_failures: int
    recorded: int  # our count of the same requests (answers and transport errors)
    csv: tuple[Path, ...]
    html: Path | None
    out_dir: Path | None
    pids: tuple[int, ...]  # the local locust processes, master (or local process) first
    processes: tuple[LocustProcess, ...] = field(default=())  # the load processes
    master_cpu_pct: float | None = None  # the master's own CPU, % of one core (distributed)

    @property
    def count_gap_pct(self) -> float:
        """How far locust's count of the window is from ours, in % of ours."""
        if not self.recorded:
            return 0.0 if not self.locust_requests else 100.0
        return abs(self.locust_requests - self.recorded) / self.recorded * 100.0

    def to_dict(self) -> dict[str, Any]:
        """Plain values (paths as strings, sequences as lists), with ``count_gap_pct``."""
        return {
            **asdict(self),
            "count_gap_pct": self.count_gap_pct,
            "csv": [str(p) for p in self.csv],
            "html": str(self.html) if self.html else None,
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "pids": list(self.pids),
            "processes": [asdict(p) for p in self.processes],
        }


def run_locust(
    spec: LocustSpec, progress: Callable[[int], None] | None = None
) -> tuple[LoadResult, LocustInfo]:
    """Run ``spec``; blocks for start-up, warm-up, duration and the end (a few seconds).

    ``progress`` is called from this thread about once a second with the number of requests
    completed so far (warm-up included). Raises :class:`LocustError` for an unknown scenario, a
    locustfile that does not import, a host that may not be loaded, workers that do not connect
    within ``worker_wait`` and any locust process that fails or stalls; every locust process is
    gone when this returns or raises (Ctrl-C included).
    """
    locustfile = resolve_locustfile(spec)
    refused = check_host(spec.host, spec.allow_hosts)
    if refused:
        raise LocustError(refused, "safety")
    with contextlib.ExitStack() as stack:
        if spec.out_dir is not None:
            work = spec.out_dir
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fwbench-locust-")))
        procs = stack.enter_context(Processes())
        data = drive(spec, locustfile, work, procs, progress)
        pids = procs.pids
    return _results(spec, data, pids)


def _results(
    spec: LocustSpec, data: dict[str, Any], pids: tuple[int, ...]
) -> tuple[LoadResult, LocustInfo]:
    reports = [ProcessReport.from_dict(r) for r in data["reports"]]
    merged = merge(reports)
    window = Window(
        start=float(data["window_start"]),
        end=float(data["window_end"]),
        start_monotonic=float(data.get("window_start_monotonic", 0.0)),
        end_monotonic=float(data.get("window_end_monotonic", 0.0)),
    )
    master_cpu_s = float(data.get("master_cpu_s", 0.0))
    result = LoadResult.measured(
        counts=merged.counts,
        hist=merged.hist,
        hist_uncorrected=None,
        window=window,
        duration_s=window.end - window.start,
        client_cpu_s=merged.cpu_s_local + master_cpu_s,
        client_cpus=spec.client_cpus,
        procs=len(reports),
        connections=spec.users,
        rate=None,
    )
    duration = result.duration_s
    processes = tuple(
        LocustProcess(
            role=r.role,
            hostname=r.hostname,
            pid=r.pid,
            local=r.local,
            requests=r.counts["ok"],
            errors=r.requests - r.counts["ok"],
            cpu_pct=r.cpu_s / duration * 100.0,
        )
        for r in reports
    )
    html = data.get("html")
    info = LocustInfo(
        mode=str(data["mode"]),
        workers_started=int(data["workers_started"]),
        workers_finished=int(data["workers_finished"]),
        locust_requests=int(data["locust_requests"]),
        locust_failures=int(data["locust_failures"]),
        recorded=merged.requests,
        csv=tuple(Path(p) for p in data.get("csv", [])),
        html=Path(html) if html else None,
        out_dir=spec.out_dir,
        pids=pids,
        processes=processes,
        master_cpu_pct=master_cpu_s / duration * 100.0 if data["mode"] == "distributed" else None,
    )
    return result, info


__all__ = [
    "LocustError",
    "LocustInfo",
    "LocustProcess",
    "LocustSpec",
    "child_env",
    "resolve_locustfile",
    "run_locust",
]
