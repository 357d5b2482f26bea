"""``fwbench envs [TARGET...]``: build (or reuse) each target's pinned environment."""

from __future__ import annotations

import argparse
import sys
import time

from commands.common import config_from, discover_targets
from loadgen.envs import BuildOutcome, build_all, index_args
from loadgen.table import mib
from loadgen.targets import Target


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="*", help="target names (default: all)")
    p.add_argument("--rebuild", action="store_true", help="rebuild even when cached")


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    targets = discover_targets(cfg, args.targets or ["all"])
    started = time.monotonic()

    def report(i: int, n: int, o: BuildOutcome) -> None:
        if o.env is None:
            print(f"[{i}/{n}] {o.target}: FAILED: {o.error}", flush=True)
            for line in o.detail.splitlines()[-15:]:
                print(f"    {line}", flush=True)
        else:
            how = "cached" if o.env.cached else f"built in {o.env.build_s:.1f} s"
            print(
                f"[{i}/{n}] {o.target}: {how}, {len(o.env.packages)} packages, "
                f"{mib(o.env.size_bytes)} MiB, Python {o.env.python_version}",
                flush=True,
            )

    def starting(i: int, n: int, t: Target) -> None:
        print(f"[{i}/{n}] building env {t.name} (uv) ...", flush=True)

    outcomes = build_all(
        targets,
        cfg.path("envs_dir"),
        rebuild=args.rebuild,
        report=report,
        starting=starting,
        sources=index_args(cfg),
    )
    failed = [o for o in outcomes if o.env is None]
    size = sum(o.env.size_bytes for o in outcomes if o.env)
    print(
        f"{len(outcomes) - len(failed)}/{len(outcomes)} environments ready in "
        f"{time.monotonic() - started:.1f} s, {mib(size)} MiB in all",
        file=sys.stderr if failed else sys.stdout,
    )
    return 1 if failed else 0
