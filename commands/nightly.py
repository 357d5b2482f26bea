"""``fwbench nightly``: the one command a timer calls (see docs/nightly.md).

In order: build or refresh the targets' environments (cached by input hash), verify every
target, run bench.toml's ``[nightly]`` profile (interleaved trials, as ``fwbench run``), store
the finished run into the history database, write the report with trend charts, run both
regression gates (``fwbench check RUN_DIR --history``: the within-run gate only when
``check.pairs`` is set), deliver new alerts, with ``[check] auto_bisect`` bisect the packages
behind each new history alert (``bisect.jsonl`` next to ``regressions.json``), and exit with the
check's status:

    0 clean · 1 regression · 2 error or not enough data · 130 interrupted

A target that failed to build or verify makes a clean night exit 2 (it was not measured). An
interrupted run is not stored (a night with half its trials would read as a drop). The last
line of output is the report's path.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from analysis import alerts
from analysis.check import CheckResult, run_check
from analysis.history import History, HistoryError
from analysis.report import write_report
from analysis.trends import embed, write_trends
from commands.common import config_from, discover_targets, split_names
from loadgen.config import Config, to_dict
from loadgen.records import read_records
from loadgen.runner import Runner
from loadgen.targets import Target


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--targets", help="comma-separated target names (default: [nightly]'s)")


def nightly_config(cfg: Config) -> Config:
    """The config with ``[run]`` replaced by the ``[nightly]`` profile."""
    n = cfg.nightly
    return cfg.override(
        **{
            "run.targets": list(n.targets),
            "run.trials": n.trials,
            "run.load": [to_dict(ld) for ld in n.load],
            "run.cost": n.cost,
            "run.channels": list(n.channels),
            "run.profile": n.profile,
        }
    )


def _say(text: str) -> None:
    print(f"nightly: {text}", file=sys.stderr, flush=True)


def write_nightly_report(cfg: Config, history: History, run_dir: Path) -> Path:
    """The run's report with the trends section embedded."""
    page = write_report([run_dir], None, cfg.path("reports_dir"))
    trends = write_trends(history, page.parent)
    if trends is not None:
        page.write_text(embed(page.read_text(encoding="utf-8"), trends.html), "utf-8")
    return page


def nightly(cfg: Config, targets: list[Target]) -> int:
    """One night: run the (already nightly) config over ``targets``, store, report, check."""
    if not targets:
        _say("no target to run")
        return alerts.EXIT_ERROR
    runner = Runner(cfg, targets)
    code = runner.execute()  # builds every environment once, verifies, runs the matrix
    if code == 130:
        _say(f"interrupted; {runner.run_dir} is kept but not stored in the history")
        print(runner.run_dir)
        return 130
    trouble = [
        f"{o.target}: environment failed: {o.error}"
        for o in runner.builds.values()
        if o.env is None
    ]
    trouble += [f"{v.target}: verification failed" for v in runner.verdicts.values() if not v.ok]
    records = list(read_records(runner.trials_path))
    failed = [r for r in records if r.status == "failed"]
    if failed:
        trouble.append(f"{len(failed)} of {len(records)} trials failed")
    try:
        with History(cfg.path("history")) as history:
            stored = history.store_run(runner.run_dir, profile="nightly")
            _say(f"stored run {stored.run_id}: {stored.trials} trials in {history.path}")
            try:
                page = write_nightly_report(cfg, history, runner.run_dir)
            except Exception as exc:  # the data is safe in the history: say why, go on
                _say(f"report failed: {type(exc).__name__}: {exc}")
                page = runner.run_dir
    except HistoryError as exc:
        _say(f"history: {exc}")
        print(runner.run_dir)
        return alerts.EXIT_ERROR
    out_dir = page.parent if page.is_file() else runner.run_dir
    try:
        result = run_check(cfg, run_dir=runner.run_dir, history_gate=True, out_dir=out_dir)
    except Exception:  # exit 1 means "regression": a crash must not look like one
        traceback.print_exc()
        _say("check failed (see above)")
        print(page)
        return alerts.EXIT_ERROR
    print(result.markdown)
    if cfg.check.auto_bisect:
        _bisect(cfg, result, out_dir)
    for t in trouble:
        _say(t)
    _say(f"webhook: {result.delivery.describe()}")
    _say(f"regressions: {result.json_path}")
    status = result.status
    if status == alerts.EXIT_CLEAN and trouble:
        status = alerts.EXIT_ERROR
    print(page)
    return status


def _bisect(cfg: Config, result: CheckResult, out_dir: Path) -> None:
    """``[check] auto_bisect``: name the package behind each new history alert (a crash here
    never hides the check's verdict)."""
    from commands.bisect import nightly_bisects, summary

    try:
        done = nightly_bisects(cfg, result.findings, result.registered.new, out_dir, _say)
    except Exception:
        traceback.print_exc()
        _say("bisect failed (see above)")
        return
    if done:
        print("\n## Bisect\n")
        for rec in done:
            print(f"- {rec.target}: {summary(rec)} ({rec.run_dir})")


def run(args: argparse.Namespace) -> int:
    cfg = nightly_config(config_from(args))
    names = split_names(args.targets)
    return nightly(cfg, discover_targets(cfg, names, flag="--targets", key="nightly.targets"))
