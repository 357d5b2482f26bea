"""The ``fwbench`` command: a thin argparse front; every subcommand lives in its own module.

Exit status: 0 success, 1 a target or check failed, 2 bad input (config, flags).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from loadgen.config import Config, ConfigError, load_config
from loadgen.targets import Target, discover

# Subcommand modules: each has add_parser(subparsers) and run(args) -> int.
SUBCOMMANDS = (
    "loadgen.cmd_targets",
    "loadgen.cmd_envs",
    "loadgen.cmd_verify",
    "loadgen.cmd_run",
    "loadgen.loadcmd",
    "loadgen.calibrate",
    "loadgen.cmd_locust_worker",
    "loadgen.cmd_bench",
    "analysis.cmd_report",
    "analysis.cmd_compare",
    "analysis.cmd_check",
    "analysis.cmd_nightly",
)


def config_from(args: argparse.Namespace) -> Config:
    """The config named by --config, else ./bench.toml when present, else the defaults."""
    path = args.config
    if path is None and Path("bench.toml").is_file():
        path = "bench.toml"
    return load_config(path)


def discover_targets(cfg: Config, names: Sequence[str] = ()) -> list[Target]:
    """The targets asked for (all when none), warning on stderr about skipped folders."""
    found = discover(cfg.path("targets_dir"))
    for s in found.skipped:
        print(f"fwbench: skipped target {s.name}: {s.reason}", file=sys.stderr)
    wanted = list(names) or list(cfg.run.targets)
    unknown = [n for n in wanted if n != "all" and n not in found.names()]
    if unknown:
        raise ConfigError("targets", f"unknown target(s): {', '.join(unknown)}", source="flag")
    return found.select(wanted)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fwbench", description="Load-test and compare Python web frameworks."
    )
    parser.add_argument("--config", metavar="FILE", help="bench.toml to use (default ./bench.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not written yet: the command is simply absent
                continue
            raise
        before = set(sub.choices)
        mod.add_parser(sub)
        for new in set(sub.choices) - before:
            if sub.choices[new].get_default("func") is None:
                sub.choices[new].set_defaults(func=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"fwbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fwbench: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
