"""``fwbench verify [TARGET...|--all] [--json]``: build, start, check and stop each target.

The hello checks, then every scenario a target declares (its ``scenarios`` verdicts: a table
after the hello one, or ``scenarios`` in each JSON verdict). Exit status 0 only when every
target asked for passes hello and every scenario it declares.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from commands.common import config_from, discover_targets, protocol_table
from loadgen.config import Config
from loadgen.launcher import LaunchOptions
from loadgen.records.scenarios import SCENARIOS
from loadgen.table import mib, render_table
from loadgen.targets import Target
from loadgen.verify import Verdict, verify_all


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="*", help="target names")
    p.add_argument("--all", action="store_true", help="every target (the default with no names)")
    p.add_argument("--json", action="store_true", help="print a JSON list of verdicts")


def verify_targets(cfg: Config, targets: list[Target], *, quiet: bool = False) -> list[Verdict]:
    def progress(i: int, n: int, v: Verdict) -> None:
        if quiet:
            return
        line = f"[{i}/{n}] {v.target}: {'ok' if v.ok else 'FAILED'}"
        for c in v.failures:
            line += f"\n    fail {c.name}: {c.reason}"
        for c in v.warnings:
            line += f"\n    warn {c.name}: {c.reason}"
        for name, reason in v.scenario_failures:
            line += f"\n    fail scenario {name}: {reason}"
        if not v.ok and v.log_tail:
            line += "\n    last log lines:\n" + "\n".join(
                "      " + s for s in v.log_tail.splitlines()[-10:]
            )
        print(line, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="fwbench-verify-") as logs:
        return verify_all(
            targets,
            cfg.path("envs_dir"),
            log_dir=Path(logs),
            opts=LaunchOptions.from_config(cfg),
            on_done=progress,
        )


def verdict_table(verdicts: list[Verdict]) -> str:
    rows = []
    for v in verdicts:
        rows.append(
            [
                v.target,
                f"{v.framework} {v.framework_version}".strip(),
                f"{v.server} {v.server_version}".strip(),
                v.python,
                v.kind,
                "ok" if v.ok else "FAILED",
                "" if v.startup_s is None else f"{v.startup_s:.2f}",
                mib(v.idle_rss_bytes),
                {True: "yes", False: "no", None: "?"}[v.keepalive],
                len(v.packages) or "",
                "; ".join(f"{c.name}: {c.reason}" for c in v.failures + v.warnings)[:70],
            ]
        )
    headers = [
        "target",
        "framework",
        "server",
        "python",
        "kind",
        "verdict",
        "start s",
        "idle MiB",
        "keep-alive",
        "pkgs",
        "notes",
    ]
    return render_table(headers, rows)


def scenario_table(verdicts: list[Verdict]) -> str:
    """Targets by scenario: ok, FAILED, n/a (not applicable) or blank (not declared); then the
    reason of each failure. Empty when no target declares a scenario."""
    names = [s for s in SCENARIOS if s != "hello"]
    with_scenarios = [v for v in verdicts if v.scenarios]
    if not with_scenarios:
        return ""
    mark = {True: "ok", False: "FAILED", None: "n/a"}
    rows = []
    for v in with_scenarios:
        by = dict(v.scenarios)
        rows.append(
            [
                v.target,
                "ok" if v.ok else "FAILED",
                *(mark[by[n].ok] if n in by else "" for n in names),
            ]
        )
    lines = [render_table(["target", "hello", *names], rows)]
    lines += [
        f"{v.target} {name}: {reason}"
        for v in with_scenarios
        for name, reason in v.scenario_failures
    ]
    return "\n".join(lines)


def all_ok(verdicts: list[Verdict]) -> bool:
    """Every target passes hello and every scenario it declares."""
    return bool(verdicts) and all(v.ok and not v.scenario_failures for v in verdicts)


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    # --all and no names alike: every target of the targets folder (not run.targets)
    targets = discover_targets(cfg, ["all"] if args.all else args.targets or ["all"])
    verdicts = verify_targets(cfg, targets, quiet=args.json)
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts], indent=2))
    else:
        print(verdict_table(verdicts))
        scenarios = scenario_table(verdicts)
        if scenarios:
            print("\n" + scenarios)
        protocols = protocol_table(verdicts)
        if protocols:
            print("\n" + protocols)
    return 0 if all_ok(verdicts) else 1
