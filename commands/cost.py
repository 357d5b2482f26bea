"""``fwbench cost [--targets a,b] [--requests K] [--repeats R] [--warmup W] [--json]``.

Counts the user-space instructions each target's server runs per request, under callgrind
(:mod:`loadgen.cost`): a fresh server per target, a warm-up with counting off, R windows of
exactly K requests. Writes a run folder (``run.json`` and ``cost.jsonl``, read by ``report``,
``compare``, the history and ``check``); prints a table (or, with ``--json``, a list with one
object per target) and, last, the run folder. Exit status: 0 when every target was counted,
1 when one could not be (listed with the reason), 2 for bad flags or no valgrind.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from commands.common import config_from, discover_targets, split_names
from loadgen import machine
from loadgen.config import Config, ConfigError, to_dict
from loadgen.cost import CostSpec, cost_pass, find_tool
from loadgen.envs import Env, build_all, index_args
from loadgen.procs import pinned
from loadgen.records import COST_FILE, COST_LIMITS, CostRecord, RunHeader, append_cost
from loadgen.runner import new_run_id, now_iso
from loadgen.targets import Target


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--targets", help="comma-separated target names (default: bench.toml's)")
    p.add_argument("--requests", type=int, help="K: requests per counted window ([cost])")
    p.add_argument("--repeats", type=int, help="R: counted windows per server ([cost])")
    p.add_argument("--warmup", type=int, help="requests with counting off first ([cost])")
    p.add_argument("--json", action="store_true", help="a JSON list, one object per target")


def configure(args: argparse.Namespace) -> Config:
    cfg = config_from(args)
    changes = {
        f"cost.{key}": value
        for key in ("requests", "repeats", "warmup")
        if (value := getattr(args, key, None)) is not None
    }
    return cfg.override(**changes) if changes else cfg


def envs_for(
    cfg: Config, targets: Sequence[Target], say: Callable[[str], None]
) -> list[tuple[Target, Env | None, str]]:
    """Every target's environment (built or reused), or the reason it has none."""
    outcomes = build_all(list(targets), cfg.path("envs_dir"), sources=index_args(cfg))
    out: list[tuple[Target, Env | None, str]] = []
    for t, o in zip(targets, outcomes, strict=True):
        if o.env is None:
            say(f"environment {t.name}: FAILED: {o.error}")
        out.append((t, o.env, f"environment: {o.error}" if o.env is None else ""))
    return out


def measure_run(
    cfg: Config, targets: Sequence[Target], *, run_dir: Path | None = None
) -> tuple[Path, list[CostRecord]]:
    """A run folder holding only a cost pass over ``targets``."""
    run_id = run_dir.name if run_dir else new_run_id()
    run_dir = run_dir or cfg.path("reports_dir") / "runs" / run_id
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    info = machine.fingerprint(cfg.cpus.server, cfg.cpus.client, Path(cfg.root))
    header = RunHeader(
        run_id=run_id,
        started_at=now_iso(),
        config=to_dict(cfg),
        machine=info,
        machine_warnings=tuple(machine.warnings(info)),
        targets=tuple(t.to_dict() for t in targets),
    )
    header.write(run_dir)
    (run_dir / COST_FILE).touch()
    interrupted = False
    records: list[CostRecord] = []
    try:
        with pinned(cfg.cpus.client):
            records = cost_pass(
                cfg,
                envs_for(cfg, targets, _say),
                work_dir=run_dir,
                run_id=run_id,
                machine=info,
                on_record=lambda r: _recorded(run_dir, r),
                say=_say,
            )
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        header.updated(finished_at=now_iso(), interrupted=interrupted).write(run_dir)
    return run_dir, records


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _recorded(run_dir: Path, rec: CostRecord) -> None:
    append_cost(run_dir / COST_FILE, rec)
    if rec.status == "ok":
        _say(
            f"    {rec.target}: {rec.instructions_per_request:,.0f} instructions/request "
            f"(spread {rec.spread_pct:.2f} %)"
        )
    else:
        _say(f"    {rec.target}: NOT COUNTED: {rec.failure}")


def table(records: Sequence[CostRecord]) -> str:
    """The figures, cheapest first; the targets that could not be counted, with the reason."""
    ok = sorted(
        (r for r in records if r.status == "ok"), key=lambda r: r.instructions_per_request or 0
    )
    lines = [
        f"{'target':<20} {'instructions/request':>21} {'spread':>8} {'windows':>10}  processes",
    ]
    for r in ok:
        procs = ", ".join(f"{p.share_pct:.1f} %" for p in r.processes)
        lines.append(
            f"{r.target:<20} {r.instructions_per_request or 0:>21,.0f} "
            f"{r.spread_pct or 0:>6.2f} % {len(r.windows):>3} x {r.requests_per_window:<4}  "
            f"{len(r.processes)} ({procs})"
        )
    failed = [r for r in records if r.status != "ok"]
    if failed:
        lines += ["", "not counted:"]
        lines += [f"  {r.target}: {r.failure}" for r in failed]
    lines += ["", "Limits: " + COST_LIMITS]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    cfg = configure(args)
    tool = find_tool(cfg.cost.valgrind)
    if isinstance(tool, str):
        print(f"fwbench: cost: {tool}", file=sys.stderr)
        return 2
    targets = discover_targets(cfg, split_names(args.targets))
    if not targets:
        raise ConfigError("--targets", "no target to count", source="flag")
    spec = CostSpec.from_config(cfg.cost)
    _say(
        f"cost: {len(targets)} target(s), warm-up {spec.warmup}, "
        f"{spec.repeats} windows x {spec.requests} requests, under {tool.version}"
    )
    run_dir, records = measure_run(cfg, targets)
    if args.json:
        print(json.dumps([r.summary() for r in records], indent=2))
    else:
        print(table(records))
    print(run_dir, file=sys.stderr if args.json else sys.stdout, flush=True)
    return 0 if all(r.status == "ok" for r in records) else 1
