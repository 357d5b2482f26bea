"""What every command needs: the config named on the command line, the targets asked for."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from loadgen.config import Config, ConfigError, load_config
from loadgen.records import read_records
from loadgen.records.scenarios import WS_SCENARIOS
from loadgen.table import render_table
from loadgen.targets import Target, discover

if TYPE_CHECKING:
    from loadgen.verify import Verdict


def config_from(args: argparse.Namespace) -> Config:
    """The config named by --config, else ./bench.toml when present, else the defaults."""
    path = getattr(args, "config", None)
    if path is None and Path("bench.toml").is_file():
        path = "bench.toml"
    return load_config(path)


def discover_targets(
    cfg: Config,
    names: Sequence[str] = (),
    *,
    flag: str = "TARGET",
    key: str = "run.targets",
) -> list[Target]:
    """The targets asked for, warning on stderr about skipped folders.

    ``names`` come from the command line (``flag`` names it in an error); none given: the
    config's ``run.targets`` (``key`` names it: ``nightly.targets`` once the nightly profile
    is in ``run``). A name the targets folder does not hold is a :class:`ConfigError` naming
    where it came from; one whose folder was skipped says so.
    """
    found = discover(cfg.path("targets_dir"))
    for s in found.skipped:
        print(f"fwbench: skipped target {s.name}: {s.reason}", file=sys.stderr)
    wanted = list(names) or list(cfg.run.targets)
    unknown = [n for n in wanted if n != "all" and n not in found.names()]
    if unknown:
        skipped = [n for n in unknown if n in {s.name for s in found.skipped}]
        reason = f"unknown target(s): {', '.join(unknown)}"
        if skipped:
            reason += f" ({', '.join(skipped)}: skipped, see above)"
        if names:
            raise ConfigError(flag, reason, source="flag")
        raise ConfigError(key, reason)
    return found.select(wanted)


def nothing_measured(trials_path: Path) -> str | None:
    """What to say when the run measured nothing (no trial ended ok), else None."""
    try:
        statuses = [r.status for r in read_records(trials_path)]
    except FileNotFoundError:
        statuses = []
    if any(s == "ok" for s in statuses):
        return None
    if not statuses:
        return "fwbench: nothing was measured: no trial was recorded"
    n = len(statuses)
    na = statuses.count("not_applicable")
    if na == n:
        return f"fwbench: nothing was measured: {plural(n)}, not applicable"
    if na:
        return f"fwbench: nothing was measured: {plural(n - na)} failed, {na} not applicable"
    return f"fwbench: nothing was measured: {'the' if n == 1 else 'all'} {plural(n)} failed"


def plural(n: int, word: str = "trial") -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def split_names(text: str | None) -> list[str]:
    """``"a, b"`` → ``["a", "b"]``; None or empty → ``[]``."""
    return [n.strip() for n in text.split(",") if n.strip()] if text else []


def protocol_table(verdicts: Sequence[Verdict]) -> str:
    """Targets by HTTP/2 protocol and WebSocket scenario: ok, FAILED, n/a, or blank (not
    declared); then the reason of each failure. Empty when no target declares one."""
    names = ["h2c", "h2", *sorted(WS_SCENARIOS)]
    rows, why = [], []
    mark = {True: "ok", False: "FAILED", None: "n/a"}
    for v in verdicts:
        by = {**dict(v.protocols), **{n: s for n, s in v.scenarios if n in WS_SCENARIOS}}
        if not by:
            continue
        rows.append([v.target, *(mark[by[n].ok] if n in by else "" for n in names)])
        why += [f"{v.target} {n}: {by[n].reason}" for n in names if n in by and by[n].ok is False]
    if not rows:
        return ""
    return "\n".join([render_table(["target", *names], rows), *why])
