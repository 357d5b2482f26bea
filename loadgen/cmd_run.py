"""``fwbench run``: run the matrix of bench.toml; flags narrow or override it for one run.

The last line of output is the run directory's path.
"""

from __future__ import annotations

import argparse
import sys

from loadgen.cli import config_from, discover_targets
from loadgen.config import Config, ConfigError
from loadgen.runner import Runner, override_loads


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--targets", help="comma-separated target names (default: bench.toml's)")
    p.add_argument("--client", choices=("raw", "locust"), help="load client for every setting")
    p.add_argument("--connections", help="comma-separated connection counts, e.g. 16,64")
    p.add_argument("--rate", type=float, help="open loop at this many requests/s (0: closed)")
    p.add_argument("--duration", type=float, help="measured seconds per trial")
    p.add_argument("--warmup", type=float, help="warm-up seconds per trial (discarded)")
    p.add_argument("--trials", type=int, help="trials per target and setting")
    p.add_argument("--locust-workers", type=int, help="locust: a master and N local workers")
    p.add_argument("--scenario", choices=("hello", "browse"), help="locust scenario")
    p.add_argument("--users", type=int, help="locust users (default: the connection count)")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the load matrix and write a run directory")
    add_run_flags(p)


def configure(args: argparse.Namespace) -> Config:
    cfg = config_from(args)
    if args.trials is not None:
        cfg = cfg.override(**{"run.trials": args.trials})
    conns = None
    if args.connections:
        try:
            conns = [int(c) for c in args.connections.split(",") if c.strip()]
        except ValueError:
            raise ConfigError(
                "--connections", f"{args.connections!r} is not a list of numbers", source="flag"
            ) from None
    return override_loads(
        cfg,
        client=args.client,
        connections=conns,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        locust_workers=args.locust_workers,
        scenario=args.scenario,
        users=args.users,
    )


def make_runner(args: argparse.Namespace) -> Runner:
    cfg = configure(args)
    names = [n.strip() for n in args.targets.split(",")] if args.targets else []
    return Runner(cfg, discover_targets(cfg, names))


def execute(runner: Runner) -> int:
    """Verify, then run the matrix; 130 when interrupted (finished trials are kept)."""
    try:
        runner.prepare()
        runner.run()
    except KeyboardInterrupt:
        runner.mark_interrupted()
        return 130
    return 0


def run(args: argparse.Namespace) -> int:
    runner = make_runner(args)
    code = execute(runner)
    print(runner.run_dir, file=sys.stdout, flush=True)
    return code
