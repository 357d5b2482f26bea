"""``fwbench bench``: the main job behind ``make bench``.

Builds every target's environment, verifies every target, runs the matrix of bench.toml, prints
the verification and results tables, and writes the report. The last line is the report's path
(or the run directory's, should the report fail). Exit status: 0 when every target verified and
something was measured; 1 when a target failed verification, nothing was measured (every trial
failed: said on stderr just before the path) or the report failed; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from commands.common import discover_targets, nothing_measured, protocol_table, split_names
from commands.report import write_report
from commands.run import add_arguments as add_run_flags
from commands.run import configure
from commands.verify import scenario_table, verdict_table
from loadgen.config import Config
from loadgen.records import read_records
from loadgen.runner import Runner
from loadgen.table import render_table
from loadgen.targets import Target


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_flags(p)


def results_table(trials_path: Path) -> str:
    rows = []
    for r in read_records(trials_path):
        lat = r.latency_ms
        rows.append(
            [
                r.target,
                r.load if r.protocol == "http1" else f"{r.load} ({r.protocol})",
                r.connections,
                r.trial,
                r.status,
                f"{r.rps:,.0f}" if r.status == "ok" else "",
                f"{lat.p50:.2f}" if lat else "",
                f"{lat.p99:.2f}" if lat else "",
                r.error_count or "",
                "yes" if r.client_saturated else "",
                r.failure[:50],
            ]
        )
    return render_table(
        [
            "target",
            "load",
            "conns",
            "trial",
            "status",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "client sat.",
            "failure",
        ],
        rows,
    )


def bench(cfg: Config, targets: list[Target]) -> int:
    """Build, verify, measure, print the tables, write the report; the last line is its path
    (or the run folder's, should the report fail)."""
    runner = Runner(cfg, targets)
    code = runner.execute()  # builds every environment once, verifies, runs the matrix
    verdicts = list(runner.verdicts.values())
    print(verdict_table(verdicts))
    print()
    scenarios = scenario_table(verdicts)
    if scenarios:  # only targets declaring scenarios beyond hello
        print(scenarios + "\n")
    protocols = protocol_table(verdicts)
    if protocols:  # only targets declaring HTTP/2 or a WebSocket scenario
        print(protocols + "\n")
    print(results_table(runner.trials_path))
    print()
    nothing = nothing_measured(runner.trials_path) if code == 0 else None
    try:
        html = write_report([runner.run_dir], None, cfg.path("reports_dir"))
    except Exception as exc:  # the run's data is safe on disk: say why the report failed
        print(f"fwbench: report failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        if nothing:
            print(nothing, file=sys.stderr)
        sys.stderr.flush()
        print(runner.run_dir)
        return 1
    if nothing:
        print(nothing, file=sys.stderr, flush=True)
    print(html)
    if code:
        return code
    return 1 if nothing or not all(v.ok for v in verdicts) else 0


def run(args: argparse.Namespace) -> int:
    cfg = configure(args)
    return bench(cfg, discover_targets(cfg, split_names(args.targets), flag="--targets"))
