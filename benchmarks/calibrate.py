"""``fwbench calibrate``: measure the measuring instrument against wrk on a fast server.

The raw client is only worth trusting if it is not the limit. This command starts a fixed, fast
reference server (nginx from the distribution when installed: one worker, a fixed body, no
access log; else a bare uvicorn ASGI app) pinned to the server CPU, then runs the raw client and
wrk (when installed) pinned to the client CPU, with the same connections and window,
interleaved (raw, wrk, raw, wrk, ...) so that the machine's drift falls on both alike. It prints
requests/s, p50/p99 and client CPU per request for both, their medians and the raw/wrk ratios,
then checks the open loop at half the measured capacity: the achieved rate should be within 1 %
of the rate asked.

``--protocol h2c`` measures the HTTP/2 loop the same way: nginx serving h2c (prior knowledge),
the raw client and h2load (Debian's nghttp2-client) with the same connections and streams per
connection (``--streams``, default 1 and 10), side by side in requests/s and requests per
client CPU-second.

wrk has no warm-up phase: it runs for the window length only, after the raw client's run has
warmed the server. Its CPU is the whole run's (``os.wait4`` of the wrk process); the raw client's
is its window's. This is a benchmark, not a test: it reports, it does not judge.

The parts: :mod:`benchmarks.calibrate_reference` (the reference server),
:mod:`benchmarks.calibrate_trials` (the raw client's and wrk's trials, the noise, the open-loop
check) and :mod:`benchmarks.calibrate_report` (medians, ratios, the text). This module is the
command: :func:`add_arguments` and :func:`run` (called by ``fwbench calibrate``), :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from benchmarks.calibrate_reference import CalibrateError, reference_server
from benchmarks.calibrate_report import median, render, summarize
from benchmarks.calibrate_trials import (
    Noise,
    Trial,
    open_loop_check,
    run_h2load,
    run_raw,
    run_wrk,
)
from loadgen.config import available_cpus, parse_cpus


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--connections",
        default=None,
        help="connection counts, comma separated (64,256; h2c: 16)",
    )
    p.add_argument(
        "--protocol",
        choices=("http1", "h2c"),
        default="http1",
        help="http1 (against wrk) or h2c (HTTP/2 with prior knowledge, against h2load)",
    )
    p.add_argument(
        "--streams",
        default="1,10",
        help="h2c: concurrent streams per connection, comma separated (1,10)",
    )
    p.add_argument("-d", "--duration", type=float, default=10.0, help="window, s (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="raw client warm-up, s (2)")
    p.add_argument("--repeat", type=int, default=3, help="rounds of raw+wrk per count (3)")
    p.add_argument("--server-cpu", default="0", help="CPU(s) of the reference server (0)")
    p.add_argument("--client-cpu", default="1", help="CPU of the clients (1)")
    p.add_argument(
        "--server",
        choices=("auto", "nginx", "uvicorn"),
        default="auto",
        help="reference server (auto: nginx when installed, else uvicorn)",
    )
    p.add_argument("--check", choices=("html",), default=None, help="raw client checks bodies")
    p.add_argument("--no-wrk", action="store_true", help="raw client only (no wrk / h2load)")
    p.add_argument("--no-open-loop", action="store_true", help="skip the open-loop check")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    try:
        h2 = args.protocol != "http1"
        default_counts = "16" if h2 else "64,256"
        counts = [int(x) for x in str(args.connections or default_counts).split(",") if x.strip()]
        streams = [int(x) for x in str(args.streams).split(",") if x.strip()] if h2 else [1]
        if not streams or min(streams) < 1:
            raise ValueError("stream counts must be positive")
        server_cpus = parse_cpus(args.server_cpu)
        client_cpus = parse_cpus(args.client_cpu)
        if not counts or min(counts) < 1:
            raise ValueError("connection counts must be positive")
        if len(client_cpus) != 1:
            raise ValueError("--client-cpu takes one CPU")
        if args.repeat < 1 or args.duration <= 0 or args.warmup < 0:
            raise ValueError("--repeat, --duration must be positive, --warmup not negative")
        have = available_cpus()
        missing = sorted((set(server_cpus) | set(client_cpus)) - have)
        if missing:
            raise ValueError(f"CPU {missing[0]} is not available to this process")
        if set(server_cpus) & set(client_cpus):
            raise ValueError("server and client CPUs must differ")
    except ValueError as exc:
        print(f"fwbench calibrate: error: {exc}", file=sys.stderr)
        return 2
    cpu = client_cpus[0]
    reference = "h2load" if h2 else "wrk"
    tool = None if args.no_wrk else shutil.which(reference)
    notes = []
    if tool is None and not args.no_wrk:
        package = "nghttp2-client" if h2 else "wrk"
        notes.append(
            f"{reference} is not installed (apt-get install {package}, or make system-deps): "
            "raw client only"
        )
        print(f"fwbench calibrate: {notes[-1]}", file=sys.stderr)
    trials: list[Trial] = []

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="fwbench-calibrate-") as tmpdir:
            tmp = Path(tmpdir)
            with reference_server(args.server, server_cpus, tmp, args.protocol) as ref:
                say(f"reference server: {ref.version} on 127.0.0.1:{ref.port}, CPU {server_cpus}")
                noise = Noise(ref.proc.pid)
                for n in counts:
                    for m in streams:
                        for rnd in range(1, args.repeat + 1):
                            for client in ("raw", reference) if tool else ("raw",):
                                noise.start()
                                if client == "raw":
                                    t = run_raw(
                                        ref.port,
                                        n,
                                        args.duration,
                                        args.warmup,
                                        cpu,
                                        args.check,
                                        rnd,
                                        protocol=args.protocol,
                                        streams=m,
                                    )
                                elif h2 and tool:
                                    t = run_h2load(tool, ref.port, n, m, args.duration, cpu, rnd)
                                else:
                                    assert tool is not None
                                    t = run_wrk(tool, ref.port, n, args.duration, cpu, tmp, rnd)
                                t = replace(t, other_cpu_pct=noise.stop())
                                trials.append(t)
                                say(
                                    f"  c={n}{f'x{m}' if h2 else ''} round {rnd} {client}: "
                                    f"{t.rps:.0f} req/s, {t.cpu_us_per_request:.2f} us/req"
                                )
                summary = summarize(trials, counts, streams, reference)
                open_loop = None
                if not args.no_open_loop:
                    capacity = summary[0]["raw"]["rps"]
                    say(f"  open loop at {capacity / 2:.0f} req/s ...")
                    open_loop = open_loop_check(
                        ref.port,
                        capacity / 2,
                        counts[0],
                        args.duration,
                        args.warmup,
                        cpu,
                        protocol=args.protocol,
                        streams=streams[0],
                    )
                server_name = ref.version or ref.name
    except CalibrateError as exc:
        print(f"fwbench calibrate: error: {exc}", file=sys.stderr)
        return 1
    report = {
        "protocol": args.protocol,
        "reference": reference,
        "streams": streams,
        "server": server_name,
        "server_cpus": ",".join(map(str, server_cpus)),
        "client_cpu": cpu,
        "duration": args.duration,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "connections": counts,
        "trials": [asdict(t) for t in trials],
        "summary": summary,
        "open_loop": open_loop,
        "others_cpu_pct_median": median([t.other_cpu_pct for t in trials]),
        "notes": notes,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(render(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.calibrate ...`` (the same as ``fwbench calibrate``)."""
    parser = argparse.ArgumentParser(prog="fwbench calibrate")
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        print("fwbench calibrate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
