"""Seeded synthetic run directories: real records, real HDR histograms, made-up numbers.

Used by the committed fixture generator (``tests/fixtures/make_run_small.py``), the report tests
and the render benchmark (:mod:`benchmarks.bench_render`). A run directory is written the way the
runner writes one: ``run.json`` with verdicts built from :class:`loadgen.verify.Verdict`,
``trials.jsonl`` through :func:`loadgen.records.append_record`, sampler series in ``samples/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from analysis.hist import LatencyHistogram, encode, histogram_of
from analysis.load import samples_name
from loadgen.config import Config, LoadSetting, Run, to_dict
from loadgen.machine import fingerprint_id
from loadgen.machine import warnings as machine_warnings
from loadgen.records import RUN_SCHEMA, Latency, ProcStats, TrialRecord, append_record
from loadgen.records.samples import SCHEMA as SAMPLES_SCHEMA
from loadgen.records.samples import RoleSample, Sample
from loadgen.verify import Check, Verdict
from loadgen.verify_scenarios import ScenarioVerdict


@dataclass(frozen=True)
class SynthTarget:
    """A made-up target: how fast it is and what goes wrong with it."""

    name: str
    framework: str
    framework_version: str = "1.0"
    server: str = "uvicorn"
    server_version: str = "0.30.0"
    kind: str = "json"
    rps: float = 5000.0  # mean requests/s at 64 connections
    rps_noise: float = 0.03  # relative spread between trials (one standard deviation)
    latency_sigma: float = 0.35  # spread of the log-normal latencies
    saturated_trials: frozenset[int] = frozenset()  # trial numbers whose client saturates
    failure: str = ""  # every trial fails with this reason
    verify_failure: str = ""  # the verifier fails with this reason (then no trials)
    keepalive: bool = True
    startup_s: float = 0.8
    idle_rss_bytes: int = 30 * 2**20
    packages: tuple[tuple[str, str], ...] = (("uvicorn", "0.30.0"),)
    env_size_bytes: int = 20 * 2**20
    errors: dict[str, int] = field(default_factory=dict)  # per trial
    workers: int = 1  # the worker count its trials record (a sweep: "<name>@w2", workers=2)
    python: str = "3.11"
    # scenarios beyond hello it serves, each with its speed as a share of ``rps``
    scenarios: tuple[tuple[str, float], ...] = ()
    not_applicable: tuple[tuple[str, str], ...] = ()  # scenario -> why (no trials)
    scenario_failures: tuple[tuple[str, str], ...] = ()  # scenario -> the verifier's reason


@dataclass(frozen=True)
class SynthLoad:
    name: str = "closed-64"
    connections: tuple[int, ...] = (64,)
    duration: float = 2.0
    warmup: float = 1.0
    scenario: str = "hello"


MACHINE: dict[str, Any] = {
    "hostname": "bench-fixture",
    "cpu_model": "Synthetic CPU @ 3.00GHz",
    "cpu_count": 2,
    "server_cpus": [0],
    "client_cpus": [1],
    "governor": "not visible",
    "turbo": "not visible",
    "isolated_cpus": "",
    "kernel": "6.1.0-synthetic",
    "memory_bytes": 8 * 2**30,
    "python": "3.11.9",
    "suite_commit": "0000000000000000000000000000000000000000",
}


def machine(**changes: Any) -> dict[str, Any]:
    """The synthetic machine's fingerprint, with ``changes`` (another machine: another id)."""
    info = {**MACHINE, **changes}
    info["fingerprint"] = fingerprint_id(info)
    return info


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _verdict(t: SynthTarget) -> dict[str, Any]:
    checks = [Check("status", "pass", "200"), Check("body", "pass", "")]
    if t.verify_failure:
        checks.append(Check("content_type", "fail", t.verify_failure))
    if not t.keepalive:
        checks.append(Check("keepalive", "warn", "no keep-alive (declared)"))
    v = Verdict(
        target=t.name,
        framework=t.framework,
        framework_version=t.framework_version,
        server=t.server,
        server_version=t.server_version,
        python="3.11",
        kind=t.kind,
        ok=not t.verify_failure,
        checks=tuple(checks),
        startup_s=t.startup_s,
        idle_rss_bytes=t.idle_rss_bytes,
        keepalive=t.keepalive,
        packages=t.packages,
        env_size_bytes=t.env_size_bytes,
        env_build_s=3.0,
        scenarios=(
            *((n, ScenarioVerdict(True)) for n, _ in t.scenarios),
            *((n, ScenarioVerdict(False, why)) for n, why in t.scenario_failures),
            *((n, ScenarioVerdict(None, why)) for n, why in t.not_applicable),
        ),
    )
    d = v.to_dict()
    if not d["scenarios"]:
        del d["scenarios"]  # as a verdict before scenarios: the committed fixture keeps its bytes
    return d


def _speed(t: SynthTarget, scenario: str) -> float | None:
    """The share of ``t.rps`` the target serves ``scenario`` at; None: not measured in it
    (not applicable, failed verification, or not served)."""
    if scenario == "hello":
        return 1.0
    return dict(t.scenarios).get(scenario) if scenario not in dict(t.scenario_failures) else None


def _latency(values_us: npt.NDArray[np.float64]) -> tuple[Latency, str]:
    lh = LatencyHistogram.from_values_us(values_us)
    p = lh.percentiles_ms()
    lat = Latency(
        count=lh.total,
        mean=round(lh.mean_us() / 1000.0, 4),
        p50=p["p50"],
        p90=p["p90"],
        p99=p["p99"],
        p999=p["p999"],
        max=p["max"],
    )
    return lat, encode(histogram_of(values_us))


def _samples(
    rng: np.random.Generator,
    start: datetime,
    seconds: float,
    rss: int,
    client_pct: float,
    interval: float = 0.25,
) -> list[dict[str, Any]]:
    """A samples file's lines (:mod:`loadgen.records.samples`): a header, then samples."""
    lines: list[dict[str, Any]] = [
        {"schema": SAMPLES_SCHEMA, "target_pid": 1000, "client_pid": 999, "interval": interval}
    ]
    cpu_t = cpu_c = busy = 0.0
    n = int(seconds / interval) + 1
    t0 = start.timestamp()
    for i in range(n):
        if i:
            cpu_t += interval * min(1.0, max(0.0, rng.normal(96.0, 3.0) / 100.0))
            cpu_c += interval * min(1.0, max(0.0, rng.normal(client_pct, 3.0) / 100.0))
            busy += interval * 0.02
        grow = int(rss * 0.02 * i / n)
        target = RoleSample(
            procs=1,
            cpu_user_s=round(cpu_t * 0.8, 4),
            cpu_system_s=round(cpu_t * 0.2, 4),
            rss_bytes=rss + grow,
            uss_bytes=(rss + grow) - 2**20 if i % 8 == 0 else None,
            threads=2,
            ctx_switches=100 * i,
        )
        client = RoleSample(
            procs=1,
            cpu_user_s=round(cpu_c * 0.7, 4),
            cpu_system_s=round(cpu_c * 0.3, 4),
            rss_bytes=40 * 2**20,
            uss_bytes=None,
            threads=1,
            ctx_switches=50 * i,
        )
        sample = Sample(
            t=round(t0 + i * interval, 3),
            mono=round(1000.0 + i * interval, 3),
            target=target,
            client=client,
            sys_busy_s=round(cpu_t + cpu_c + busy, 4),
            sys_total_s=round(2 * i * interval, 4),
            sampler_cpu_s=round(0.003 * i, 4),
        )
        lines.append(sample.to_dict())
    return lines


def make_run(
    run_dir: Path,
    targets: Sequence[SynthTarget],
    *,
    run_id: str | None = None,
    trials: int = 3,
    loads: Sequence[SynthLoad] = (SynthLoad(),),
    seed: int = 1,
    started_at: datetime = datetime(2025, 1, 6, 3, 0, 0, tzinfo=UTC),
    machine_info: dict[str, Any] | None = None,
    interrupted: bool = False,
    requests_cap: int = 20_000,
) -> Path:
    """Write a run directory and return it; each trial's histogram holds at most
    ``requests_cap`` latencies (its request count is the full one)."""
    rng = np.random.default_rng(seed)
    run_id = run_id or run_dir.name
    info = machine_info or machine()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    (run_dir / "logs").mkdir(exist_ok=True)
    cfg = Config(
        run=Run(
            targets=tuple(t.name for t in targets),
            trials=trials,
            load=tuple(
                LoadSetting(
                    name=ld.name, connections=ld.connections, duration=ld.duration, warmup=ld.warmup
                )
                for ld in loads
            ),
        )
    )
    config = to_dict(cfg)
    config.pop("root", None)
    for ld, table in zip(loads, config["run"]["load"], strict=True):
        table["scenario"] = ld.scenario  # any scenario name, whatever the config's type knows
    # Synthetic runs have no cost pass: leave out the cost keys (all at their defaults), as
    # a run written before the cost pass existed, so the committed fixture keeps its bytes.
    config.pop("cost", None)
    config["check"].pop("cost_min_change_pct", None)
    config.pop("profile", None)  # nor a profile pass: the same rule for its keys
    for section in ("run", "nightly"):
        config[section].pop("cost", None)
        config[section].pop("profile", None)
    clock = started_at
    trials_path = run_dir / "trials.jsonl"
    trials_path.write_text("")
    for t in targets:
        if t.verify_failure:
            continue
        for ld in loads:
            speed = _speed(t, ld.scenario)
            if speed is None:
                continue
            for conns in ld.connections:
                for n in range(1, trials + 1):
                    clock += timedelta(seconds=ld.warmup + ld.duration + 2)
                    rec = _trial(rng, run_id, t, ld, conns, n, clock, info, requests_cap, speed)
                    append_record(trials_path, rec)
                    if rec.status != "ok":
                        continue
                    rows = _samples(
                        rng,
                        clock,
                        ld.warmup + ld.duration,
                        rss=t.idle_rss_bytes + 4 * 2**20,
                        client_pct=rec.client_cpu_pct or 60.0,
                    )
                    path = run_dir / "samples" / samples_name(rec.trial_id)
                    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    header = {
        "schema": RUN_SCHEMA,
        "run_id": run_id,
        "started_at": _iso(started_at),
        "finished_at": None if interrupted else _iso(clock + timedelta(seconds=5)),
        "config": config,
        "machine": info,
        "machine_warnings": machine_warnings(info),
        "verdicts": [_verdict(t) for t in targets],
        "interrupted": interrupted,
    }
    (run_dir / "run.json").write_text(json.dumps(header, indent=2, sort_keys=True) + "\n")
    return run_dir


def _trial(
    rng: np.random.Generator,
    run_id: str,
    t: SynthTarget,
    ld: SynthLoad,
    conns: int,
    n: int,
    clock: datetime,
    info: dict[str, Any],
    requests_cap: int,
    speed: float = 1.0,
) -> TrialRecord:
    base: dict[str, Any] = {
        "run_id": run_id,
        "trial_id": f"{t.name}/{ld.name}/c{conns}/t{n}",
        "trial": n,
        "started_at": _iso(clock),
        "target": t.name,
        "framework": t.framework,
        "framework_version": t.framework_version,
        "server": t.server,
        "server_version": t.server_version,
        "python": t.python,
        "kind": t.kind,
        "keepalive": t.keepalive,
        "workers": t.workers,
        "client": "raw",
        "client_settings": {"procs": 1, "cpus": [1], "check_every": 100, "timeout": 10.0},
        "load": ld.name,
        "scenario": ld.scenario,
        "model": "closed",
        "connections": conns,
        "rate": None,
        "duration_s": ld.duration,
        "warmup_s": ld.warmup,
        "reconnects": 0,
        "late": 0,
        "latency_uncorrected_ms": None,
        "hist_uncorrected": "",
        "sampler_cpu_pct": 1.2,
        "other_cpu_pct": 1.5,
        "startup_s": t.startup_s,
        "idle_rss_bytes": t.idle_rss_bytes,
        "machine": info,
    }
    if t.failure:
        return TrialRecord(
            **base,
            status="failed",
            failure=t.failure,
            requests=0,
            rps=0.0,
            errors={},
            latency_ms=None,
            hist="",
            target_stats=None,
            client_stats=None,
            cpu_s_per_1k=None,
            client_cpu_pct=None,
            client_saturated=False,
        )
    # Throughput rises with connections up to 64 then flattens; latency follows Little's law.
    scale = min(1.0, (conns / 64) ** 0.5)
    rps = float(t.rps * speed * scale * (1.0 + rng.normal(0.0, t.rps_noise)))
    requests = int(rps * ld.duration)
    values = rng.lognormal(
        np.log(conns / rps * 1e6), t.latency_sigma, size=min(requests, requests_cap)
    )
    lat, hist = _latency(values)
    cpu_s = ld.duration * 0.96
    saturated = n in t.saturated_trials
    client_pct = 97.5 if saturated else float(min(85.0, 20.0 + rps / 400.0))
    ts = ProcStats(
        cpu_mean_pct=96.0,
        cpu_max_pct=100.0,
        cpu_user_s=round(cpu_s * 0.8, 4),
        cpu_system_s=round(cpu_s * 0.2, 4),
        rss_peak_bytes=t.idle_rss_bytes + 4 * 2**20,
        uss_peak_bytes=t.idle_rss_bytes + 3 * 2**20,
        threads_max=2,
        ctx_switches=1000,
        processes_max=1,
    )
    cs = ProcStats(
        cpu_mean_pct=client_pct,
        cpu_max_pct=min(100.0, client_pct + 2),
        cpu_user_s=1.0,
        cpu_system_s=0.4,
        rss_peak_bytes=40 * 2**20,
        uss_peak_bytes=38 * 2**20,
        threads_max=1,
        ctx_switches=500,
        processes_max=1,
    )
    return TrialRecord(
        **base,
        status="ok",
        failure="",
        requests=requests,
        rps=round(rps, 2),
        errors=dict(t.errors),
        latency_ms=lat,
        hist=hist,
        target_stats=ts,
        client_stats=cs,
        cpu_s_per_1k=round(cpu_s / requests * 1000.0, 6),
        client_cpu_pct=round(client_pct, 2),
        client_saturated=saturated,
    )


def many_targets(count: int, *, seed: int = 7) -> list[SynthTarget]:
    """``count`` plausible targets with spread-out speeds and footprints (for benchmarks)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        server = "granian" if i % 3 == 0 else "uvicorn"
        out.append(
            SynthTarget(
                name=f"framework-{i:02d}-{server}",
                framework=f"Framework{i:02d}",
                framework_version=f"{1 + i % 4}.{i % 10}.0",
                server=server,
                rps=float(rng.uniform(800, 16000)),
                rps_noise=float(rng.uniform(0.01, 0.08)),
                startup_s=float(rng.uniform(0.2, 3.0)),
                idle_rss_bytes=int(rng.uniform(15, 120) * 2**20),
                packages=tuple((f"pkg{j}", "1.0") for j in range(int(rng.integers(3, 40)))),
                env_size_bytes=int(rng.uniform(5, 200) * 2**20),
            )
        )
    return out
