"""``fwbench calibrate``: measure the measuring instrument against wrk on a fast server.

The raw client is only worth trusting if it is not the limit. This command starts a fixed, fast
reference server (nginx from the distribution when installed: one worker, a fixed body, no
access log; else a bare uvicorn ASGI app) pinned to the server CPU, then runs the raw client and
wrk (when installed) pinned to the client CPU, with the same connections and window,
interleaved (raw, wrk, raw, wrk, ...) so that the machine's drift falls on both alike. It prints
requests/s, p50/p99 and client CPU per request for both, their medians and the raw/wrk ratios,
then checks the open loop at half the measured capacity: the achieved rate should be within 1 %
of the rate asked.

wrk has no warm-up phase: it runs for the window length only, after the raw client's run has
warmed the server. Its CPU is the whole run's (``os.wait4`` of the wrk process); the raw client's
is its window's. This is a benchmark, not a test: it reports, it does not judge.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from loadgen.config import available_cpus, parse_cpus
from loadgen.rawclient import LoadSpec, run_load
from loadgen.table import render_table

BODY = "<!DOCTYPE html><html><body><p>Hello world!</p></body></html>\n"
OPEN_LOOP_TOLERANCE = 0.01
"""The open loop passes when the achieved rate is within 1 % of the rate asked."""

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
    server {{
        listen 127.0.0.1:{port};
        location = /hello/ {{
            default_type text/html;
            return 200 '{body}';
        }}
    }}
}}
"""

ASGI_APP = """\
BODY = {body!r}.encode()
HEADERS = [(b"content-type", b"text/html"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": BODY}})
"""

WRK_SCRIPT = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FWBENCH-WRK %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status, math.floor(latency.mean)))
end
"""


class CalibrateError(RuntimeError):
    pass


@dataclass(frozen=True)
class Trial:
    """One run of one client."""

    client: str  # "raw" or "wrk"
    connections: int
    round: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_s: float
    cpu_us_per_request: float
    errors: int
    other_cpu_pct: float = 0.0
    """CPU of unrelated user processes during the trial, % of one CPU (noise on the machine)."""

    @property
    def cpu_pct(self) -> float:
        return self.cpu_s / self.seconds * 100 if self.seconds else 0.0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="measure the raw client against wrk on a fast reference server",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--connections",
        default="64,256",
        help="connection counts, comma separated (64,256)",
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
    p.add_argument("--no-wrk", action="store_true", help="raw client only")
    p.add_argument("--no-open-loop", action="store_true", help="skip the open-loop check")
    p.add_argument("--json", action="store_true", help="print one JSON object")


# --------------------------------------------------------------------------------------------
# The reference server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _taskset(cpus: Sequence[int]) -> list[str]:
    if not cpus:
        return []
    tool = shutil.which("taskset")
    if tool is None:
        raise CalibrateError("taskset is not installed (util-linux); cannot pin the server")
    return [tool, "-c", ",".join(map(str, cpus))]


@dataclass
class Reference:
    name: str
    version: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def _wait_ready(ref: Reference, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if ref.proc.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", ref.port, timeout=1.0)
            conn.request("GET", "/hello/")
            answer = conn.getresponse()
            body = answer.read()
            conn.close()
            if answer.status == 200 and b"Hello world!" in body:
                return
            last = f"status {answer.status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    log = ref.log.read_text(errors="replace")[-2000:] if ref.log.exists() else ""
    raise CalibrateError(f"{ref.name} did not come up on port {ref.port} ({last})\n{log}")


@contextlib.contextmanager
def reference_server(kind: str, cpus: Sequence[int], tmp: Path) -> Iterator[Reference]:
    """Start the reference server in its own process group; stop the group afterwards."""
    port = free_port()
    log = tmp / "server.log"
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if kind in ("auto", "nginx") and nginx:
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=BODY.strip()))
        version = subprocess.run(
            [nginx, "-v"], capture_output=True, text=True, check=False
        ).stderr.strip()
        cmd = [*_taskset(cpus), nginx, "-c", str(conf), "-p", str(tmp)]
        name = "nginx"
    elif kind == "nginx":
        raise CalibrateError("nginx is not installed (apt-get install nginx)")
    elif importlib.util.find_spec("uvicorn") is not None:
        if kind == "auto":
            print("fwbench calibrate: nginx not found; using uvicorn (bare ASGI)", file=sys.stderr)
        (tmp / "refapp.py").write_text(ASGI_APP.format(body=BODY))
        version = f"uvicorn {importlib.metadata.version('uvicorn')}"
        cmd = [
            *_taskset(cpus),
            sys.executable,
            "-m",
            "uvicorn",
            "refapp:app",
            "--app-dir",
            str(tmp),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ]
        name = "uvicorn"
    else:
        raise CalibrateError("neither nginx nor uvicorn is installed: no reference server")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    ref = Reference(name, version, port, proc, log)
    try:
        _wait_ready(ref)
        yield ref
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a process started with start_new_session=True, and its whole group, by ID."""
    pgid = proc.pid  # its own session: the group ID is its PID
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; make sure no member of the group lingers (nginx workers).
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.05)
        if not _group_alive(pgid):
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------
# Noise: what unrelated processes took while a trial ran


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _process_cpu() -> dict[int, tuple[int, int, float]]:
    """``{pid: (ppid, pgrp, user+system seconds)}`` of every user-space process."""
    out: dict[int, tuple[int, int, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        ppid, pgrp = int(fields[1]), int(fields[2])
        if ppid == 2 or int(name) == 2:  # kernel threads: they also serve our own sockets
            continue
        out[int(name)] = (ppid, pgrp, (int(fields[11]) + int(fields[12])) / _CLK_TCK)
    return out


class Noise:
    """CPU taken by processes other than ours and the reference server's, around a trial."""

    def __init__(self, server_pgid: int) -> None:
        self.server_pgid = server_pgid
        self.before: dict[int, tuple[int, int, float]] = {}
        self.started = 0.0

    def _ours(self, pid: int, ppid: int, pgrp: int) -> bool:
        me = os.getpid()
        return pid == me or ppid == me or pgrp == self.server_pgid

    def start(self) -> None:
        self.before = _process_cpu()
        self.started = time.monotonic()

    def stop(self) -> float:
        """% of one CPU the others used since :meth:`start`."""
        after = _process_cpu()
        wall = max(time.monotonic() - self.started, 1e-9)
        used = 0.0
        for pid, (ppid, pgrp, cpu) in after.items():
            if self._ours(pid, ppid, pgrp):
                continue
            used += cpu - self.before.get(pid, (0, 0, 0.0))[2]
        return max(used, 0.0) / wall * 100


# --------------------------------------------------------------------------------------------
# The two clients


def run_raw(
    port: int,
    connections: int,
    duration: float,
    warmup: float,
    cpu: int,
    check: str | None,
    rnd: int,
) -> Trial:
    spec = LoadSpec(
        host="127.0.0.1",
        port=port,
        path="/hello/",
        connections=connections,
        duration=duration,
        warmup=warmup,
        procs=1,
        cpus=(cpu,),
        kind=check,
    )
    r = run_load(spec)
    return Trial(
        client="raw",
        connections=connections,
        round=rnd,
        requests=r.requests,
        seconds=r.duration_s,
        rps=r.rps,
        p50_ms=r.latency.p50_ms,
        p99_ms=r.latency.p99_ms,
        cpu_s=r.client_cpu_s,
        cpu_us_per_request=r.cpu_us_per_request,
        errors=sum(r.errors.values()),
    )


def run_wrk(
    wrk: str, port: int, connections: int, duration: float, cpu: int, tmp: Path, rnd: int
) -> Trial:
    script = tmp / "report.lua"
    script.write_text(WRK_SCRIPT)
    cmd = [
        *_taskset([cpu]),
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}/hello/",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        out = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    m = re.search(r"FWBENCH-WRK (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if proc.returncode != 0 or m is None:
        raise CalibrateError(f"wrk failed (exit {proc.returncode}):\n{out[-2000:]}")
    requests, duration_us, p50, p99, _max, errors, status_errors, _mean = map(int, m.groups())
    seconds = duration_us / 1e6
    cpu_s = usage.ru_utime + usage.ru_stime
    good = requests - status_errors
    return Trial(
        client="wrk",
        connections=connections,
        round=rnd,
        requests=good,
        seconds=seconds,
        rps=good / seconds if seconds else 0.0,
        p50_ms=p50 / 1000,
        p99_ms=p99 / 1000,
        cpu_s=cpu_s,
        cpu_us_per_request=cpu_s * 1e6 / requests if requests else 0.0,
        errors=errors + status_errors,
    )


# --------------------------------------------------------------------------------------------
# The report


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(trials: Sequence[Trial], counts: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for n in counts:
        row: dict[str, Any] = {"connections": n}
        for client in ("raw", "wrk"):
            mine = [t for t in trials if t.client == client and t.connections == n]
            if not mine:
                continue
            row[client] = {
                "rps": _median([t.rps for t in mine]),
                "p50_ms": _median([t.p50_ms for t in mine]),
                "p99_ms": _median([t.p99_ms for t in mine]),
                "cpu_us_per_request": _median([t.cpu_us_per_request for t in mine]),
                "cpu_pct": _median([t.cpu_pct for t in mine]),
                "rounds": len(mine),
            }
        if "raw" in row and "wrk" in row:
            raw, wrk = row["raw"], row["wrk"]
            row["rps_ratio"] = raw["rps"] / wrk["rps"] if wrk["rps"] else None
            row["cpu_ratio"] = (
                raw["cpu_us_per_request"] / wrk["cpu_us_per_request"]
                if wrk["cpu_us_per_request"]
                else None
            )
            # Ratios within each round (raw and wrk ran back to back), then their median.
            pairs = [
                (r, w)
                for r in trials
                for w in trials
                if r.client == "raw"
                and w.client == "wrk"
                and r.connections == n == w.connections
                and r.round == w.round
            ]
            row["rps_ratio_paired"] = _median([r.rps / w.rps for r, w in pairs if w.rps])
            row["rps_ratio_range"] = (
                [
                    min(r.rps / w.rps for r, w in pairs if w.rps),
                    max(r.rps / w.rps for r, w in pairs if w.rps),
                ]
                if pairs
                else None
            )
        rows.append(row)
    return rows


def _f(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, spec)


def render(report: dict[str, Any]) -> str:
    out = [
        f"reference server: {report['server']} on CPU {report['server_cpus']}; "
        f"clients on CPU {report['client_cpu']}; {report['duration']:g} s windows "
        f"(raw: {report['warmup']:g} s warm-up first), {report['repeat']} interleaved rounds",
        "",
        "trials",
    ]
    trial_rows = [
        [
            t["connections"],
            t["client"],
            t["round"],
            f"{t['rps']:.0f}",
            f"{t['p50_ms']:.3f}",
            f"{t['p99_ms']:.3f}",
            f"{t['cpu_us_per_request']:.2f}",
            f"{t['cpu_s'] / t['seconds'] * 100 if t['seconds'] else 0:.0f}",
            f"{t['other_cpu_pct']:.0f}",
            t["errors"],
        ]
        for t in report["trials"]
    ]
    out.append(
        render_table(
            [
                "conns",
                "client",
                "round",
                "req/s",
                "p50 ms",
                "p99 ms",
                "CPU us/req",
                "CPU %",
                "others' CPU %",
                "errors",
            ],
            trial_rows,
        )
    )
    out += ["", "medians"]
    rows = []
    for row in report["summary"]:
        raw = row.get("raw", {})
        wrk = row.get("wrk", {})
        rng = row.get("rps_ratio_range")
        rows.append(
            [
                row["connections"],
                _f(raw.get("rps"), ".0f"),
                _f(wrk.get("rps"), ".0f"),
                _f(row.get("rps_ratio"), ".3f"),
                _f(row.get("rps_ratio_paired"), ".3f")
                + (f" [{rng[0]:.2f}-{rng[1]:.2f}]" if rng else ""),
                f"{_f(raw.get('p50_ms'), '.3f')}/{_f(raw.get('p99_ms'), '.3f')}",
                f"{_f(wrk.get('p50_ms'), '.3f')}/{_f(wrk.get('p99_ms'), '.3f')}",
                _f(raw.get("cpu_us_per_request"), ".2f"),
                _f(wrk.get("cpu_us_per_request"), ".2f"),
                _f(row.get("cpu_ratio"), ".3f"),
            ]
        )
    out.append(
        render_table(
            [
                "conns",
                "raw req/s",
                "wrk req/s",
                "raw/wrk",
                "paired [range]",
                "raw p50/p99 ms",
                "wrk p50/p99 ms",
                "raw us/req",
                "wrk us/req",
                "CPU raw/wrk",
            ],
            rows,
        )
    )
    ol = report.get("open_loop")
    if ol:
        out += [
            "",
            f"open loop: asked {ol['rate']:.0f} req/s at {ol['connections']} connections "
            f"(half the closed-loop median): achieved {ol['achieved']:.0f} req/s "
            f"({ol['error_pct']:+.2f} %, within {OPEN_LOOP_TOLERANCE:.0%}: "
            f"{'yes' if ol['within'] else 'NO'}); late sends {ol['late']}; errors {ol['errors']}",
            f"  corrected p50/p99/max {ol['p50_ms']:.3f}/{ol['p99_ms']:.3f}/{ol['max_ms']:.3f} ms; "
            f"uncorrected {ol['p50_u_ms']:.3f}/{ol['p99_u_ms']:.3f}/{ol['max_u_ms']:.3f} ms; "
            f"client CPU {ol['cpu_pct']:.0f} %",
        ]
    out.append(
        f"unrelated processes took a median {report['others_cpu_pct_median']:.0f} % of one CPU "
        "during the trials (0 on a quiet machine)"
    )
    for note in report["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)


def open_loop_check(
    port: int, rate: float, connections: int, duration: float, warmup: float, cpu: int
) -> dict[str, Any]:
    spec = LoadSpec(
        host="127.0.0.1",
        port=port,
        path="/hello/",
        connections=connections,
        duration=duration,
        warmup=warmup,
        rate=rate,
        procs=1,
        cpus=(cpu,),
    )
    r = run_load(spec)
    achieved = r.answers / r.duration_s
    u = r.latency_uncorrected
    assert u is not None
    return {
        "rate": rate,
        "connections": connections,
        "achieved": achieved,
        "error_pct": (achieved / rate - 1) * 100,
        "within": abs(achieved / rate - 1) <= OPEN_LOOP_TOLERANCE,
        "late": r.late,
        "errors": sum(r.errors.values()),
        "p50_ms": r.latency.p50_ms,
        "p99_ms": r.latency.p99_ms,
        "max_ms": r.latency.max_ms,
        "p50_u_ms": u.p50_ms,
        "p99_u_ms": u.p99_ms,
        "max_u_ms": u.max_ms,
        "cpu_pct": r.client_cpu_pct,
    }


def run(args: argparse.Namespace) -> int:
    try:
        counts = [int(x) for x in str(args.connections).split(",") if x.strip()]
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
    wrk = None if args.no_wrk else shutil.which("wrk")
    notes = []
    if wrk is None and not args.no_wrk:
        notes.append("wrk is not installed (apt-get install wrk): raw client only")
    trials: list[Trial] = []

    def say(text: str) -> None:
        if not args.json:
            print(text, file=sys.stderr, flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="fwbench-calibrate-") as tmpdir:
            tmp = Path(tmpdir)
            with reference_server(args.server, server_cpus, tmp) as ref:
                say(f"reference server: {ref.version} on 127.0.0.1:{ref.port}, CPU {server_cpus}")
                noise = Noise(ref.proc.pid)
                for n in counts:
                    for rnd in range(1, args.repeat + 1):
                        noise.start()
                        t = run_raw(ref.port, n, args.duration, args.warmup, cpu, args.check, rnd)
                        t = replace(t, other_cpu_pct=noise.stop())
                        trials.append(t)
                        say(
                            f"  c={n} round {rnd} raw: {t.rps:.0f} req/s, "
                            f"{t.cpu_us_per_request:.2f} us/req"
                        )
                        if wrk:
                            noise.start()
                            t = run_wrk(wrk, ref.port, n, args.duration, cpu, tmp, rnd)
                            t = replace(t, other_cpu_pct=noise.stop())
                            trials.append(t)
                            say(
                                f"  c={n} round {rnd} wrk: {t.rps:.0f} req/s, "
                                f"{t.cpu_us_per_request:.2f} us/req"
                            )
                summary = summarize(trials, counts)
                open_loop = None
                if not args.no_open_loop:
                    capacity = summary[0]["raw"]["rps"]
                    say(f"  open loop at {capacity / 2:.0f} req/s ...")
                    open_loop = open_loop_check(
                        ref.port, capacity / 2, counts[0], args.duration, args.warmup, cpu
                    )
                server_name = ref.version or ref.name
    except CalibrateError as exc:
        print(f"fwbench calibrate: error: {exc}", file=sys.stderr)
        return 1
    report = {
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
        "others_cpu_pct_median": _median([t.other_cpu_pct for t in trials]),
        "notes": notes,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(render(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadgen.calibrate ...`` (the same as ``fwbench calibrate``)."""
    parser = argparse.ArgumentParser(prog="fwbench calibrate")
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except KeyboardInterrupt:
        print("fwbench calibrate: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
