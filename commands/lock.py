"""``fwbench lock [TARGET...] [--upgrade] [--check]``: re-resolve targets' locks with uv.

Without ``--upgrade`` a lock keeps every version ``requirements.in`` still allows: only a stale
lock (``requirements.in`` changed by hand) changes. ``--upgrade`` moves every package to its
newest release and bumps the ``==`` pins of ``requirements.in`` to match: one command bumps
every target. ``--check`` writes nothing and exits 1 when any lock is stale (CI's guard).
Per target, a table of the packages whose version changed (name, before, after).
"""

from __future__ import annotations

import argparse
import sys

from commands.common import config_from, discover_targets
from loadgen.envs import EnvError
from loadgen.locks import Relock, relock
from loadgen.table import render_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="*", help="target names (default: all)")
    p.add_argument(
        "--upgrade",
        action="store_true",
        help="every package to its newest release; bumps requirements.in's == pins",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when a lock is stale against requirements.in",
    )


def run(args: argparse.Namespace) -> int:
    if args.check and args.upgrade:
        print("fwbench lock: --check and --upgrade do not go together", file=sys.stderr)
        return 2
    cfg = config_from(args)
    targets = discover_targets(cfg, args.targets or ["all"])
    stale: list[str] = []
    failed: list[str] = []
    for t in targets:
        try:
            r = relock(t, cfg, upgrade=args.upgrade)
        except EnvError as exc:
            print(f"{t.name}: FAILED: {exc}", file=sys.stderr)
            for line in exc.detail.splitlines()[-10:]:
                print(f"    {line}", file=sys.stderr)
            failed.append(t.name)
            continue
        _show(r)
        if not r.changes and not r.in_changed:
            continue
        stale.append(t.name)
        if not args.check:
            (t.dir / "requirements.txt").write_text(r.lock_text, encoding="utf-8")
            if r.in_changed:
                (t.dir / "requirements.in").write_text(r.in_text, encoding="utf-8")
    verb = "stale" if args.check else "changed"
    print(
        f"{len(stale)}/{len(targets)} lock(s) {verb}" + (f": {', '.join(stale)}" if stale else "")
    )
    if failed:
        print(f"could not resolve: {', '.join(failed)}", file=sys.stderr)
        return 2
    return 1 if args.check and stale else 0


def _show(r: Relock) -> None:
    if not r.changes:
        print(f"{r.target}: up to date")
        return
    print(f"{r.target}: {len(r.changes)} package(s) changed")
    rows = [[c.name, c.before or "(new)", c.after or "(removed)"] for c in r.changes]
    table = render_table(["package", "before", "after"], rows)
    print("\n".join(f"    {line}" for line in table.splitlines()))
