"""How long ``fwbench report`` takes on a big run: 30 targets x 5 trials by default.

    .venv/bin/python -m benchmarks.bench_render [--targets 30] [--trials 5]
        [--repeat 1] [--keep DIR]

Generates a seeded synthetic run (real records and HDR histograms, sampler series), then times
``fwbench report RUN_DIR --out DIR`` twice: as a fresh process (what a user waits for, imports
included) and in-process (the rendering alone). Prints the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.synthrun import SynthLoad, make_run, many_targets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--targets", type=int, default=30)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1, help="time each way this many times")
    ap.add_argument("--keep", type=Path, help="write the run and reports here (kept)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fwbench-bench-render-") as tmp:
        base = args.keep or Path(tmp)
        run_dir = base / "runs" / f"bench-{args.targets}x{args.trials}"
        t0 = time.perf_counter()
        make_run(
            run_dir,
            many_targets(args.targets),
            trials=args.trials,
            loads=(SynthLoad(duration=5.0, warmup=2.0),),
        )
        print(
            f"generated {args.targets} targets x {args.trials} trials in "
            f"{time.perf_counter() - t0:.1f} s: {run_dir}"
        )

        cmd = [sys.executable, "-m", "commands.cli", "report", str(run_dir), "--out"]
        fresh, fresh_cpu = [], []
        for i in range(args.repeat):
            out = base / f"report-process-{i}"
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([*cmd, str(out)], check=True, stdout=subprocess.DEVNULL)
            fresh.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            fresh_cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

        from commands.cli import main as fwbench

        inproc, inproc_cpu = [], []
        for i in range(args.repeat):
            out = base / f"report-inproc-{i}"
            t0, c0 = time.perf_counter(), time.process_time()
            code = fwbench(["report", str(run_dir), "--out", str(out)])
            inproc.append(time.perf_counter() - t0)
            inproc_cpu.append(time.process_time() - c0)
            if code:
                return code
        size = (base / "report-inproc-0" / "index.html").stat().st_size
        print(
            f"fwbench report, {args.targets} targets x {args.trials} trials (median of "
            f"{args.repeat}): {statistics.median(fresh):.1f} s wall / "
            f"{statistics.median(fresh_cpu):.1f} s CPU as a fresh process (imports included); "
            f"{statistics.median(inproc):.1f} s wall / {statistics.median(inproc_cpu):.1f} s CPU "
            f"in-process; index.html {size / 2**20:.1f} MiB; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        if args.keep:
            print(f"kept: {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
