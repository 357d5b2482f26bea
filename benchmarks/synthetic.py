"""Seeded synthetic nightly histories, and the measured behaviour of the history gate on them.

A history is one value per night around 10,000 requests/s, with Gaussian noise (``noise_pct``
of the level, one standard deviation), optionally a step (the level moves by ``step_pct`` from
``step_night`` on), outlier nights (with probability ``outlier_rate`` a night loses 8-20 %: a
neighbour woke up), and slow drift (``drift_pct`` per night). :func:`watch` replays a history
night by night through the same code the real gate runs (:func:`analysis.gate.open_changes`
and :func:`analysis.gate.is_known` for de-duplication) and returns the alerts it would have
sent. :func:`evaluate` does that for many seeded series and measures:

- the false-alert rate: the share of series with an alert not caused by a step (on a flat
  history, any alert; on a step history, one before the step or far from it);
- the detection rate: the share of step series alerted within ``within`` nights of the step,
  at a change point near it, and the delay (nights of the new level seen when the alert went).

``python -m benchmarks.synthetic --report`` prints the table for the default cases.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.gate import SAME_CHANGE_NIGHTS, HistoryParams, is_known, open_changes
from analysis.history import History, RunRow
from loadgen.machine import fingerprint_id
from loadgen.records import ERROR_KINDS, RUN_SCHEMA, Latency, TrialRecord

FloatArray = npt.NDArray[np.float64]

LEVEL = 10_000.0
DEFAULT_SEED = 20_250_101


@dataclass(frozen=True)
class Case:
    """One kind of history; ``step_pct`` < 0 is a drop."""

    name: str
    nights: int = 60
    watch: int = 40  # the gate runs on each of the last ``watch`` nights
    noise_pct: float = 3.0
    step_pct: float = 0.0
    step_night: int = 35  # first night at the new level
    outlier_rate: float = 0.0
    outlier_pct: tuple[float, float] = (8.0, 20.0)
    drift_pct: float = 0.0  # per night, signed

    @property
    def has_step(self) -> bool:
        return self.step_pct != 0.0


def make_series(case: Case, rng: np.random.Generator) -> FloatArray:
    """One history of ``case.nights`` values."""
    n = case.nights
    nights = np.arange(n, dtype=np.float64)
    level = np.full(n, LEVEL)
    level *= 1.0 + case.drift_pct / 100.0 * nights
    if case.has_step:
        level[case.step_night :] *= 1.0 + case.step_pct / 100.0
    values = level * (1.0 + rng.normal(0.0, case.noise_pct / 100.0, n))
    if case.outlier_rate:
        hit = rng.random(n) < case.outlier_rate
        lo, hi = case.outlier_pct
        values[hit] *= 1.0 - rng.uniform(lo, hi, int(hit.sum())) / 100.0
    return values


@dataclass(frozen=True)
class Alert:
    night: int  # the night the gate ran and alerted (index of the last value it saw)
    index: int  # the change point: first night at the new level
    worse_pct: float


def watch(
    values: Sequence[float] | FloatArray,
    params: HistoryParams,
    *,
    first_night: int,
    last_night: int | None = None,
    higher_is_better: bool = True,
) -> list[Alert]:
    """The alerts the history gate sends when run each night from ``first_night`` on (to
    ``last_night`` included, default the last)."""
    x = np.asarray(values, dtype=np.float64)
    alerts: list[Alert] = []
    end = x.size if last_night is None else min(x.size, last_night + 1)
    for night in range(first_night, end):
        for ch in open_changes(x[: night + 1], params, higher_is_better=higher_is_better):
            if not is_known(ch.index, [a.index for a in alerts]):
                alerts.append(Alert(night, ch.index, ch.worse_pct))
    return alerts


@dataclass(frozen=True)
class CaseResult:
    case: Case
    series: int
    false_alert_rate: float  # share of series with at least one alert not due to the step
    detected_rate: float  # step cases: share alerted within ``within`` nights of the step
    delays: tuple[int, ...] = field(default=())  # nights of the new level seen, when detected
    alerts_per_series: float = 0.0
    within: int = 7
    seconds: float = 0.0

    def delay(self, q: float) -> float:
        return float(np.percentile(self.delays, q)) if self.delays else float("nan")


def evaluate(
    case: Case,
    params: HistoryParams,
    *,
    series: int = 200,
    seed: int = DEFAULT_SEED,
    within: int = 7,
    detection_only: bool = False,
) -> CaseResult:
    """Replay ``series`` seeded histories of ``case`` through the gate and count.

    ``detection_only``: for a step, stop watching once ``within`` nights of it are seen (the
    detection rate and delays are the same, the other counts cover fewer nights; faster).
    """
    started = time.monotonic()
    rng = np.random.default_rng([seed, _stable_hash(case.name)])
    first = case.nights - case.watch
    false_alerts = detected = total_alerts = 0
    delays: list[int] = []
    for _ in range(series):
        x = make_series(case, rng)
        last = case.step_night + within - 1 if detection_only and case.has_step else None
        alerts = watch(x, params, first_night=first, last_night=last)
        total_alerts += len(alerts)
        caught = False
        spurious = False
        for a in alerts:
            near = abs(a.index - case.step_night) <= SAME_CHANGE_NIGHTS
            if case.has_step and case.step_pct < 0 and near and a.night >= case.step_night:
                seen = a.night - case.step_night + 1
                if not caught and seen <= within:
                    caught = True
                    delays.append(seen)
            elif not (case.has_step and near):
                spurious = True
        detected += caught
        false_alerts += spurious
    return CaseResult(
        case=case,
        series=series,
        false_alert_rate=false_alerts / series,
        detected_rate=detected / series if case.has_step and case.step_pct < 0 else 0.0,
        delays=tuple(delays),
        alerts_per_series=total_alerts / series,
        within=within,
        seconds=time.monotonic() - started,
    )


def _stable_hash(text: str) -> int:
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little")


DEFAULT_CASES: tuple[Case, ...] = (
    Case("flat, 1 % noise", noise_pct=1.0),
    Case("flat, 3 % noise"),
    Case("flat, 5 % noise", noise_pct=5.0),
    Case("flat, 3 % noise, 5 % outlier nights", outlier_rate=0.05),
    Case("flat, 3 % noise, drift -0.1 %/night", drift_pct=-0.1),
    Case("3 % drop, 3 % noise", step_pct=-3.0),
    Case("6 % drop, 3 % noise", step_pct=-6.0),
    Case("10 % drop, 3 % noise", step_pct=-10.0),
    Case("6 % drop, 1 % noise", step_pct=-6.0, noise_pct=1.0),
    Case("6 % drop, 5 % noise", step_pct=-6.0, noise_pct=5.0),
    Case("6 % drop, 3 % noise, 5 % outlier nights", step_pct=-6.0, outlier_rate=0.05),
    Case("6 % rise, 3 % noise", step_pct=6.0),
)


def table(results: Sequence[CaseResult]) -> str:
    """A Markdown table of results."""
    lines = [
        "| history | series | false alert | caught within 7 nights | delay median / p90 "
        "| alerts per series |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        c = r.case
        is_drop = c.has_step and c.step_pct < 0
        caught = f"{r.detected_rate:.1%}" if is_drop else "-"
        delay = f"{r.delay(50):.0f} / {r.delay(90):.0f}" if is_drop and r.delays else "-"
        lines.append(
            f"| {c.name} | {r.series} | {r.false_alert_rate:.1%} | {caught} | {delay} "
            f"| {r.alerts_per_series:.2f} |"
        )
    return "\n".join(lines)


# --- synthetic nights in a history database (for tests and demonstrations) -------------------


def synthetic_machine(hostname: str = "synthetic-host") -> dict[str, Any]:
    """A machine fingerprint as :func:`loadgen.machine.fingerprint` records one."""
    info: dict[str, Any] = {
        "hostname": hostname,
        "cpu_model": "Synthetic CPU",
        "cpu_count": 2,
        "server_cpus": [0],
        "client_cpus": [1],
        "governor": "performance",
        "turbo": "off",
        "isolated_cpus": "0-1",
        "kernel": "synthetic",
        "memory_bytes": 2**33,
        "python": "3.11",
        "suite_commit": "synthetic",
    }
    info["fingerprint"] = fingerprint_id(info)
    return info


def synthetic_record(
    run_id: str,
    target: str,
    rps: float,
    *,
    started_at: str,
    machine: Mapping[str, Any],
    trial: int = 1,
    load: str = "synthetic",
    connections: int = 64,
    p50_ms: float | None = None,
) -> TrialRecord:
    """A good trial record with the given throughput (latency from Little's law if not given)."""
    p50 = p50_ms if p50_ms is not None else connections / rps * 1000.0
    lat = Latency(count=int(rps), mean=p50, p50=p50, p90=p50 * 1.3, p99=p50 * 2.0,
                  p999=p50 * 3.0, max=p50 * 5.0)  # fmt: skip
    return TrialRecord(
        run_id=run_id, trial_id=f"{target}/{load}/c{connections}/t{trial}", trial=trial,
        started_at=started_at, status="ok", failure="", target=target, framework="Synthetic",
        framework_version="1.0", server="synthetic", server_version="1.0", python="3.11",
        kind="json", keepalive=True, workers=1, client="raw", client_settings={}, load=load,
        scenario="hello", model="closed", connections=connections, rate=None, duration_s=10.0,
        warmup_s=2.0, requests=int(rps * 10), rps=float(rps),
        errors=dict.fromkeys(ERROR_KINDS, 0), reconnects=0, late=0, latency_ms=lat,
        latency_uncorrected_ms=None, hist="", hist_uncorrected="", target_stats=None,
        client_stats=None, sampler_cpu_pct=None, cpu_s_per_1k=None, client_cpu_pct=None,
        client_saturated=False, other_cpu_pct=None, startup_s=None, idle_rss_bytes=None,
        machine=dict(machine),
    )  # fmt: skip


def synthetic_header(run_id: str, started_at: str, machine: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "schema": RUN_SCHEMA,
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": started_at,
        "interrupted": False,
        "config": {},
        "machine": dict(machine),
        "machine_warnings": [],
        "targets": [],
        "verdicts": [],
    }


def store_nights(
    history: History,
    series: Mapping[str, Sequence[float]],
    *,
    first_night: date,
    machine: Mapping[str, Any] | None = None,
    trials: int = 1,
    load: str = "synthetic",
    connections: int = 64,
    tag: str = "synthetic",
    packages: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
) -> list[RunRow]:
    """Store one run per night with every target's requests/s of that night (equal lengths).

    Run ids are ``<YYYYMMDD>T020000Z-<tag>``. ``packages``: per target (series, e.g.
    ``flask@latest``) its installed packages of each night (name -> version), stored as the
    verifier's verdict of that night.
    """
    machine = machine or synthetic_machine()
    lengths = {len(v) for v in series.values()}
    if len(lengths) != 1:
        raise ValueError("every series needs the same number of nights")
    stored = []
    for i in range(lengths.pop()):
        night = first_night + timedelta(days=i)
        started = f"{night.isoformat()}T02:00:00+00:00"
        run_id = f"{night.strftime('%Y%m%d')}T020000Z-{tag}"
        records = [
            synthetic_record(run_id, target, values[i], started_at=started, machine=machine,
                             trial=k, load=load, connections=connections)
            for target, values in series.items()
            for k in range(1, trials + 1)
        ]  # fmt: skip
        header = synthetic_header(run_id, started, machine)
        header["verdicts"] = [
            {"target": target, "ok": True,
             "packages": [{"name": n, "version": v} for n, v in sets[i].items()]}
            for target, sets in (packages or {}).items()
        ]  # fmt: skip
        stored.append(history.store(header, records))
    return stored


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.synthetic",
        description="Measure the history gate on seeded synthetic nightly histories.",
    )
    ap.add_argument("--report", action="store_true", help="print the table of default cases")
    ap.add_argument("--series", type=int, default=200, help="series per case (default 200)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--nights-held", type=int, default=HistoryParams().nights_held)
    ap.add_argument("--max-pvalue", type=float, default=HistoryParams().max_pvalue)
    args = ap.parse_args(argv)
    if not args.report:
        ap.print_help()
        return 0
    params = replace(HistoryParams(), nights_held=args.nights_held, max_pvalue=args.max_pvalue)
    started = time.monotonic()
    results = [evaluate(c, params, series=args.series, seed=args.seed) for c in DEFAULT_CASES]
    print(
        f"History gate: E-Divisive means + t-test, max p {params.max_pvalue}, window "
        f"{params.window}, alert once a drop has held {params.nights_held} nights; "
        f"60 nights, the last 40 watched, step on night 35, seed {args.seed}."
    )
    print()
    print(table(results))
    print(f"\n{time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
