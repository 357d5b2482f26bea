"""``fwbench compare RUN_A RUN_B``: per target, the change in requests/s and p99 from A to B.

Refuses (exit status 2) when the two runs' machine fingerprints differ, unless ``--force``;
forced, the output opens and closes with the warning. Exit status 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from analysis.errors import LoadError
from commands.common import config_from
from commands.report import resolve_run_dir

ALPHA = 0.05  # as analysis.compare.ALPHA (not imported here: it loads pandas)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", help="the baseline run (directory or run id)")
    p.add_argument("run_b", metavar="RUN_B", help="the run compared with it")
    p.add_argument(
        "--force",
        action="store_true",
        help="compare even when the machine fingerprints differ (with a warning)",
    )
    p.add_argument(
        "--alpha", type=float, default=ALPHA, help=f"significance level (default {ALPHA})"
    )
    p.add_argument(
        "--no-correction",
        action="store_true",
        help="do not Holm-correct the p-values across targets",
    )
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1:
        print(f"fwbench compare: --alpha {args.alpha} is not in (0, 1)", file=sys.stderr)
        return 2
    from analysis.compare import compare, machine_warning, render_markdown, render_text
    from analysis.load import load_runs
    from analysis.summary import summarize

    cfg = config_from(args)
    reports_dir = cfg.path("reports_dir")
    try:
        a = summarize(load_runs([resolve_run_dir(args.run_a, reports_dir)], samples=False))
        b = summarize(load_runs([resolve_run_dir(args.run_b, reports_dir)], samples=False))
    except LoadError as exc:
        print(f"fwbench compare: {exc}", file=sys.stderr)
        return 2
    result = compare(a, b, alpha=args.alpha, correct=not args.no_correction)
    if result.differences and not args.force:
        print(f"fwbench compare: refused. {machine_warning(result)}", file=sys.stderr)
        print("fwbench compare: use --force to compare anyway.", file=sys.stderr)
        return 2
    if result.differences:
        print(machine_warning(result), file=sys.stderr)
    sys.stdout.write(render_markdown(result) if args.markdown else render_text(result))
    return 0
