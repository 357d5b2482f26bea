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
import sys
import traceback
from pathlib import Path

from commands.common import config_from
from loadgen.config import ConfigError, Pair

EXIT_ERROR = 2  # as analysis.alerts.EXIT_ERROR


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                   help="a run directory: compare check.pairs measured in it")  # fmt: skip
    p.add_argument("--history", action="store_true",
                   help="also look for change points in the nightly history")  # fmt: skip
    p.add_argument("--pairs", help="baseline:candidate,... (default: bench.toml's check.pairs)")
    p.add_argument("--out", type=Path, help="where regressions.json/.md go")


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


def run(args: argparse.Namespace) -> int:
    from analysis.check import run_check
    from analysis.history import HistoryError

    cfg = config_from(args)
    pairs = parse_pairs(args.pairs) if args.pairs else None
    try:
        result = run_check(
            cfg, run_dir=args.run_dir, history_gate=args.history, pairs=pairs, out_dir=args.out
        )
    except HistoryError as exc:
        print(f"fwbench: history: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ConfigError:
        raise  # the CLI says which key, and exits 2
    except Exception:  # exit 1 means "regression": a crash must not look like one
        traceback.print_exc()
        print("fwbench: check failed (see above)", file=sys.stderr)
        return EXIT_ERROR
    print(result.markdown)
    print(f"webhook: {result.delivery.describe()}", file=sys.stderr)
    print(result.json_path)
    return result.status
