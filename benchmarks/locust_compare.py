"""The raw client and locust side by side on this machine: ``python -m benchmarks.locust_compare``.

    python -m benchmarks.locust_compare starlette flask --duration 5 --rounds 1

For each target, one server on the server CPU (0), every client on the client CPU (1); the
clients take turns (raw client, locust in one process, locust with 1 and 2 workers), ``rounds``
times, and a table gives requests/s, p50 and p99, the client's CPU (% of its CPU set, from
each client process's own CPU time over the window) and the CPU that processes other than the
target and the client took during the trial (% of the machine), since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from loadgen.envs import ensure_env
from loadgen.launcher import LaunchOptions, Server, start
from loadgen.locust.client import LocustSpec, run_locust
from loadgen.procs import pinned
from loadgen.rawclient import LoadSpec, run_load
from loadgen.records import LoadResult
from loadgen.targets import discover

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    target: str
    client: str
    rps: float
    p50_ms: float
    p99_ms: float
    client_cpu_pct: float
    other_cpu_pct: float
    errors: int


def _busy_s() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


def _tree_cpu_s(pid: int) -> float:
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            c = p.cpu_times()
            total += c.user + c.system
        except psutil.Error:
            continue
    return total


def _own_s() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(server: Server, client: str, run: Callable[[], LoadResult]) -> Row:
    """One trial; 'other' is the machine's busy CPU minus the target's and ours (children too)."""
    busy0, target0, own0, t0 = _busy_s(), _tree_cpu_s(server.proc.pid), _own_s(), time.monotonic()
    result = run()
    busy = _busy_s() - busy0
    ours = (_tree_cpu_s(server.proc.pid) - target0) + (_own_s() - own0)
    span = time.monotonic() - t0
    other = max(0.0, busy - ours) / span / (os.cpu_count() or 1) * 100.0
    return Row(
        target=server.target.name,
        client=client,
        rps=result.rps,
        p50_ms=result.latency.p50,
        p99_ms=result.latency.p99,
        client_cpu_pct=result.client_cpu_pct,
        other_cpu_pct=other,
        errors=sum(result.errors.values()),
    )


def clients(
    server: Server, duration: float, warmup: float, users: int, cpus: tuple[int, ...]
) -> list[tuple[str, Callable[[], LoadResult]]]:
    """The clients compared, each a function running one trial against ``server``."""
    host, port, path, kind = server.host, server.port, server.target.hello_path, server.target.kind
    raw = LoadSpec(
        host=host, port=port, path=path, connections=users, duration=duration, warmup=warmup,
        procs=1, cpus=cpus, kind=kind,
    )  # fmt: skip

    def locust(workers: int) -> Callable[[], LoadResult]:
        spec = LocustSpec(
            host=host, port=port, path=path, users=users, duration=duration, warmup=warmup,
            workers=workers, cpus=cpus, kind=kind,
        )  # fmt: skip
        return lambda: run_locust(spec)[0]

    return [
        ("raw", lambda: run_load(raw)),
        ("locust 1 process", locust(0)),
        ("locust 1 worker", locust(1)),
        ("locust 2 workers", locust(2)),
    ]


def compare(names: list[str], duration: float, warmup: float, users: int, rounds: int) -> list[Row]:
    rows: list[Row] = []
    client_cpus = (1,)
    with pinned(client_cpus):
        for target in discover(ROOT / "targets").select(names):
            env = ensure_env(target, ROOT / ".envs")
            server = start(
                target,
                env,
                log_dir=Path("/tmp/fwbench-compare-logs"),
                opts=LaunchOptions(cpus=(0,)),
            )
            try:
                for _ in range(rounds):
                    for name, run in clients(server, duration, warmup, users, client_cpus):
                        row = measure(server, name, run)
                        rows.append(row)
                        print(_line(row), file=sys.stderr, flush=True)
            finally:
                server.stop()
    return rows


def _line(r: Row) -> str:
    return (
        f"| {r.target} | {r.client} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
        f"| {r.client_cpu_pct:.0f} | {r.other_cpu_pct:.0f} | {r.errors} |"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.locust_compare", description=__doc__)
    p.add_argument("targets", nargs="*", default=["starlette", "flask"])
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--users", type=int, default=64, help="users (locust) and connections (raw)")
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    rows = compare(args.targets, args.duration, args.warmup, args.users, args.rounds)
    print(
        "| target | client | requests/s | p50 ms | p99 ms | client CPU % | other CPU % | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(_line(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
