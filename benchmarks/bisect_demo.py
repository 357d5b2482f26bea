"""``python -m benchmarks.bisect_demo``: the bisect proof, start to finish, in a temporary folder.

Builds the wheel farm and the fixture target (:mod:`benchmarks.wheelfarm`), keeps its lock
(both farm packages at 1.0), upgrades it with ``fwbench lock --upgrade`` (both to 2.0), then
runs ``fwbench bisect fixture --good-lock OLD --bad-lock NEW --json`` and prints the command,
the trials, each candidate's effect and corrected p-value, the culprit and the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.wheelfarm import ROOT, make_fixture


def _fwbench(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "commands.cli", "--config", str(config), *argv]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def demo(
    work: Path, *, trials: int, duration: float, envs_dir: Path | None, profile: bool = False
) -> dict[str, Any]:
    t0 = time.monotonic()
    fx = make_fixture(work, envs_dir=envs_dir, trials=trials)
    old = work / "old-lock.txt"
    old.write_bytes((fx.target_dir / "requirements.txt").read_bytes())
    print(f"$ fwbench lock --upgrade   (in {fx.root})")
    up = _fwbench(fx.config, "lock", "--upgrade")
    print(up.stdout.rstrip())
    if up.returncode != 0:
        raise SystemExit(up.stderr)
    new = work / "new-lock.txt"
    new.write_bytes((fx.target_dir / "requirements.txt").read_bytes())
    argv = ["bisect", "fixture", "--good-lock", str(old), "--bad-lock", str(new)]
    argv += ["--duration", str(duration), "--json"] + (["--profile"] if profile else [])
    print(f"\n$ fwbench {' '.join(argv)}")
    started = time.monotonic()
    done = _fwbench(fx.config, *argv)
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    out: dict[str, Any] = json.loads(done.stdout)
    print(f"trials: {out['trials']} per environment, {out['load']}")
    side = out["bad_side"]
    print(f"bad vs good: {side['change_pct']:+.1f} % requests/s, p = {side['p_value']:.2g}")
    for c in out["candidates"]:
        pct = "-" if c["change_pct"] is None else f"{c['change_pct']:+.1f} %"
        p = "-" if c["p_value"] is None else f"{c['p_value']:.2g}"
        print(f"  {c['label']:<18} {pct:>9}  p = {p:<8} {c['verdict']}")
    for c in out["culprits"]:
        print(
            f"culprit: {c['name']} {c['good']} → {c['bad']}: {c['change_pct']:+.1f} % "
            f"requests/s, corrected p = {c['p_value']:.2g}"
        )
    if not out["culprits"]:
        print(f"no culprit: {out['note']}")
    if out.get("flame_diff"):
        print("largest changes in self samples per 1,000 requests (good → bad, py-spy):")
        for r in out["flame_top"][:3]:
            print(f"  {r['function']}: {r['good']} → {r['bad']}")
        print(f"differential flame graph: {out['run_dir']}/{out['flame_diff']}")
    print(f"bisect wall time: {wall:.0f} s (record: {out['run_dir']}/bisect.json)")
    print(f"demo wall time: {time.monotonic() - t0:.0f} s")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bisect_demo", description=__doc__)
    p.add_argument("--trials", type=int, default=7)
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--envs-dir", type=Path, help="where to build environments (a temp folder)")
    p.add_argument("--keep", type=Path, help="work in this folder and keep it")
    p.add_argument("--profile", action="store_true", help="bisect --profile: the flame diff")
    args = p.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        out = demo(
            args.keep,
            trials=args.trials,
            duration=args.duration,
            envs_dir=args.envs_dir,
            profile=args.profile,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="fwbench-bisect-demo-") as tmp:
            out = demo(
                Path(tmp),
                trials=args.trials,
                duration=args.duration,
                envs_dir=args.envs_dir,
                profile=args.profile,
            )
    return 0 if out["culprits"] else 1


if __name__ == "__main__":
    sys.exit(main())
