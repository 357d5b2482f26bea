"""What every command needs: the config named on the command line, the targets asked for."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from loadgen.config import Config, ConfigError, load_config
from loadgen.targets import Target, discover


def config_from(args: argparse.Namespace) -> Config:
    """The config named by --config, else ./bench.toml when present, else the defaults."""
    path = getattr(args, "config", None)
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


def split_names(text: str | None) -> list[str]:
    """``"a, b"`` → ``["a", "b"]``; None or empty → ``[]``."""
    return [n.strip() for n in text.split(",") if n.strip()] if text else []
