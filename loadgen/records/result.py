"""What a load client measured in its window: one shape for both clients.

The raw client (:mod:`loadgen.rawclient`) and locust (:mod:`loadgen.locust.client`) each end
with per-process counts, histograms and a window; :meth:`LoadResult.measured` is the one place
that turns those into requests/s, errors by kind, latency percentiles and the client's CPU
share, so the two clients cannot drift apart in their arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from loadgen.records.trial import ERROR_KINDS, Latency

if TYPE_CHECKING:  # a runtime import would be circular: loadgen.hist makes Latency records
    from loadgen.hist import Histogram


@dataclass(frozen=True)
class Window:
    """The measured window on both clocks: wall (``time.time()``) and monotonic."""

    start: float
    end: float
    start_monotonic: float = 0.0
    end_monotonic: float = 0.0


@dataclass(frozen=True)
class LoadResult:
    """What a run measured in its window (errors by kind, zeros included)."""

    requests: int
    """Good answers (2xx, and a right body where sampled) completed in the window."""
    duration_s: float
    rps: float
    errors: dict[str, int]
    reconnects: int
    late: int
    latency: Latency
    """Every completed answer; for an open loop, corrected for coordinated omission."""
    latency_uncorrected: Latency | None
    hist: str
    hist_uncorrected: str | None
    window_start: float
    window_end: float
    client_cpu_s: float
    client_cpu_pct: float
    procs: int
    connections: int
    rate: float | None
    window_start_monotonic: float = 0.0
    window_end_monotonic: float = 0.0
    client_cpus: int = 1
    answers: int = 0
    """Every answer completed in the window, good or bad."""

    @classmethod
    def measured(
        cls,
        *,
        counts: Mapping[str, int],
        hist: Histogram,
        hist_uncorrected: Histogram | None,
        window: Window,
        duration_s: float,
        client_cpu_s: float,
        client_cpus: int,
        procs: int,
        connections: int,
        rate: float | None,
        reconnects: int = 0,
        late: int = 0,
    ) -> LoadResult:
        """The result of a window: ``counts`` holds ``ok`` and the error kinds (merged over
        the client's processes), ``hist`` every completed answer's latency in µs."""
        errors = {kind: int(counts.get(kind, 0)) for kind in ERROR_KINDS}
        ok = int(counts.get("ok", 0))
        duration = max(duration_s, 1e-9)
        return cls(
            requests=ok,
            duration_s=duration,
            rps=ok / duration,
            errors=errors,
            reconnects=reconnects,
            late=late,
            latency=hist.summary(),
            latency_uncorrected=None if hist_uncorrected is None else hist_uncorrected.summary(),
            hist=hist.encode(),
            hist_uncorrected=None if hist_uncorrected is None else hist_uncorrected.encode(),
            window_start=window.start,
            window_end=window.end,
            client_cpu_s=client_cpu_s,
            client_cpu_pct=client_cpu_s / duration / client_cpus * 100.0,
            procs=procs,
            connections=connections,
            rate=rate,
            window_start_monotonic=window.start_monotonic,
            window_end_monotonic=window.end_monotonic,
            client_cpus=client_cpus,
            answers=ok + errors["status"] + errors["body"],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def cpu_us_per_request(self) -> float:
        """Client CPU time per answer, in microseconds."""
        return self.client_cpu_s * 1e6 / self.answers if self.answers else 0.0

    @property
    def latency_or_none(self) -> Latency | None:
        """The latency record of a trial: None when no answer completed."""
        return self.latency if self.latency.count else None
