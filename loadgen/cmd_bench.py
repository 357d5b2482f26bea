"""``fwbench bench``: the main job behind ``make bench``.

Builds every target's environment, verifies every target, runs the matrix of bench.toml, prints
the verification and results tables, and writes the report. The last line is the report's path
(or the run directory's, should the report fail).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadgen.cmd_envs import run as run_envs
from loadgen.cmd_run import add_run_flags, execute, make_runner
from loadgen.cmd_verify import verdict_table
from loadgen.records import read_records
from loadgen.table import render_table


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="build, verify, measure and report (what make bench runs)")
    add_run_flags(p)


def results_table(trials_path: Path) -> str:
    rows = []
    for r in read_records(trials_path):
        lat = r.latency_ms
        rows.append(
            [
                r.target,
                r.load,
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


def run(args: argparse.Namespace) -> int:
    envs_args = argparse.Namespace(
        config=args.config, targets=(args.targets.split(",") if args.targets else []), rebuild=False
    )
    run_envs(envs_args)  # progress per target; failures are reported again by the verifier
    runner = make_runner(args)
    code = execute(runner)
    verdicts = list(runner.verdicts.values())
    print(verdict_table(verdicts))
    print()
    print(results_table(runner.trials_path))
    print()
    try:
        from analysis.report import write_report
    except ImportError:
        print(runner.run_dir)
        return code or (0 if all(v.ok for v in verdicts) else 1)
    try:
        html = write_report([runner.run_dir], None, runner.cfg.path("reports_dir"))
    except Exception as exc:  # the run's data is safe on disk: say why the report failed
        print(f"fwbench: report failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(runner.run_dir)
        return 1
    print(html)
    return code or (0 if all(v.ok for v in verdicts) else 1)
