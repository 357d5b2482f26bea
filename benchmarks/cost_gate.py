"""How well the cost gate works, measured: A/A spread, a known increase, detection and false
alerts of ``check.cost_min_change_pct`` on a real target.

    python -m benchmarks.cost_gate [--config bench.toml] [--target starlette] [--servers 20]
                                   [--loops N] [--threshold 1.0] [--out FILE.json]

What it does: makes a copy of the target (``<target>-extra``, in a temporary targets folder)
whose ``hello`` handler first calls a function running ``--loops`` iterations of a small
Python loop (a known, fixed amount of extra work per request), then counts both under
callgrind, interleaved (A B A B ...), each on ``--servers`` fresh servers with the ``[cost]``
settings (``fwbench cost``'s engine). From the records:

- the A/A spread: (max - min) / median of the A servers' figures, and the windows' spread;
- the measured increase of the copy: median of B over median of A, and its range;
- false alerts: the cost gate (:func:`analysis.gate.within_cost`) on every ordered pair of two
  different A servers (``--servers`` x (``--servers`` - 1) comparisons);
- detection: the gate on every (A server, B server) pair.

It prints the figures and writes them (and every record) to ``--out`` as JSON. One callgrind
server runs at a time. A 1 % increase of uvicorn + Starlette (about 206,600 instructions per
request) is about 2,070 instructions. Measured here (one server each, CPython 3.11): the call
with ``--loops 0`` adds about 1,280 instructions per request, ``--loops 8`` about 4,800, so
an iteration costs about 440 and the default ``--loops 2`` adds about 2,150 (1.04 %).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from analysis.gate import within_cost
from loadgen.config import Config, Pair, load_config
from loadgen.cost import CostSpec, find_tool, measure
from loadgen.envs import ensure_env
from loadgen.launcher import LaunchOptions
from loadgen.machine import fingerprint
from loadgen.procs import pinned
from loadgen.records import CostRecord, spread_pct
from loadgen.targets import Target, load_target

EXTRA_HELPER = """
# --- added by benchmarks.cost_gate: a known amount of extra Python work per request ---
import os as _os

_EXTRA_LOOPS = int(_os.environ.get("FWBENCH_EXTRA_LOOPS", "0") or 0)


def _extra_work(n):
    total = 0
    for i in range(n):
        total += i
    return total


"""
HANDLER = "async def hello(request):\n"


def make_copy(target: Target, root: Path, loops: int) -> tuple[Target, Target]:
    """``root/<name>`` (the target as is) and ``root/<name>-extra``, whose ``hello`` handler
    first calls ``_extra_work(loops)``: one call and ``loops`` iterations of a Python loop."""
    a_dir = root / target.name
    b_dir = root / f"{target.name}-extra"
    shutil.copytree(target.dir, a_dir)
    shutil.copytree(target.dir, b_dir)
    app = b_dir / "app.py"
    text = app.read_text(encoding="utf-8")
    if HANDLER not in text:
        raise SystemExit(f"{app}: no `{HANDLER.strip()}` to add the extra work to")
    text = text.replace(HANDLER, HANDLER + "    _extra_work(_EXTRA_LOOPS)\n")
    app.write_text(EXTRA_HELPER + text, encoding="utf-8")
    toml = b_dir / "target.toml"
    meta = toml.read_text(encoding="utf-8")
    # first: a key after target.toml's tables ([scenarios]) would land inside the last one
    toml.write_text(f'env = {{ FWBENCH_EXTRA_LOOPS = "{loops}" }}\n' + meta, encoding="utf-8")
    return load_target(a_dir), load_target(b_dir)


def rates(a: list[CostRecord], b: list[CostRecord], threshold: float) -> dict[str, Any]:
    """The gate on every A/A pair and every A/B pair of single-server records."""

    def gate(base: CostRecord, cand: CostRecord) -> str:
        pair = Pair(base.target + "#base", cand.target + "#cand")
        recs = [_renamed(base, pair.baseline), _renamed(cand, pair.candidate)]
        findings, problems = within_cost(recs, [pair], threshold, run_id="", date="",
                                         fingerprint="")  # fmt: skip
        if problems:
            return "refused"
        return "alert" if findings and findings[0].regression else "clean"

    aa = [gate(x, y) for i, x in enumerate(a) for j, y in enumerate(a) if i != j]
    ab = [gate(x, y) for x in a for y in b]
    return {
        "aa_pairs": len(aa),
        "aa_alerts": aa.count("alert"),
        "aa_refused": aa.count("refused"),
        "false_alert_rate": aa.count("alert") / len(aa) if aa else None,
        "ab_pairs": len(ab),
        "ab_alerts": ab.count("alert"),
        "ab_refused": ab.count("refused"),
        "detection_rate": ab.count("alert") / len(ab) if ab else None,
    }


def _renamed(rec: CostRecord, name: str) -> CostRecord:
    from dataclasses import replace

    return replace(rec, target=name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cost_gate", description=__doc__)
    p.add_argument("--config", help="bench.toml (paths, CPU sets, [cost])")
    p.add_argument("--target", default="starlette")
    p.add_argument("--servers", type=int, default=20, help="fresh servers per side")
    p.add_argument("--loops", type=int, default=2, help="extra loop iterations per request")
    p.add_argument("--threshold", type=float, default=1.0, help="check.cost_min_change_pct")
    p.add_argument("--out", type=Path, default=Path("cost_gate.json"))
    p.add_argument(
        "--interval-ms",
        type=float,
        help="a fixed pace of the counted requests (default: [cost] interval_ms)",
    )
    p.add_argument(
        "--pace-factor",
        type=float,
        help="pace each server at this many times its probed time per request, if longer than"
        " the fixed pace (default: [cost] pace_factor)",
    )
    p.add_argument(
        "--from",
        dest="saved",
        type=Path,
        help="no counting: the records of an earlier --out, through the gate again",
    )
    args = p.parse_args(argv)
    cfg: Config = load_config(args.config)
    spec = CostSpec.from_config(cfg.cost)
    if args.interval_ms is not None:
        spec = replace(spec, interval_ms=args.interval_ms)
    if args.pace_factor is not None:
        spec = replace(spec, pace_factor=args.pace_factor)
    if args.saved:
        saved = json.loads(args.saved.read_text())
        a_recs = [CostRecord.from_dict(d) for d in saved["records"]["a"]]
        b_recs = [CostRecord.from_dict(d) for d in saved["records"]["b"]]
        args.loops, args.target = saved["loops"], saved["target"]
        spec = CostSpec(**saved["spec"])
        return report(args, spec, a_recs, b_recs)
    tool = find_tool(cfg.cost.valgrind)
    if isinstance(tool, str):
        print(tool, file=sys.stderr)
        return 2
    base = load_target(cfg.path("targets_dir") / args.target)
    machine = fingerprint(cfg.cpus.server, cfg.cpus.client, Path(cfg.root))
    launch = LaunchOptions.from_config(cfg)
    a_recs = []
    b_recs = []
    with tempfile.TemporaryDirectory(prefix="fwbench-cost-gate-") as tmp:
        root = Path(tmp)
        a_t, b_t = make_copy(base, root / "targets", args.loops)
        envs = cfg.path("envs_dir")
        a_env, b_env = ensure_env(a_t, envs), ensure_env(b_t, envs)
        print(
            f"cost gate: {args.target} and {b_t.name} ({args.loops} extra loop iterations per "
            f"request), {args.servers} fresh servers each, warm-up {spec.warmup}, "
            f"{spec.repeats} windows x {spec.requests} requests"
            + (f" paced every {spec.interval_ms:g} ms" if spec.interval_ms else "")
            + (
                f" (or {spec.pace_factor:g} x each server's probed time, if longer)"
                if spec.pace_factor
                else ""
            )
            + f", {tool.version}",
            file=sys.stderr,
            flush=True,
        )
        with pinned(cfg.cpus.client):
            for i in range(1, args.servers + 1):
                for t, env, out in ((a_t, a_env, a_recs), (b_t, b_env, b_recs)):
                    rec = measure(t, env, spec=spec, launch=launch, work_dir=root / "work",
                                  machine=machine, tool=tool)  # fmt: skip
                    if rec.status != "ok":
                        print(f"  {t.name} server {i}: NOT COUNTED: {rec.failure}", file=sys.stderr)
                        continue
                    out.append(rec)
                    print(
                        f"  server {i:2d} {t.name:<18} {rec.instructions_per_request:>12,.1f} "
                        f"(windows spread {rec.spread_pct:.3f} %)",
                        file=sys.stderr,
                        flush=True,
                    )
    return report(args, spec, a_recs, b_recs)


def report(
    args: argparse.Namespace, spec: CostSpec, a_recs: list[CostRecord], b_recs: list[CostRecord]
) -> int:
    """The figures of the counted records, printed and written to ``args.out``."""
    a_med = [r.instructions_per_request or 0.0 for r in a_recs]
    b_med = [r.instructions_per_request or 0.0 for r in b_recs]
    if not a_med or not b_med:
        print("cost gate: nothing counted", file=sys.stderr)
        return 1
    ma, mb = statistics.median(a_med), statistics.median(b_med)
    incr = [(y / x - 1) * 100 for x in a_med for y in b_med]
    result: dict[str, Any] = {
        "target": args.target,
        "loops": args.loops,
        "servers": args.servers,
        "spec": {
            "requests": spec.requests,
            "repeats": spec.repeats,
            "warmup": spec.warmup,
            "interval_ms": spec.interval_ms,
        },
        "threshold_pct": args.threshold,
        "a_median": ma,
        "b_median": mb,
        "aa_spread_pct": spread_pct(a_med),
        "bb_spread_pct": spread_pct(b_med),
        "windows_spread_max_pct": max(r.spread_pct or 0.0 for r in a_recs + b_recs),
        "increase_pct": (mb / ma - 1) * 100,
        "increase_min_pct": min(incr),
        "increase_max_pct": max(incr),
        "instructions_added": mb - ma,
        **rates(a_recs, b_recs, args.threshold),
        "records": {"a": [r.to_dict() for r in a_recs], "b": [r.to_dict() for r in b_recs]},
    }
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True))
    r = result
    print(f"A ({args.target}): median {ma:,.1f} instructions/request over {len(a_med)} servers")
    widest = r["windows_spread_max_pct"]
    print(f"A/A spread over fresh servers: {r['aa_spread_pct']:.3f} % "
          f"(largest windows' spread of one server: {widest:.3f} %)")  # fmt: skip
    print(f"B ({args.target} + {args.loops} loops): median {mb:,.1f}; increase "
          f"{r['increase_pct']:.3f} % (pairs: {r['increase_min_pct']:.3f} .. "
          f"{r['increase_max_pct']:.3f} %), {mb - ma:,.0f} more per request")  # fmt: skip
    print(f"gate at {args.threshold:g} %: false alerts {r['aa_alerts']}/{r['aa_pairs']} A/A pairs "
          f"({100 * (r['false_alert_rate'] or 0):.2f} %, refused {r['aa_refused']}); detection "
          f"{r['ab_alerts']}/{r['ab_pairs']} A/B pairs ({100 * (r['detection_rate'] or 0):.2f} %, "
          f"refused {r['ab_refused']})")  # fmt: skip
    print(f"figures and records: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
