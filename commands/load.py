"""``fwbench load URL``: the raw client on its own, used like wrk or oha.

    fwbench load http://127.0.0.1:8000/hello/ -c 64 -d 10
    fwbench load http://127.0.0.1:8000/hello/ --rate 20000 --cpus 1 --json
    fwbench load http://127.0.0.1:8000/items -m POST -H "Content-Type: application/json" -b '{}'

Load goes only to loopback hosts unless the host is allowed, by ``--allow-host HOST`` or by
``[network] allow_hosts`` in bench.toml. The URL is checked before any load, as curl reads it:
spaces and non-ASCII characters of the path are percent-encoded (as UTF-8), a non-ASCII host
name is IDNA-encoded, control characters are refused. Every request carries the same method,
headers and body (with its ``Content-Length``), encoded once. ``HEAD`` is refused: its answers
announce a body they do not carry.

One connection is tried first, as wrk does: when nothing answers there, the command says why at
once instead of loading nothing for the whole duration. Ctrl-C prints what was measured so far.

Exit status: 0 when good answers came back, 1 when none did (or the target cannot be reached),
2 for bad flags or a refused host, 130 when interrupted (after printing the results so far).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import re
import socket
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from commands.common import config_from
from loadgen.checks import KINDS
from loadgen.config import MAX_SECONDS, MIN_RATE, ConfigError, available_cpus, parse_cpus
from loadgen.http1 import DEFAULT_CHECK_EVERY, ERROR_KINDS
from loadgen.rawclient import LoadInterrupted, LoadSpec, run_load
from loadgen.records import Latency, LoadResult
from loadgen.records.scenarios import PROTOCOLS
from loadgen.safety import check_host
from loadgen.sampler import CLIENT_SATURATED_PCT

PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))
"""Printable ASCII but the space: what a request target may hold as it is."""
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP token: a method or a header name."""


class UsageError(ValueError):
    """A flag or the URL is wrong: exit status 2."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="http://HOST[:PORT]/PATH (loopback unless allowed)")
    p.add_argument("-c", "--connections", type=int, default=64, help="connections (64)")
    p.add_argument("-d", "--duration", type=_window, default=10.0, help="window, s (10)")
    p.add_argument("--warmup", type=_seconds, default=2.0, help="warm-up before it, s (2)")
    p.add_argument("--rate", type=_rate, default=None, help="open loop at this many requests/s")
    p.add_argument(
        "-m", "--method", type=_method, default="GET", help="request method (GET; not HEAD)"
    )
    p.add_argument(
        "-H",
        "--header",
        dest="headers",
        type=_header,
        action="append",
        default=[],
        metavar='"NAME: VALUE"',
        help="a request header (repeatable)",
    )
    body = p.add_mutually_exclusive_group()
    body.add_argument("-b", "--body", default=None, help="request body (sent with Content-Length)")
    body.add_argument("--body-file", default=None, metavar="FILE", help="request body from FILE")
    p.add_argument(
        "--procs", type=int, default=None, help="client processes (one per --cpus CPU, else 1)"
    )
    p.add_argument("--cpus", default=None, help='client CPUs, e.g. "1", "0-1" or "1,3"')
    p.add_argument("--timeout", type=_window, default=10.0, help="answer timeout, s (10)")
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
        help="allow load to this non-loopback host (repeatable; or bench.toml's allow_hosts)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="http1",
        help="http1 (default), h2c (HTTP/2, prior knowledge) or h2 (HTTP/2 over TLS, ALPN)",
    )
    p.add_argument(
        "--streams", type=int, default=1, help="concurrent streams per connection (HTTP/2; 1)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _seconds(text: str) -> float:
    """``10``, ``10s``, ``500ms`` or ``2m`` as seconds: finite, not negative, at most a week."""
    t = text.strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if t.endswith(suffix):
            t, scale = t[: -len(suffix)], factor
            break
    try:
        value = float(t) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a finite duration, 0 or more: {text!r}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is longer than a week ({MAX_SECONDS:g} s)")
    return value


def _window(text: str) -> float:
    """A duration that must be more than 0 (the window, the timeout)."""
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _rate(text: str) -> float:
    """An open-loop rate, requests/s: finite, at least :data:`MIN_RATE`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and value >= MIN_RATE):
        raise argparse.ArgumentTypeError(f"must be a finite rate, at least {MIN_RATE:g}: {text!r}")
    return value


def _method(text: str) -> str:
    """A request method, upper-cased (``post`` is POST); HEAD and CONNECT are refused."""
    method = text.upper()
    if not TOKEN.fullmatch(method):
        raise argparse.ArgumentTypeError(f"not a method name: {text!r}")
    if method in ("HEAD", "CONNECT"):
        raise argparse.ArgumentTypeError(
            f"{method} is not supported: its answers announce a body they do not carry; use GET"
        )
    return method


def _header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as ``(name, value)``: a token name, a value with no control character."""
    name, sep, value = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"not a 'Name: value' header: {text!r}")
    if not TOKEN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"header name must be a token (no spaces): {name!r}")
    value = value.strip(" \t")
    bad = _control(value.replace("\t", " "))
    if bad:
        raise argparse.ArgumentTypeError(f"header {name} holds a control character ({bad})")
    return name, value


def _control(text: str) -> str | None:
    """The first control character in ``text`` (C0, DEL or C1), as ``\\xNN``; None if none."""
    for ch in text:
        if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
            return f"\\x{ord(ch):02x}"
    return None


def parse_url(url: str) -> tuple[str, int, str]:
    """``(host, port, path?query)`` of an http:// URL, encoded for the request as curl does.

    Spaces and non-ASCII characters of the path and query are percent-encoded (their UTF-8
    bytes); a ``%`` already there is kept. A non-ASCII host name is IDNA-encoded. Control
    characters (which :func:`urllib.parse.urlsplit` would silently drop) are refused, as are
    user names, ports out of range and host names that are not names or addresses.
    """
    url = url.strip(" ")
    bad = _control(url)
    if bad:
        raise UsageError(f"the URL holds a control character ({bad}): {url!r}")
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise UsageError(f"bad URL {url!r}: {exc}") from None
    if parts.scheme != "http":
        raise UsageError(f"only http:// URLs are supported, not {parts.scheme}://")
    if "@" in parts.netloc:
        raise UsageError("user names in the URL are not supported (use -H 'Authorization: ...')")
    host = _ascii_host(parts.hostname or "", url)
    try:
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"bad port in URL {url!r}: {exc}") from None
    if port is None:
        port = 80
    elif not 0 < port < 65536:
        raise UsageError(f"bad port in URL {url!r}: {port} is out of range 1..65535")
    path = _percent_encode(parts.path or "/")
    if parts.query:
        path += "?" + _percent_encode(parts.query)
    return host, port, path


def _percent_encode(text: str) -> str:
    """Spaces and non-ASCII as %XX of their UTF-8 bytes (undecodable argv bytes as they were)."""
    return urllib.parse.quote(text, safe=PRINTABLE, errors="surrogateescape")


def _ascii_host(host: str, url: str) -> str:
    """The host of the URL as sent: a name (IDNA-encoded when not ASCII) or an IP address."""
    if not host:
        raise UsageError(f"no host in URL {url!r}")
    if ":" in host:  # an IPv6 literal (the brackets are gone)
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            raise UsageError(f"bad IPv6 address in URL {url!r}") from None
        return host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise UsageError(f"bad host name in URL {url!r}: {exc}") from None
    if not re.fullmatch(r"[A-Za-z0-9._~-]+", host):
        raise UsageError(f"bad host name in URL {url!r}: {host!r}")
    return host


def _body(args: argparse.Namespace) -> bytes | None:
    """The request body from -b/--body or --body-file (``-``: stdin); None without one."""
    if args.body is not None:
        body: str = args.body
        return body.encode("utf-8", "surrogateescape")
    if args.body_file is not None:
        if args.body_file == "-":
            return sys.stdin.buffer.read()
        try:
            return Path(args.body_file).read_bytes()
        except OSError as exc:
            raise UsageError(f"--body-file: {exc.strerror or exc}: {args.body_file}") from None
    return None


def _headers(args: argparse.Namespace) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The Host header asked for (--host-header, or -H 'Host: ...') and the other headers."""
    host_header: str | None = args.host_header
    if host_header is not None:
        _check_host_header(host_header, "--host-header")
    others = []
    for name, value in args.headers:
        lower = name.lower()
        if lower == "host":
            if host_header is not None and host_header != value:
                raise UsageError("two Host headers given (--host-header and -H 'Host: ...')")
            _check_host_header(value, "-H 'Host: ...'")
            host_header = value
        elif lower in ("content-length", "transfer-encoding"):
            raise UsageError(
                f"-H {name}: is not allowed: Content-Length is set from the body (-b/--body-file)"
            )
        else:
            others.append((name, value))
    return host_header, tuple(others)


def _check_host_header(value: str, flag: str) -> None:
    if not value:
        raise UsageError(f"{flag}: empty")
    if not value.isascii() or any(ch not in PRINTABLE for ch in value):
        raise UsageError(
            f"{flag}: must be printable ASCII without spaces (a non-ASCII name in its "
            f"IDNA form, xn--...): {value!r}"
        )


def spec_from_args(args: argparse.Namespace) -> LoadSpec:
    """The LoadSpec the flags ask for (raises UsageError, ValueError on bad values)."""
    host, port, path = parse_url(args.url)
    host_header, headers = _headers(args)
    body = _body(args)
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
        host_header=host_header,
        method=args.method,
        headers=headers,
        body=body,
        protocol=args.protocol,
        streams=args.streams,
    )


def run(args: argparse.Namespace) -> int:
    try:
        spec = spec_from_args(args)
    except (UsageError, ValueError) as exc:
        return _fail(str(exc), 2)
    problem = _host_problem(spec.host, args)
    if problem:
        return _fail(problem, 2)
    unreachable = connect_problem(spec.host, spec.port, spec.timeout)
    if unreachable:  # as wrk does: say so at once rather than load nothing for the duration
        return _fail(f"cannot connect to {_where(spec)}: {unreachable}", 1)
    live = sys.stderr.isatty() and not args.json
    if not args.json:
        print(_banner(args.url, spec), flush=True)
    try:
        result = run_load(spec, progress=_Progress(spec) if live else None)
    except LoadInterrupted as stop:
        if live:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        return _interrupted(args, stop)
    if live:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(result_json(args.url, result)))
    else:
        print(summary_text(result))
    if result.requests:
        return 0
    return _fail(_nothing_good(spec, result), 1)


def _fail(message: str, code: int) -> int:
    print(f"fwbench load: error: {message}", file=sys.stderr, flush=True)
    return code


def _where(spec: LoadSpec) -> str:
    return f"[{spec.host}]:{spec.port}" if ":" in spec.host else f"{spec.host}:{spec.port}"


def _host_problem(host: str, args: argparse.Namespace) -> str | None:
    """Why load may not go to ``host`` (None: it may): loopback, ``--allow-host`` or
    ``[network] allow_hosts`` of bench.toml (read only when the flags do not allow it)."""
    problem = check_host(host, args.allow_host)
    if problem is None:
        return None
    try:
        cfg = config_from(args)
    except ConfigError as exc:
        return f"{problem}; the config that could allow it was not read: {exc}"
    if not cfg.network.allow_hosts:
        return problem
    return check_host(host, [*args.allow_host, *cfg.network.allow_hosts])


def connect_problem(host: str, port: int, timeout: float) -> str | None:
    """Why one TCP connection to ``host``:``port`` fails (``"connection refused"``), or None."""
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)):
            return None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return reason[:1].lower() + reason[1:]


def _nothing_good(spec: LoadSpec, r: LoadResult) -> str:
    """The last line of a run with no good answer: what went wrong, counted.

    Failed connections are named as wrk names them, by the reason one connection fails with
    now (``connection refused``: nothing listens any more).
    """
    message = f"no request succeeded in {r.duration_s:.1f} s"
    others = ", ".join(f"{k} {v}" for k, v in r.errors.items() if v and k != "connect")
    if r.errors["connect"]:
        reason = connect_problem(spec.host, spec.port, spec.timeout)
        why = f": {reason}" if reason else " (it accepts connections now)"
        message += f": {r.errors['connect']} connection attempts to {_where(spec)} failed{why}"
        return message + (f"; other errors: {others}" if others else "")
    return message + (f": errors: {others}" if others else ": no answer came back")


def _interrupted(args: argparse.Namespace, stop: LoadInterrupted) -> int:
    """Ctrl-C: print what was measured so far (exit status 130)."""
    r = stop.result
    after = f"interrupted after {stop.elapsed_s:.1f} s"
    if r is None:
        print(
            f"fwbench load: {after}, in the warm-up: nothing measured", file=sys.stderr, flush=True
        )
    else:
        print(
            f"fwbench load: {after}: results so far ({r.duration_s:.1f} s measured)",
            file=sys.stderr,
            flush=True,
        )
    if args.json:
        out = result_json(args.url, r) if r is not None else {"url": args.url}
        out["interrupted"] = True
        print(json.dumps(out))
    elif r is not None:
        print(summary_text(r))
    return 130


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
    if spec.protocol != "http1":
        procs += f", {spec.protocol} with {spec.streams} stream{'s' if spec.streams > 1 else ''}"
    request = ""
    if spec.method != "GET" or spec.body is not None:
        body = f" with a body of {len(spec.body)} bytes" if spec.body is not None else ""
        request = f"{spec.method}{body}, "
    return (
        f"Running {spec.duration:g}s test @ {url} ({request}{model}, {spec.warmup:g}s warm-up)\n"
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
