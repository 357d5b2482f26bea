"""From frames to what a report says: per-group statistics, rankings, footprint, warnings.

A *group* is one target under one load setting (load name, client, scenario, model,
connection count). Theory of operation:

1. Every group gets a state. It is ``ranked`` only when the target passed verification and
   every one of its trials finished ok, without a saturated client and with an error rate
   under :data:`MAX_ERROR_RATE`. Otherwise the state says why (``client_saturated``,
   ``failed``, ``not_measured``; ``not_applicable``: the target does not serve the setting's
   scenario, its trials say why: neither ranked nor failed) and the reason is written out for
   the reader: a figure that the client's limit or a failed check produced is shown as such,
   never ranked.
2. Requests/s: the median of the trials with a 95 % bootstrap interval
   (:func:`analysis.stats.bootstrap_ci`, seeded) and the coefficient of variation. Latency:
   percentiles of the trials' histograms merged. CPU-seconds per 1,000 requests: median of
   the trials. RSS: the peak over trials. Errors: summed by kind.
3. A ranking per load setting orders the ranked groups by median requests/s; each row names the
   other rows whose intervals overlap its own (a tie: the order between them is not sure). A
   group with a single trial has no interval: it ties with no row, and the report says
   "1 trial: no interval" where a tie would be (:func:`analysis.fmt.tie`).
4. Cost (when the run had a cost pass, ``cost.jsonl``): per target, the instructions per
   request under callgrind with its windows' spread, beside the target's requests/s in the
   first load setting (:class:`CostRow`); targets that could not be counted keep the reason.
5. Scenarios beyond hello: the target's verifier verdict for the setting's scenario counts
   (failed verification of ``fortunes`` fails its ``fortunes`` groups only: ``failed:
   verification of fortunes: ...``); a scenario it declares not applicable, or does not
   declare, with no trial, is ``not_applicable`` too (:func:`analysis.load.scenario_verdict`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from analysis import fmt, stats
from analysis.channels import ChannelDiff, channel_diffs
from analysis.hist import LatencyHistogram
from analysis.load import Loaded, RunInfo, protocol_verdict, scenario_verdict
from analysis.scaling import Scaling, scaling, workers_by_series
from analysis.views import Row, by_python, by_server, maintenance
from loadgen.records import ERROR_KINDS, FINGERPRINT_KEYS

State = Literal["ranked", "client_saturated", "failed", "not_measured", "not_applicable"]

# A trial set with more errors than this share of its requests is not ranked: a target that
# answers fast with errors is not fast.
MAX_ERROR_RATE = 0.01
# CPU taken by unrelated processes during a trial above which the report warns (% of one core).
OTHER_CPU_WARN_PCT = 10.0

SATURATED_REASON = "client saturated: figure is the client's limit"


@dataclass(frozen=True, order=True)
class Setting:
    """One load setting at one connection count: what a ranking compares targets under."""

    load: str
    client: str
    scenario: str
    model: str
    connections: int
    rate: float | None = None
    protocol: str = "http1"  # h2c, h2: a series of its own, never mixed with HTTP/1.1's
    streams: int = 1  # HTTP/2: concurrent streams per connection

    def label(self) -> str:
        parts = [self.load, f"{self.client} client", self.scenario]
        if self.protocol != "http1":
            parts.append(self.protocol)
        parts.append(f"{self.connections} connection{'s' if self.connections != 1 else ''}")
        if self.streams > 1:
            parts[-1] += f" × {self.streams} streams"
        if self.model == "open":
            parts.append(f"open model at {self.rate or 0:g} req/s")
        return " · ".join(parts)

    def slug(self) -> str:
        proto = "" if self.protocol == "http1" else f"-{self.protocol}"
        text = f"{self.load}-{self.client}-{self.scenario}{proto}-c{self.connections}"
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "setting"

    def to_dict(self) -> dict[str, Any]:
        return {
            "load": self.load,
            "client": self.client,
            "scenario": self.scenario,
            "model": self.model,
            "connections": self.connections,
            "rate": self.rate,
        } | ({} if self.protocol == "http1" else dict(protocol=self.protocol, streams=self.streams))


@dataclass(frozen=True)
class Group:
    """One target under one setting, with everything the report shows about it."""

    target: str
    setting: Setting
    framework: str
    framework_version: str
    server: str
    server_version: str
    python: str
    kind: str
    keepalive: bool | None
    state: State
    reason: str  # "" when ranked
    trials: int
    ok_trials: int
    saturated_trials: int
    failed_trials: int
    rps: tuple[float, ...]  # per trial that finished ok, in trial order
    rps_median: float | None
    rps_ci: tuple[float, float] | None
    rps_cv: float | None
    latency_ms: dict[str, float] | None  # p50 p90 p99 p999 max of the merged histograms
    latency_count: int
    cpu_s_per_1k: float | None
    rss_peak_bytes: int | None
    errors: dict[str, int]  # kind -> count, non-zero only
    error_total: int
    requests: int
    hist: LatencyHistogram | None = field(default=None, compare=False, repr=False)

    @property
    def ranked(self) -> bool:
        return self.state == "ranked"

    @property
    def error_rate(self) -> float:
        done = self.requests + self.error_total
        return self.error_total / done if done else 0.0


@dataclass(frozen=True)
class Ranked:
    rank: int
    group: Group
    vs_fastest: float  # median requests/s over the fastest's (1.0 for the fastest)
    ties: tuple[int, ...]  # ranks whose intervals overlap this one's (none without an interval)

    @property
    def tie_text(self) -> str:
        """The tie column: "tie with 2–3", "1 trial: no interval", or ""."""
        return fmt.tie(
            self.ties, interval=self.group.rps_ci is not None, trials=len(self.group.rps)
        )


@dataclass(frozen=True)
class Ranking:
    setting: Setting
    ranked: tuple[Ranked, ...]
    others: tuple[Group, ...]


@dataclass(frozen=True)
class Footprint:
    """What the verifier measured of a target at rest."""

    target: str
    framework: str
    framework_version: str
    server: str
    server_version: str
    python: str
    ok: bool
    startup_s: float | None
    idle_rss_bytes: int | None
    package_count: int | None
    env_size_bytes: int | None
    keepalive: bool | None
    failures: str
    warnings: str


@dataclass(frozen=True)
class CostRow:
    """One target's cost: instructions per request (median of the windows) beside requests/s."""

    target: str
    status: str  # "ok" or "failed"
    failure: str
    instructions_per_request: float | None
    spread_pct: float | None
    windows: int
    requests_per_window: int
    processes: int
    main_share_pct: float | None  # the share of the process that counts most
    rps: float | None  # median requests/s in ``rps_setting`` (None: not ranked there)
    rps_setting: str

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.instructions_per_request is not None


@dataclass(frozen=True)
class Summary:
    runs: tuple[RunInfo, ...]
    settings: tuple[Setting, ...]
    groups: tuple[Group, ...]
    rankings: tuple[Ranking, ...]
    footprints: tuple[Footprint, ...]
    warnings: tuple[str, ...]
    machine: dict[str, Any]
    trials: pd.DataFrame = field(compare=False, repr=False)
    samples: pd.DataFrame = field(compare=False, repr=False)
    costs: tuple[CostRow, ...] = ()
    channels: tuple[ChannelDiff, ...] = ()  # channel series against their pinned lock
    scaling: tuple[Scaling, ...] = ()  # worker sweeps (series measured at several counts)
    by_server: tuple[Row, ...] = ()  # frameworks measured on several servers
    by_python: tuple[Row, ...] = ()  # targets measured on several Pythons
    maintenance: dict[str, str] = field(default_factory=dict)  # target -> "unmaintained, ..."

    @property
    def run_id(self) -> str:
        return "+".join(r.run_id for r in self.runs)

    def group(self, target: str, setting: Setting) -> Group | None:
        for g in self.groups:
            if g.target == target and g.setting == setting:
                return g
        return None

    def ok_trials(self, g: Group) -> pd.DataFrame:
        """The rows of the group's trials that ended ok."""
        t, s = self.trials, g.setting
        mask = (
            (t["target"] == g.target)
            & (t["load"] == s.load)
            & (t["connections"] == s.connections)
            & (t["client"] == s.client)
            & (t["scenario"] == s.scenario)
            & (t["protocol"].fillna("http1") == s.protocol)
            & (t["status"] == "ok")
        )
        return t[mask]


# --- helpers --------------------------------------------------------------------------------


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _opt_int(v: Any) -> int | None:
    f = _opt_float(v)
    return None if f is None else int(f)


def _str(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _setting_of(row: pd.Series) -> Setting:
    return Setting(
        load=_str(row["load"]),
        client=_str(row["client"]),
        scenario=_str(row["scenario"]),
        model=_str(row["model"]),
        connections=int(row["connections"]),
        rate=_opt_float(row["rate"]),
        protocol=_str(row["protocol"]) or "http1",
        streams=_opt_int(row["streams"]) or 1,
    )


def _config_settings(runs: Iterable[RunInfo]) -> list[Setting]:
    """Settings named by the runs' configs, in their order (a sweep: one per count)."""
    out: list[Setting] = []
    for run in runs:
        loads = (run.config.get("run") or {}).get("load") or []
        for ld in loads:
            if not isinstance(ld, dict):
                continue
            model = str(ld.get("model", "closed"))
            rate = _opt_float(ld.get("rate")) if model == "open" else None
            for c in ld.get("connections") or []:
                s = Setting(
                    load=str(ld.get("name", "")),
                    client=str(ld.get("client", "raw")),
                    scenario=str(ld.get("scenario", "hello")),
                    model=model,
                    connections=int(c),
                    rate=rate,
                    protocol=str(ld.get("protocol", "http1")),
                    streams=int(ld.get("streams", 1)),
                )
                if s not in out:
                    out.append(s)
    return out


def _verdicts_by_target(loaded: Loaded) -> dict[str, dict[str, Any]]:
    """The latest verdict of each target (a later run's replaces an earlier one's)."""
    out: dict[str, dict[str, Any]] = {}
    for rec in loaded.verdicts.to_dict("records"):
        out[str(rec["target"])] = {str(k): v for k, v in rec.items()}
    return out


# --- groups ---------------------------------------------------------------------------------


def _group(
    target: str,
    setting: Setting,
    trials: pd.DataFrame,
    verdict: dict[str, Any] | None,
    interrupted: bool,
) -> Group:
    ok = trials[trials["status"] == "ok"]
    not_applicable = trials[trials["status"] == "not_applicable"]
    failed = trials[~trials["status"].isin(("ok", "not_applicable"))]
    saturated = ok[ok["client_saturated"].astype(bool)]
    first: dict[str, Any] = dict(verdict or {})
    if len(trials):
        first = {str(k): v for k, v in trials.iloc[0].to_dict().items()}
    keepalive: bool | None
    if len(trials):
        keepalive = bool(trials["keepalive"].astype(bool).all())
    else:
        keepalive = None if verdict is None else verdict.get("keepalive")

    rps = tuple(float(x) for x in ok.sort_values(["run_id", "trial"])["rps"])
    hist = LatencyHistogram.merge(str(h) for h in ok["hist"] if isinstance(h, str))
    latency = hist.percentiles_ms() if hist else None
    cpu1k = stats.median([float(x) for x in ok["cpu_s_per_1k"].dropna()])
    rss = ok["target_rss_peak_bytes"].dropna()
    errors: dict[str, int] = {}
    for kind in (*ERROR_KINDS, "other"):
        n = int(trials[f"errors_{kind}"].fillna(0).sum())
        if n:
            errors[kind] = n
    requests = int(ok["requests"].fillna(0).sum())
    error_total = sum(errors.values())

    n = len(trials)
    state: State = "ranked"
    reason = ""
    if n and len(not_applicable) == n:
        state = "not_applicable"
        why = _str(not_applicable.iloc[0]["failure"]) or "does not declare the scenario"
        reason = f"not applicable: {why}"
    elif verdict is not None and not verdict.get("ok"):
        state = "failed"
        why = _str(verdict.get("failures")) or "the verifier's checks did not pass"
        reason = f"failed: verification: {why}"
    elif (sv := scenario_verdict(verdict, setting.scenario)) and sv.get("ok") is False:
        state = "failed"
        why = _str(sv.get("reason")) or "the verifier's checks did not pass"
        reason = f"failed: verification of {setting.scenario}: {why}"
    elif (pv := protocol_verdict(verdict, setting.protocol)).get("ok") is False:
        state, reason = "failed", f"failed: verification of {setting.protocol}: {pv['reason']}"
    elif sv and sv.get("ok") is None and n == 0:
        state = "not_applicable"
        reason = f"not applicable: {_str(sv.get('reason')) or 'does not declare the scenario'}"
    elif n == 0:
        state = "not_measured"
        reason = "not measured: " + (
            "the run was interrupted before it" if interrupted else "no trial recorded"
        )
    elif len(failed):
        state = "failed"
        why = _str(failed.iloc[0]["failure"]) or "no reason recorded"
        reason = f"failed: {why} ({len(failed)} of {plural(n, 'trial')})"
    elif len(saturated):
        state = "client_saturated"
        reason = f"{SATURATED_REASON} ({len(saturated)} of {plural(n, 'trial')})"
    elif requests + error_total and error_total / (requests + error_total) > MAX_ERROR_RATE:
        state = "failed"
        kinds = ", ".join(f"{k} {v:,}" for k, v in errors.items())
        share = 100.0 * error_total / (requests + error_total)
        reason = f"failed: {share:.1f} % of requests were errors ({kinds})"

    return Group(
        target=target,
        setting=setting,
        framework=_str(first.get("framework")),
        framework_version=_str(first.get("framework_version")),
        server=_str(first.get("server")),
        server_version=_str(first.get("server_version")),
        python=_str(first.get("python")),
        kind=_str(first.get("kind")),
        keepalive=keepalive,
        state=state,
        reason=reason,
        trials=n,
        ok_trials=len(ok),
        saturated_trials=len(saturated),
        failed_trials=len(failed),
        rps=rps,
        rps_median=stats.median(rps),
        rps_ci=stats.bootstrap_ci(rps),
        rps_cv=stats.coefficient_of_variation(rps),
        latency_ms=latency,
        latency_count=hist.total if hist else 0,
        cpu_s_per_1k=cpu1k,
        rss_peak_bytes=int(rss.max()) if len(rss) else None,
        errors=errors,
        error_total=error_total,
        requests=requests,
        hist=hist,
    )


def _ranking(setting: Setting, groups: list[Group]) -> Ranking:
    def speed(g: Group) -> tuple[float, str]:
        return (-(g.rps_median or 0.0), g.target)

    ranked = sorted((g for g in groups if g.ranked), key=speed)
    fastest = ranked[0].rps_median if ranked else None
    rows = []
    for i, g in enumerate(ranked):
        # Only two known intervals can overlap: a single trial has none, so it ties with
        # nobody (the report says "1 trial: no interval" instead), 6.5x apart or not.
        ties = tuple(
            j + 1
            for j, other in enumerate(ranked)
            if j != i
            and g.rps_ci is not None
            and other.rps_ci is not None
            and stats.intervals_overlap(g.rps_ci, other.rps_ci)
        )
        rel = (g.rps_median or 0.0) / fastest if fastest else 0.0
        rows.append(Ranked(rank=i + 1, group=g, vs_fastest=rel, ties=ties))
    order = {"client_saturated": 0, "failed": 1, "not_measured": 2, "not_applicable": 3}
    others = sorted(
        (g for g in groups if not g.ranked),
        key=lambda g: (order.get(g.state, 9), -(g.rps_median or 0.0), g.target),
    )
    return Ranking(setting=setting, ranked=tuple(rows), others=tuple(others))


def _footprints(loaded: Loaded) -> list[Footprint]:
    out = []
    for target, v in sorted(_verdicts_by_target(loaded).items()):
        out.append(
            Footprint(
                target=target,
                framework=_str(v.get("framework")),
                framework_version=_str(v.get("framework_version")),
                server=_str(v.get("server")),
                server_version=_str(v.get("server_version")),
                python=_str(v.get("python")),
                ok=bool(v.get("ok")),
                startup_s=_opt_float(v.get("startup_s")),
                idle_rss_bytes=_opt_int(v.get("idle_rss_bytes")),
                package_count=_opt_int(v.get("package_count")),
                env_size_bytes=_opt_int(v.get("env_size_bytes")),
                keepalive=v.get("keepalive") if isinstance(v.get("keepalive"), bool) else None,
                failures=_str(v.get("failures")),
                warnings=_str(v.get("warnings")),
            )
        )
    return out


# --- warnings -------------------------------------------------------------------------------


def _names(names: Iterable[str], limit: int = 8) -> str:
    items = sorted(set(names))
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def fingerprint_differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The fingerprint keys on which two machine records differ."""
    return [(k, a.get(k), b.get(k)) for k in FINGERPRINT_KEYS if a.get(k) != b.get(k)]


def _warnings(loaded: Loaded, groups: list[Group], footprints: list[Footprint]) -> list[str]:
    out: list[str] = []
    for run in loaded.runs:
        if run.incomplete:
            out.append(f"run {run.run_id} was interrupted: only the trials that finished are here")
    first = loaded.runs[0]
    for run in loaded.runs[1:]:
        diff = fingerprint_differences(first.machine, run.machine)
        if diff:
            keys = ", ".join(k for k, _, _ in diff)
            out.append(
                f"runs {first.run_id} and {run.run_id} come from different machines "
                f"({keys} differ): their trials should not be pooled"
            )
    seen: set[str] = set()
    for run in loaded.runs:
        for w in run.machine_warnings:
            if w not in seen:
                seen.add(w)
                out.append(w)
    sat = [g for g in groups if g.saturated_trials]
    if sat:
        n = sum(g.saturated_trials for g in sat)
        out.append(
            f"client saturated in {plural(n, 'trial')} ({_names(g.target for g in sat)}): "
            "those figures are the client's limit, not the target's; they are not ranked"
        )
    failed = [g for g in groups if g.failed_trials]
    if failed:
        n = sum(g.failed_trials for g in failed)
        out.append(f"{plural(n, 'trial')} failed ({_names(g.target for g in failed)})")
    bad = [f.target for f in footprints if not f.ok]
    if bad:
        out.append(f"failed verification, not measured: {_names(bad)}")
    bad_scenario = {
        f"{g.target} ({g.setting.scenario})"
        for g in groups
        if g.reason.startswith(f"failed: verification of {g.setting.scenario}:")
    }
    if bad_scenario:
        out.append("failed verification of a scenario, not measured in it: " + _names(bad_scenario))
    no_ka = {g.target for g in groups if g.keepalive is False}
    no_ka |= {f.target for f in footprints if f.keepalive is False}
    if no_ka:
        out.append(
            f"no keep-alive: {_names(no_ka)} (every request opens a new connection, so "
            "requests/s also measures connection set-up)"
        )
    errs = [g for g in groups if g.error_total]
    if errs:
        parts = [
            f"{g.target} {g.error_total:,} ({', '.join(f'{k} {v:,}' for k, v in g.errors.items())})"
            for g in sorted(errs, key=lambda g: (-g.error_total, g.target))[:8]
        ]
        out.append("errors under load: " + "; ".join(parts))
    single = [g.target for g in groups if g.state == "ranked" and len(g.rps) < 2]
    if single:
        out.append(f"a single trial, so no confidence interval: {_names(single)}")
    busy = loaded.trials[loaded.trials["other_cpu_pct"].fillna(0) > OTHER_CPU_WARN_PCT]
    if len(busy):
        worst = float(busy["other_cpu_pct"].max())
        out.append(
            f"other processes used more than {OTHER_CPU_WARN_PCT:g} % of a core during "
            f"{plural(len(busy), 'trial')} (up to {worst:.0f} %): those figures are noisier"
        )
    return out


# --- entry point ----------------------------------------------------------------------------


def summarize(loaded: Loaded) -> Summary:
    trials = loaded.trials
    verdicts = _verdicts_by_target(loaded)
    interrupted = any(r.incomplete for r in loaded.runs)

    keys = [_setting_of(row) for _, row in trials.iterrows()]
    measured = list(dict.fromkeys(keys))
    loads_measured = {k.load for k in measured}
    # The trials say what was measured. A setting the config names but no trial shows is kept
    # (its targets "not measured") when the run was cut short or its whole load is missing;
    # otherwise it differs from the trials' own settings only by an override: dropped.
    named = _config_settings(loaded.runs)
    settings = [s for s in named if s in measured or interrupted or s.load not in loads_measured]
    if not measured and loaded.costs and not interrupted:
        settings = []  # a cost pass alone (fwbench cost): no load setting was meant to run
    settings += [s for s in measured if s not in settings]
    order: dict[str, int] = {}
    for s in (*named, *measured):
        order.setdefault(s.load, len(order))
    settings.sort(
        key=lambda s: (order[s.load], s.connections, s.client, s.scenario, s.protocol, s.model)
    )

    targets = sorted(set(trials["target"].astype(str)) | set(verdicts))
    groups: list[Group] = []
    for setting in settings:
        mask = [k == setting for k in keys]
        in_setting = trials[mask] if len(trials) else trials
        for target in targets:
            t = in_setting[in_setting["target"] == target]
            groups.append(_group(target, setting, t, verdicts.get(target), interrupted))
    rankings = [_ranking(s, [g for g in groups if g.setting == s]) for s in settings]
    footprints = _footprints(loaded)
    costs = _cost_rows(loaded, groups, settings[0] if settings else None)
    return Summary(
        runs=loaded.runs,
        settings=tuple(settings),
        groups=tuple(groups),
        rankings=tuple(rankings),
        footprints=tuple(footprints),
        warnings=tuple(_warnings(loaded, groups, footprints)),
        machine=dict(loaded.runs[0].machine) if loaded.runs else {},
        trials=trials,
        samples=loaded.samples,
        costs=tuple(costs),
        channels=channel_diffs((r, r.path) for r in loaded.runs),
        scaling=scaling(
            groups,
            workers_by_series(trials),
            loaded.runs[0].config if loaded.runs else {},
        ),
        by_server=by_server(groups),
        by_python=by_python(groups),
        maintenance=maintenance(t for r in loaded.runs for t in r.targets),
    )


def _cost_rows(loaded: Loaded, groups: list[Group], first: Setting | None) -> list[CostRow]:
    """One row per counted target (its last record when counted twice), cheapest first."""
    latest = {c.target: c for c in loaded.costs}
    rows = []
    for c in latest.values():
        g = next((g for g in groups if g.target == c.target and g.setting == first), None)
        rps = g.rps_median if g is not None and g.ranked else None
        rows.append(
            CostRow(
                target=c.target,
                status=c.status,
                failure=c.failure,
                instructions_per_request=c.instructions_per_request,
                spread_pct=c.spread_pct,
                windows=len(c.windows),
                requests_per_window=c.requests_per_window,
                processes=len(c.processes),
                main_share_pct=max((p.share_pct for p in c.processes), default=None),
                rps=rps,
                rps_setting=first.label() if first is not None else "",
            )
        )
    return sorted(rows, key=lambda r: (not r.ok, r.instructions_per_request or 0.0, r.target))
