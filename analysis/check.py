"""Both regression gates over a run folder and the history, then alerts: what ``fwbench check``
and ``fwbench nightly`` do after a run.

The gates themselves are pure functions in :mod:`analysis.gate`; this module reads their inputs
(``trials.jsonl``, ``run.json``, the history database), says for each change the history gate
finds what differs between the nights either side of it (:mod:`analysis.explain`: packages,
suite commit, machine), records and delivers the alerts (:mod:`analysis.alerts`) and writes
``regressions.json`` / ``regressions.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from analysis import alerts, explain, gate
from analysis.gate import Finding, HistoryParams, WithinParams, pair_data, within_run
from analysis.history import History
from loadgen.config import Config, ConfigError, Pair
from loadgen.records import RecordError, RunHeader, read_header, read_records, run_costs


@dataclass(frozen=True)
class CheckResult:
    status: int
    findings: tuple[Finding, ...]
    problems: tuple[str, ...]
    registered: alerts.Registered
    delivery: alerts.Delivery
    json_path: Path
    markdown_path: Path
    markdown: str
    context: Mapping[str, Any] = field(default_factory=dict)


def run_header(run_dir: Path) -> RunHeader:
    try:
        return read_header(run_dir)
    except RecordError as exc:
        raise ConfigError("RUN_DIR", f"no readable run.json ({exc})", source="flag") from None


def check_within(
    run_dir: Path,
    header: RunHeader,
    pairs: Sequence[Pair],
    params: WithinParams,
    cost_threshold: float = 1.0,
) -> tuple[list[Finding], list[str]]:
    """The within-run gate over the trials of ``run_dir``, and the cost gate over its cost
    records (a run of ``fwbench cost`` alone has no trials: only the cost gate runs). A damaged
    ``trials.jsonl`` (a bad line other than a torn last one) is bad input: ConfigError naming
    the file and the line, so the check exits 2 and never reads as a regression or a clean
    run."""
    trials = run_dir / "trials.jsonl"
    try:  # a run of ``fwbench cost`` alone has cost records and no trials file
        records = list(read_records(trials)) if trials.exists() else []
    except RecordError as exc:
        raise ConfigError("RUN_DIR", f"cannot read trials ({exc})", source="flag") from None
    except OSError as exc:
        return [], [f"{run_dir}: cannot read trials: {exc}"]
    try:
        costs = run_costs(run_dir)
    except (OSError, RecordError) as exc:
        return [], [f"{run_dir}: cannot read cost records: {exc}"]
    findings: list[Finding] = []
    problems: list[str] = []
    more: list[str] = []
    if records or not costs:
        data, problems = pair_data(records, pairs)
        findings, more = within_run(
            data,
            params,
            run_id=header.run_id,
            date=header.started_at[:10],
            fingerprint=header.fingerprint,
        )
    cost_findings, cost_problems = gate.within_cost(
        costs,
        pairs,
        cost_threshold,
        run_id=header.run_id,
        date=header.started_at[:10],
        fingerprint=header.fingerprint,
    )
    if header.interrupted:
        problems.append(f"run {header.run_id} was interrupted: not every trial ran")
    return findings + cost_findings, problems + more + cost_problems


def run_check(
    cfg: Config,
    *,
    run_dir: Path | None = None,
    history_gate: bool = False,
    pairs: Sequence[Pair] | None = None,
    out_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    today: date | None = None,
) -> CheckResult:
    """Both gates as asked, then record, write, deliver. Raises ConfigError for bad input."""
    if run_dir is None and not history_gate:
        raise ConfigError("check", "give a RUN_DIR, --history, or both", source="flag")
    today = today or datetime.now(UTC).date()
    findings: list[Finding] = []
    problems: list[str] = []
    context: dict[str, Any] = {}
    fingerprint: str | None = None
    if run_dir is not None:
        use = tuple(pairs) if pairs is not None else cfg.check.pairs
        header = run_header(run_dir)
        fingerprint = header.fingerprint or None
        context["run"] = header.run_id
        if use:
            f, p = check_within(
                run_dir,
                header,
                use,
                WithinParams.from_check(cfg.check),
                cfg.check.cost_min_change_pct,
            )
            findings += f
            problems += p
        elif not history_gate:
            problems.append("no pairs to compare: set check.pairs in bench.toml or --pairs")
    positions: Mapping[str, Mapping[str, int]] = {}
    with History(cfg.path("history")) as history:
        if history_gate:
            if fingerprint is None:
                latest = history.latest_run()
                fingerprint = latest.fingerprint if latest is not None else None
            if fingerprint is None:
                problems.append("history: no run stored yet")
                context["machine"] = ""
            else:
                hparams = HistoryParams.from_check(cfg.check)
                series = history.series(fingerprint)
                cost_series = history.cost_series(fingerprint)
                outcome = gate.history_gate(series, fingerprint, hparams)
                findings += explain.attach(outcome.findings, history, series)
                if cost_series and not series:  # cost-only nights: no trial series expected
                    problems += [p for p in outcome.problems if "no run of machine" not in p]
                else:
                    problems += outcome.problems
                cf, cp = gate.history_cost_gate(
                    cost_series, fingerprint, hparams, cfg.check.cost_min_change_pct
                )
                findings += explain.attach(cf, history, series, cost_series)
                problems += cp
                positions = outcome.positions
                context["machine"] = fingerprint
        findings = alerts.acknowledge(findings, cfg.check.acknowledge, today)
        deliver = alerts.webhook_configured(env)
        reg = alerts.register(history, findings, deliver=deliver, positions=positions)
        delivery = alerts.deliver_pending(history, env)
    status = alerts.exit_status(findings, problems)
    doc = alerts.regressions_document(
        findings, problems, reg, context=context, delivery=delivery.describe()
    )
    text = alerts.markdown(findings, problems, reg, context=context)
    out = out_dir or run_dir or cfg.path("reports_dir") / "check"
    json_path, md_path = alerts.write_outputs(out, doc, text)
    return CheckResult(
        status, tuple(findings), tuple(problems), reg, delivery, json_path, md_path, text, context
    )
