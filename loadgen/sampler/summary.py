"""The sampler's samples over a trial's measured window: pure functions, no I/O, no processes.

Counters in the samples are cumulative and never go backwards (see
:mod:`loadgen.records.samples`): :func:`summarize` takes differences of these counters across
the measured window, read at the window's edges by interpolation; per-interval CPU rates come
from :func:`loadgen.records.samples.cpu_pct_series`, the formula the report draws too.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from loadgen.records import ProcStats
from loadgen.records.samples import ROLES, Role, Sample, cpu_pct_series

CLIENT_SATURATED_PCT = 90.0  # client CPU share (of its CPU set) at which it is the limit


@dataclass(frozen=True)
class Summary:
    """The samples over the measured window. ``target``/``client`` are None when the role had
    no process around the window, or when the samples do not cover it at all."""

    target: ProcStats | None
    client: ProcStats | None
    sampler_cpu_pct: float  # the sampler's own CPU, % of one core
    other_cpu_pct: float | None  # % of the machine's CPUs busy with unrelated work
    client_cpu_pct: float  # client CPU as % of its CPU set
    target_cpu_s: float  # target user + system CPU-seconds in the window
    window_s: float = 0.0  # the seconds of the window the samples cover
    database: ProcStats | None = None  # a PostgreSQL server's processes, when sampled


def is_saturated(client_cpu_pct: float, threshold_pct: float = CLIENT_SATURATED_PCT) -> bool:
    """True when the client, not the target, is likely the limit."""
    return client_cpu_pct >= threshold_pct


def summarize(
    samples: Sequence[Sample], window_start: float, window_end: float, n_client_cpus: int
) -> Summary:
    """Figures over the wall-clock window ``[window_start, window_end]`` (``time.time()``).

    Cumulative counters (CPU, context switches, the machine's and the sampler's CPU) are read
    at the window's edges by linear interpolation between the two samples bracketing each edge,
    so a 10 s window is not rounded to the sampling grid. When the samples cover only part of
    the window, every figure is over the covered part (``window_s`` says how long it is).
    ``cpu_max_pct`` is the highest rate of a sampling interval that overlaps the window (a very
    short interval is joined to the one before it, see
    :func:`loadgen.records.samples.cpu_pct_series`); peaks (RSS, USS, threads, processes) are
    over the samples taken inside the window (the two bracketing samples when none is). Samples
    are taken in the order given (as written).
    """
    if n_client_cpus < 1:
        raise ValueError(f"n_client_cpus must be >= 1, not {n_client_cpus}")
    start = max(window_start, samples[0].t) if samples else 0.0
    end = min(window_end, samples[-1].t) if samples else 0.0
    if len(samples) < 2 or end <= start:
        return Summary(None, None, 0.0, None, 0.0, 0.0, 0.0)
    ts = [s.t for s in samples]
    span = end - start
    first = bisect_right(ts, start) - 1  # the last sample at or before the start
    last = bisect_left(ts, end)  # the first sample at or after the end
    around = samples[first : last + 1]
    inside = [s for s in around if start <= s.t <= end] or around

    def delta(values: Sequence[float]) -> float:
        return _at(ts, values, end) - _at(ts, values, start)

    stats: dict[Role, ProcStats | None] = {}
    roles: tuple[Role, ...] = (*ROLES, "database")
    for role in roles:
        rs = [s.for_role(role) for s in samples]
        if not any(s.for_role(role).procs for s in around):
            stats[role] = None
            continue
        user = delta([r.cpu_user_s for r in rs])
        system = delta([r.cpu_system_s for r in rs])
        rates = [p for p in cpu_pct_series(samples, role, first, last) if p is not None]
        stats[role] = ProcStats(
            cpu_mean_pct=(user + system) / span * 100,
            cpu_max_pct=max(rates, default=0.0),
            cpu_user_s=user,
            cpu_system_s=system,
            rss_peak_bytes=max(s.for_role(role).rss_bytes for s in inside),
            uss_peak_bytes=_uss_peak(samples, inside, role, start, end),
            threads_max=max(s.for_role(role).threads for s in inside),
            ctx_switches=round(delta([r.ctx_switches for r in rs])),
            processes_max=max(s.for_role(role).procs for s in inside),
        )
    target, client, database = stats["target"], stats["client"], stats["database"]
    target_cpu = target.cpu_user_s + target.cpu_system_s if target else 0.0
    database_cpu = database.cpu_user_s + database.cpu_system_s if database else 0.0
    client_cpu = client.cpu_user_s + client.cpu_system_s if client else 0.0
    sampler_cpu = delta([s.sampler_cpu_s for s in samples])
    busy = delta([s.sys_busy_s for s in samples])
    total = delta([s.sys_total_s for s in samples])
    other: float | None = None
    if total > 0:
        # Clamped: tick-based /proc/stat and per-process times disagree by a few ticks.
        ours = target_cpu + client_cpu + database_cpu + sampler_cpu
        other = min(100.0, max(0.0, (busy - ours) / total * 100))
    return Summary(
        target=target,
        client=client,
        sampler_cpu_pct=sampler_cpu / span * 100,
        other_cpu_pct=other,
        client_cpu_pct=client_cpu / span / n_client_cpus * 100,
        target_cpu_s=target_cpu,
        window_s=span,
        database=database,
    )


def _at(ts: Sequence[float], values: Sequence[float], x: float) -> float:
    """``values`` (a cumulative counter sampled at ``ts``) at time ``x``, linearly interpolated."""
    i = min(max(bisect_right(ts, x) - 1, 0), len(ts) - 2)
    t0, t1 = ts[i], ts[i + 1]
    if t1 <= t0:
        return values[i + 1]
    return values[i] + (values[i + 1] - values[i]) * (x - t0) / (t1 - t0)


def _uss_peak(
    samples: Sequence[Sample], inside: Sequence[Sample], role: Role, start: float, end: float
) -> int:
    """Highest USS read inside the window; else the reading nearest to it; 0 if none at all."""
    inside_uss = [u for s in inside if (u := s.for_role(role).uss_bytes) is not None]
    if inside_uss:
        return max(inside_uss)
    read = [(max(start - s.t, s.t - end), u) for s in samples if (u := s.for_role(role).uss_bytes)]
    return min(read)[1] if read else 0
