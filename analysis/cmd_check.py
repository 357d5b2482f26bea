"""``fwbench check [RUN_DIR] [--history] [--pairs base:cand,...] [--out DIR]``: regression gates.

- With ``RUN_DIR``: the within-run gate over ``check.pairs`` (or ``--pairs``): each candidate
  against its baseline, both measured interleaved in that run.
- With ``--history``: the history gate over the nightly history database (``paths.history``),
  for the machine of ``RUN_DIR`` when given, else of the newest stored run.

Writes ``regressions.json`` and ``regressions.md`` into ``--out`` (default: ``RUN_DIR``, else
``<reports_dir>/check``), records alerts in the history database (one drop alerts once), POSTs
new alerts to ``FWBENCH_WEBHOOK_URL`` when set, and prints the Markdown alert.

Exit status: 0 clean, 1 regression, 2 error or not enough data (1 wins when both happen).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from analysis import alerts
from analysis.gate import (
    HIGHER_IS_BETTER,
    METRICS,
    Finding,
    HistoryParams,
    PairData,
    WithinParams,
    open_changes,
    within_run,
)
from analysis.history import History, HistoryError
from loadgen.config import Config, ConfigError, Pair
from loadgen.records import RecordError, TrialRecord, read_records


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="regression gates: within a run and over the history")
    p.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                   help="a run directory: compare check.pairs measured in it")  # fmt: skip
    p.add_argument("--history", action="store_true",
                   help="also look for change points in the nightly history")  # fmt: skip
    p.add_argument("--pairs", help="baseline:candidate,... (default: bench.toml's check.pairs)")
    p.add_argument("--out", type=Path, help="where regressions.json/.md go")


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


def parse_pairs(text: str) -> tuple[Pair, ...]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        base, sep, cand = part.partition(":")
        if not sep or not base.strip() or not cand.strip():
            raise ConfigError("--pairs", f"{part!r} is not baseline:candidate", source="flag")
        if base.strip() == cand.strip():
            raise ConfigError("--pairs", f"{part!r} compares a target with itself", source="flag")
        out.append(Pair(baseline=base.strip(), candidate=cand.strip()))
    if not out:
        raise ConfigError("--pairs", "no pair given", source="flag")
    return tuple(out)


def within_params(cfg: Config) -> WithinParams:
    c = cfg.check
    return WithinParams(c.alpha, c.min_drop_pct, c.correction, c.min_trials)


def history_params(cfg: Config) -> HistoryParams:
    c = cfg.check
    return HistoryParams(
        max_pvalue=c.cp_max_pvalue,
        window=c.cp_window,
        nights_held=c.nights_held,
        min_drop_pct=c.min_drop_pct,
    )


# --- within one run --------------------------------------------------------------------------


def _value(r: TrialRecord, metric: str) -> float | None:
    if metric == "rps":
        return r.rps
    lat = r.latency_ms
    return None if lat is None else float(getattr(lat, metric))


def pair_data(
    records: Sequence[TrialRecord], pairs: Sequence[Pair]
) -> tuple[list[PairData], list[str]]:
    """Good trials of each pair, per (load, connections); problems for targets not in the run."""
    present = {r.target for r in records}
    settings = sorted({(r.load, r.connections) for r in records})
    out: list[PairData] = []
    problems: list[str] = []
    for pair in pairs:
        missing = [t for t in (pair.baseline, pair.candidate) if t not in present]
        if missing:
            problems.append(
                f"pair {pair.baseline}:{pair.candidate}: {', '.join(missing)} not in this run"
            )
            continue
        for load, conns in settings:
            sides: list[dict[str, list[float]]] = []
            for target in (pair.baseline, pair.candidate):
                rows = [
                    r for r in records
                    if r.target == target and r.load == load and r.connections == conns
                    and r.status == "ok"
                ]  # fmt: skip
                sides.append(
                    {m: [v for r in rows if (v := _value(r, m)) is not None] for m in METRICS}
                )
            out.append(PairData(pair.baseline, pair.candidate, load, conns, sides[0], sides[1]))
    return out, problems


def run_header(run_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((run_dir / "run.json").read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            "RUN_DIR", f"{run_dir}: no readable run.json ({exc})", source="flag"
        ) from None


def check_within(
    run_dir: Path, pairs: Sequence[Pair], params: WithinParams
) -> tuple[list[Finding], list[str], dict[str, Any]]:
    header = run_header(run_dir)
    try:
        records = list(read_records(run_dir / "trials.jsonl"))
    except (OSError, RecordError) as exc:
        return [], [f"{run_dir}: cannot read trials: {exc}"], header
    data, problems = pair_data(records, pairs)
    machine = header.get("machine") or {}
    findings, more = within_run(
        data,
        params,
        run_id=str(header.get("run_id", run_dir.name)),
        date=str(header.get("started_at", ""))[:10],
        fingerprint=str(machine.get("fingerprint", "")),
    )
    if header.get("interrupted"):
        problems.append(f"run {header.get('run_id')} was interrupted: not every trial ran")
    return findings, problems + more, header


# --- over the history ------------------------------------------------------------------------


def check_history(
    history: History, fingerprint: str | None, params: HistoryParams
) -> tuple[list[Finding], list[str], dict[str, dict[str, int]], str]:
    """Findings of the history gate, problems, run positions per series, the fingerprint."""
    if fingerprint is None:
        latest = history.latest_run()
        if latest is None:
            return [], ["history: no run stored yet"], {}, ""
        fingerprint = latest.fingerprint
    all_series = history.series(fingerprint)
    if not all_series:
        return [], [f"history: no run of machine {fingerprint} stored yet"], {}, fingerprint
    findings: list[Finding] = []
    positions: dict[str, dict[str, int]] = {}
    longest = 0
    checked = 0
    for (target, load, conns), points in all_series.items():
        longest = max(longest, len(points))
        series_name = f"{target}/{load}/c{conns}"
        positions[series_name] = {p.run_id: i for i, p in enumerate(points)}
        for metric in METRICS:
            pts = [p for p in points if p.value(metric) is not None]
            if len(pts) < params.min_nights:
                continue
            checked += 1
            values = [float(v) for p in pts if (v := p.value(metric)) is not None]
            for ch in open_changes(values, params, higher_is_better=HIGHER_IS_BETTER[metric]):
                cp = ch.cp
                first = pts[cp.index]
                findings.append(
                    Finding(
                        gate="history",
                        target=target,
                        baseline="",
                        load=load,
                        connections=conns,
                        metric=metric,
                        before=cp.mean_before,
                        after=cp.mean_after,
                        change_pct=cp.change_pct,
                        worse_pct=ch.worse_pct,
                        pvalue=cp.pvalue,
                        pvalue_raw=cp.pvalue,
                        n_before=cp.n_before,
                        n_after=cp.n_after,
                        change_date=first.night,
                        change_run_id=first.run_id,
                        fingerprint=fingerprint,
                        regression=True,
                        alerting=metric != "p99",
                    )
                )
    problems = []
    if not checked:
        problems.append(
            f"history: not enough nights on machine {fingerprint}: the longest series has "
            f"{longest}, the history gate needs {params.min_nights}"
        )
    return findings, problems, positions, fingerprint


# --- the command -----------------------------------------------------------------------------


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
        fingerprint = str((header.get("machine") or {}).get("fingerprint") or "") or None
        context["run"] = header.get("run_id", run_dir.name)
        if use:
            f, p, _ = check_within(run_dir, use, within_params(cfg))
            findings += f
            problems += p
        elif not history_gate:
            problems.append("no pairs to compare: set check.pairs in bench.toml or --pairs")
    positions: dict[str, dict[str, int]] = {}
    with History(cfg.path("history")) as history:
        if history_gate:
            f, p, positions, fp = check_history(history, fingerprint, history_params(cfg))
            findings += f
            problems += p
            context["machine"] = fp
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


def run(args: argparse.Namespace) -> int:
    from loadgen.cli import config_from

    cfg = config_from(args)
    pairs = parse_pairs(args.pairs) if args.pairs else None
    try:
        result = run_check(
            cfg, run_dir=args.run_dir, history_gate=args.history, pairs=pairs, out_dir=args.out
        )
    except HistoryError as exc:
        print(f"fwbench: history: {exc}", file=sys.stderr)
        return alerts.EXIT_ERROR
    except ConfigError:
        raise  # the CLI says which key, and exits 2
    except Exception:  # exit 1 means "regression": a crash must not look like one
        traceback.print_exc()
        print("fwbench: check failed (see above)", file=sys.stderr)
        return alerts.EXIT_ERROR
    print(result.markdown)
    print(f"webhook: {result.delivery.describe()}", file=sys.stderr)
    print(result.json_path)
    return result.status
