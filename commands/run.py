"""``fwbench run``: run the matrix of bench.toml; flags narrow or override it for one run.

The last line of output is the run directory's path. Exit status: 0 when at least one trial
was measured, 1 when none was (every trial failed, or no trial ran: said on stderr just before
the path), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import get_args

from commands.common import config_from, discover_targets, nothing_measured, split_names
from loadgen.config import Config, ConfigError, Protocol, Scenario
from loadgen.records.packages import CHANNELS
from loadgen.runner import Runner, override_loads


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--targets", help="comma-separated target names (default: bench.toml's)")
    p.add_argument("--client", choices=("raw", "locust"), help="load client for every setting")
    p.add_argument("--connections", help="comma-separated connection counts, e.g. 16,64")
    p.add_argument("--rate", type=float, help="open loop at this many requests/s (0: closed)")
    p.add_argument("--duration", type=float, help="measured seconds per trial")
    p.add_argument("--warmup", type=float, help="warm-up seconds per trial (discarded)")
    p.add_argument("--trials", type=int, help="trials per target and setting")
    p.add_argument("--locust-workers", type=int, help="locust: a master and N local workers")
    p.add_argument(
        "--scenario",
        choices=get_args(Scenario),
        help="hello, json, db, queries, fortunes, ws-echo (raw client or locust: hello); "
        "browse (locust)",
    )
    p.add_argument("--queries", type=int, help="the queries scenario's ?n= (1..500)")
    p.add_argument(
        "--protocol",
        choices=get_args(Protocol),
        help="every HTTP setting over http1, h2c (HTTP/2, prior knowledge) or h2 (HTTP/2 over "
        "TLS); ws-echo settings stay on HTTP/1.1",
    )
    p.add_argument("--users", type=int, help="locust users (default: the connection count)")
    p.add_argument(
        "--workers",
        help="comma-separated worker counts, a sweep (e.g. 1,2): each on its own server CPUs",
    )
    p.add_argument(
        "--channel",
        help="comma-separated channels: pinned (the committed lock), latest (requirements.in "
        "re-resolved to the newest releases, series <target>@latest), pre (pre-releases too)",
    )
    p.add_argument(
        "--cost",
        action="store_true",
        default=None,
        help="after the matrix, count instructions per request (as fwbench cost)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        default=None,
        help="after the matrix, a profiled trial per target (py-spy flame graphs in the report)",
    )


def configure(args: argparse.Namespace) -> Config:
    """bench.toml with the run flags applied (every value checked as bench.toml's are)."""
    cfg = config_from(args)
    if args.trials is not None:
        cfg = cfg.override(**{"run.trials": args.trials})
    if getattr(args, "cost", None):
        cfg = cfg.override(**{"run.cost": True})
    if getattr(args, "workers", None):
        cfg = cfg.override(**{"server.workers": _numbers("--workers", args.workers)})
    if getattr(args, "profile", None):
        cfg = cfg.override(**{"run.profile": True})
    channels = parse_channels(getattr(args, "channel", None))
    if channels:
        cfg = cfg.override(**{"run.channels": channels})
    conns = _numbers("--connections", args.connections) if args.connections else None
    return override_loads(
        cfg,
        client=args.client,
        connections=conns,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        locust_workers=args.locust_workers,
        scenario=args.scenario,
        queries=getattr(args, "queries", None),
        users=args.users,
        protocol=getattr(args, "protocol", None),
    )


def _numbers(flag: str, text: str) -> list[int]:
    try:
        values = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise ConfigError(flag, f"{text!r} is not a list of numbers", source="flag") from None
    if not values:
        raise ConfigError(flag, "is empty", source="flag")
    return values


def parse_channels(text: str | None) -> list[str]:
    """``"pinned,latest"`` → ``["pinned", "latest"]``; a name that is no channel, a channel
    named twice, or an empty list is a :class:`ConfigError` naming ``--channel``."""
    if text is None:
        return []
    names = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in names if c not in CHANNELS]
    if bad or not names:
        what = f"unknown channel(s) {', '.join(map(repr, bad))}" if bad else "no channel given"
        raise ConfigError("--channel", f"{what}; use {', '.join(CHANNELS)}", source="flag")
    if len(set(names)) != len(names):
        raise ConfigError("--channel", f"{text!r} names a channel twice", source="flag")
    return names


def make_runner(cfg: Config, names: list[str]) -> Runner:
    return Runner(cfg, discover_targets(cfg, names, flag="--targets"))


def run(args: argparse.Namespace) -> int:
    """0: something was measured; 1: nothing was (every trial failed, or none ran); 130:
    interrupted. The last line is the run folder whatever happened."""
    cfg = configure(args)
    runner = make_runner(cfg, split_names(args.targets))
    code = runner.execute()
    if code == 0:
        nothing = nothing_measured(runner.trials_path)
        if nothing:
            print(nothing, file=sys.stderr, flush=True)
            code = 1
    print(runner.run_dir, file=sys.stdout, flush=True)
    return code
