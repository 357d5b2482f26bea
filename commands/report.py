"""``fwbench report RUN_DIR... [--out DIR]``: the HTML, Markdown and JSON report of a run.

Several run directories are pooled into one report. A bare run id is looked up under
``<reports_dir>/runs/``. Exit status 0 on success, 2 for a run that cannot be read or a folder
that is not a report of ours (never overwritten: see :mod:`analysis.report`).

pandas, matplotlib and the rest are imported only when a report is written (they take seconds
to load on a small VM): ``fwbench bench`` imports this module before its run starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from analysis.errors import LoadError, ReportDirError
from commands.common import config_from


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="a run directory, or a run id under <reports_dir>/runs/ "
        "(several are pooled into one report)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="write the report here instead of <reports_dir>/<run-id>/ "
        "(<reports_dir>/latest is then left alone)",
    )


def write_report(run_dirs: list[Path], out_dir: Path | None, reports_dir: Path) -> Path:
    """Write the report of ``run_dirs``; returns the HTML page (see :mod:`analysis.report`)."""
    from analysis import report

    return report.write_report(run_dirs, out_dir, reports_dir)


def resolve_run_dir(arg: str, reports_dir: Path) -> Path:
    """A run directory from a path or a run id."""
    p = Path(arg)
    if (p / "run.json").is_file():
        return p
    by_id = reports_dir / "runs" / arg
    if (by_id / "run.json").is_file():
        return by_id
    if p.exists():
        raise LoadError(f"{p}: not a run directory (no run.json)")
    raise LoadError(f"{arg}: no such run directory (nor a run id under {reports_dir / 'runs'})")


def command_seconds() -> float:
    """Seconds since this process started: what the user waited, the interpreter's start-up
    and every import included (pandas and matplotlib alone take seconds on a small VM).

    Linux: the process' start in clock ticks since boot against the uptime, both to 10 ms
    (psutil adds the boot time, known only to the second); elsewhere psutil's figure."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        return max(0.0, uptime - started)
    except (OSError, ValueError, IndexError):
        import psutil

        return max(0.0, time.time() - psutil.Process().create_time())


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    reports_dir = cfg.path("reports_dir")
    try:
        dirs = [resolve_run_dir(a, reports_dir) for a in args.run_dirs]
        html_path = write_report(dirs, args.out, reports_dir)
    except (LoadError, ReportDirError) as exc:
        print(f"fwbench report: {exc}", file=sys.stderr)
        return 2
    folder = html_path.parent
    print(f"report: {html_path}")
    print(f"markdown: {folder / 'summary.md'}")
    print(f"json: {folder / 'summary.json'}")
    print(f"written in {command_seconds():.1f} s", file=sys.stderr)
    return 0
