"""``fwbench load URL``: the raw client on its own, used like wrk or oha.

    fwbench load http://127.0.0.1:8000/hello/ -c 64 -d 10
    fwbench load http://127.0.0.1:8000/hello/ --rate 20000 --cpus 1 --json

Load goes only to loopback hosts unless ``--allow-host HOST`` names the host. Exit status: 0 when
good answers came back, 1 when none did, 2 for bad flags or a refused host.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from loadgen.checks import KINDS
from loadgen.config import available_cpus, parse_cpus
from loadgen.http1 import DEFAULT_CHECK_EVERY, ERROR_KINDS
from loadgen.rawclient import LoadSpec, run_load
from loadgen.records import Latency, LoadResult
from loadgen.safety import check_host
from loadgen.sampler import CLIENT_SATURATED_PCT


class UsageError(ValueError):
    """A flag or the URL is wrong: exit status 2."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="http://HOST[:PORT]/PATH (loopback unless --allow-host)")
    p.add_argument("-c", "--connections", type=int, default=64, help="connections (64)")
    p.add_argument("-d", "--duration", type=_seconds, default=10.0, help="window, s (10)")
    p.add_argument("--warmup", type=_seconds, default=2.0, help="warm-up before it, s (2)")
    p.add_argument("--rate", type=float, default=None, help="open loop at this many requests/s")
    p.add_argument(
        "--procs", type=int, default=None, help="client processes (one per --cpus CPU, else 1)"
    )
    p.add_argument("--cpus", default=None, help='client CPUs, e.g. "1", "0-1" or "1,3"')
    p.add_argument("--timeout", type=float, default=10.0, help="answer timeout, s (10)")
    p.add_argument("--check", choices=KINDS, default=None, help="check sampled bodies")
    p.add_argument(
        "--check-every",
        type=int,
        default=DEFAULT_CHECK_EVERY,
        help=f"check one answer in N per connection ({DEFAULT_CHECK_EVERY})",
    )
    p.add_argument("--host-header", default=None, help="Host header (default from the URL)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="allow load to this non-loopback host (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _seconds(text: str) -> float:
    """``10``, ``10s``, ``500ms`` or ``2m`` as seconds."""
    t = text.strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if t.endswith(suffix):
            t, scale = t[: -len(suffix)], factor
            break
    try:
        return float(t) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None


def parse_url(url: str) -> tuple[str, int, str]:
    """``(host, port, path?query)`` of an http:// URL."""
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise UsageError(f"only http:// URLs are supported, not {parts.scheme}://")
    host = parts.hostname
    if not host:
        raise UsageError(f"no host in URL {url!r}")
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise UsageError(f"bad port in URL {url!r}: {exc}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, path


def spec_from_args(args: argparse.Namespace) -> LoadSpec:
    """The LoadSpec the flags ask for (raises UsageError, ValueError on bad values)."""
    host, port, path = parse_url(args.url)
    cpus: tuple[int, ...] = ()
    if args.cpus:
        try:
            cpus = parse_cpus(args.cpus)
        except ValueError as exc:
            raise UsageError(f"--cpus: {exc}") from None
        missing = sorted(set(cpus) - available_cpus())
        if missing:
            raise UsageError(f"--cpus: CPU {missing[0]} is not available to this process")
    procs = args.procs if args.procs is not None else max(1, len(cpus))
    return LoadSpec(
        host=host,
        port=port,
        path=path,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        rate=args.rate,
        procs=procs,
        cpus=cpus,
        timeout=args.timeout,
        kind=args.check,
        check_every=args.check_every,
        host_header=args.host_header,
    )


def run(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
    except (UsageError, ValueError) as exc:
        print(f"fwbench load: error: {exc}", file=sys.stderr)
        return 2
    problem = check_host(spec.host, args.allow_host)
    if problem:
        print(f"fwbench load: error: {problem}", file=sys.stderr)
        return 2
    live = sys.stderr.isatty() and not args.json
    if not args.json:
        print(_banner(args.url, spec), flush=True)
    result = run_load(spec, progress=_Progress(spec) if live else None)
    if live:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(result_json(args.url, result)))
    else:
        print(summary_text(result))
    return 0 if result.requests else 1


class _Progress:
    """Live requests/s on stderr, once a second."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.started = time.monotonic()
        self.last = (self.started, 0)

    def __call__(self, answers: int) -> None:
        now = time.monotonic()
        then, before = self.last
        self.last = (now, answers)
        phase = "warm-up" if now - self.started < self.spec.warmup else "measuring"
        rate = (answers - before) / max(now - then, 1e-9)
        print(
            f"\r\033[K  {now - self.started:5.1f}s  {phase:9}  {rate:10.0f} req/s",
            end="",
            file=sys.stderr,
            flush=True,
        )


def _banner(url: str, spec: LoadSpec) -> str:
    model = f"open loop at {spec.rate:g} req/s" if spec.rate else "closed loop"
    where = f" on CPU {','.join(map(str, spec.cpus))}" if spec.cpus else ""
    procs = f"{spec.procs} process{'es' if spec.procs > 1 else ''}{where}"
    return (
        f"Running {spec.duration:g}s test @ {url} ({model}, {spec.warmup:g}s warm-up)\n"
        f"  {spec.connections} connections, {procs}"
    )


def _ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 1:
        return f"{value:.2f}ms"
    return f"{value * 1000:.0f}us"


def _latency_line(label: str, s: Latency) -> str:
    return (
        f"  {label:<12} p50 {_ms(s.p50):>8}  p90 {_ms(s.p90):>8}  "
        f"p99 {_ms(s.p99):>8}  p99.9 {_ms(s.p999):>8}  max {_ms(s.max):>8}  "
        f"(mean {_ms(s.mean)})"
    )


def summary_text(r: LoadResult) -> str:
    """A short human summary, in the spirit of wrk's."""
    lines = []
    if r.latency_uncorrected is not None:
        lines.append(_latency_line("Latency", r.latency))
        lines.append(_latency_line("uncorrected", r.latency_uncorrected))
    else:
        lines.append(_latency_line("Latency", r.latency))
    n_errors = sum(r.errors.values())
    errors = ", ".join(f"{k} {v}" for k, v in r.errors.items() if v) or "none"
    lines.append(f"  {r.requests} good requests in {r.duration_s:.2f}s; errors: {errors}")
    extra = [f"{r.reconnects} reconnects"] if r.reconnects else []
    if r.rate is not None:
        extra.append(f"{r.late} sent late of {r.latency.count} (asked {r.rate:g} req/s)")
    if extra:
        lines.append("  " + "; ".join(extra))
    if n_errors:
        lines.append(f"  Non-good answers and failures: {n_errors}")
    lines.append(f"Requests/sec: {r.rps:10.2f}")
    cpu = (
        f"Client CPU: {r.client_cpu_pct:.0f}% of {r.client_cpus} CPU"
        f"{'s' if r.client_cpus > 1 else ''} ({r.cpu_us_per_request:.1f} us/request)"
    )
    if r.client_cpu_pct >= CLIENT_SATURATED_PCT:
        cpu += "  WARNING: the client is saturated; the target may be faster than shown"
    lines.append(cpu)
    return "\n".join(lines)


def _latency_json(s: Latency | None) -> dict[str, float] | None:
    if s is None:
        return None
    return {**s.percentiles(), "mean": s.mean}


def result_json(url: str, r: LoadResult) -> dict[str, Any]:
    """The one JSON object ``--json`` prints."""
    out: dict[str, Any] = {
        "url": url,
        "requests": r.requests,
        "rps": r.rps,
        "duration_s": r.duration_s,
        "errors": {kind: r.errors.get(kind, 0) for kind in ERROR_KINDS},
        "reconnects": r.reconnects,
        "latency_ms": _latency_json(r.latency),
        "client_cpu_pct": r.client_cpu_pct,
        "client_cpu_s": r.client_cpu_s,
        "connections": r.connections,
        "procs": r.procs,
        "rate": r.rate,
        "window_start": r.window_start,
        "window_end": r.window_end,
        "hist": r.hist,
    }
    if r.rate is not None:
        out["late"] = r.late
        out["latency_uncorrected_ms"] = _latency_json(r.latency_uncorrected)
        out["hist_uncorrected"] = r.hist_uncorrected
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m commands.load URL ...`` (the same as ``fwbench load``)."""
    parser = argparse.ArgumentParser(prog="fwbench load")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("fwbench load: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
