"""The trials of ``fwbench calibrate``: one run of the raw client, wrk or h2load, and the noise.

wrk and h2load (HTTP/2) have no warm-up phase: they run for the window length only, after the
raw client's run has warmed the server. Their CPU is the whole run's (``os.wait4`` of the
process); the raw client's is its window's. :class:`Noise` measures what unrelated processes
took while a trial ran, and :func:`open_loop_check` runs the raw client's open loop at a given
rate.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.calibrate_reference import CalibrateError
from loadgen.procs import child_env, spawn, stop_group
from loadgen.rawclient import LoadSpec, run_load

OPEN_LOOP_TOLERANCE = 0.01
"""The open loop passes when the achieved rate is within 1 % of the rate asked."""

WRK_SCRIPT = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FWBENCH-WRK %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status, math.floor(latency.mean)))
end
"""


@dataclass(frozen=True)
class Trial:
    """One run of one client."""

    client: str  # "raw", "wrk" or "h2load"
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
    streams: int = 1
    """Concurrent streams per connection (HTTP/2)."""

    @property
    def cpu_pct(self) -> float:
        return self.cpu_s / self.seconds * 100 if self.seconds else 0.0


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
    protocol: str = "http1",
    streams: int = 1,
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
        protocol=protocol,
        streams=streams,
    )
    r = run_load(spec)
    return Trial(
        client="raw",
        connections=connections,
        streams=streams,
        round=rnd,
        requests=r.requests,
        seconds=r.duration_s,
        rps=r.rps,
        p50_ms=r.latency.p50,
        p99_ms=r.latency.p99,
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
    out, cpu_s = _run_client(cmd, cpu, "wrk")
    m = re.search(r"FWBENCH-WRK (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if m is None:
        raise CalibrateError(f"wrk printed no summary:\n{out[-2000:]}")
    requests, duration_us, p50, p99, _max, errors, status_errors, _mean = map(int, m.groups())
    seconds = duration_us / 1e6
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


def _run_client(cmd: list[str], cpu: int, name: str) -> tuple[str, float]:
    """Run a C client pinned to ``cpu``: its output and its CPU seconds (``os.wait4``)."""
    proc = spawn(
        cmd,
        env=child_env(),
        session=True,
        cpus=[cpu],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        out = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        stop_group(proc, grace=0.0)  # whatever is left of its group; the reaper stops watching
    if proc.returncode != 0:
        raise CalibrateError(f"{name} failed (exit {proc.returncode}):\n{out[-2000:]}")
    return out, usage.ru_utime + usage.ru_stime


def parse_h2load(out: str) -> tuple[float, int, int, float]:
    """(seconds, requests succeeded, requests not, mean ms) from h2load's summary."""
    finished = re.search(r"finished in ([\d.]+)(m?s)", out)
    requests = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    if finished is None or requests is None:
        raise CalibrateError(f"cannot read h2load's output:\n{out[-2000:]}")
    seconds = float(finished[1]) / (1000 if finished[2] == "ms" else 1)
    total, _done, good = (int(x) for x in requests.groups())
    mean_ms = float("nan")
    if mean is not None:
        mean_ms = float(mean[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[mean[2]]
    return seconds, good, total - good, mean_ms


def run_h2load(
    h2load: str, port: int, connections: int, streams: int, duration: float, cpu: int, rnd: int
) -> Trial:
    """h2load (nghttp2's HTTP/2 load tool, h2c prior knowledge) for ``duration`` seconds.

    h2load prints no percentiles: its mean request time goes in ``p50_ms``, ``p99_ms`` is NaN.
    """
    cmd = [
        h2load,
        "-t1",
        f"-c{connections}",
        f"-m{streams}",
        f"-D{max(1, round(duration))}",
        f"http://127.0.0.1:{port}/hello/",
    ]
    out, cpu_s = _run_client(cmd, cpu, "h2load")
    seconds, good, bad, mean_ms = parse_h2load(out)
    return Trial(
        client="h2load",
        connections=connections,
        streams=streams,
        round=rnd,
        requests=good,
        seconds=seconds,
        rps=good / seconds if seconds else 0.0,
        p50_ms=mean_ms,
        p99_ms=float("nan"),
        cpu_s=cpu_s,
        cpu_us_per_request=cpu_s * 1e6 / (good + bad) if good + bad else 0.0,
        errors=bad,
    )


def open_loop_check(
    port: int,
    rate: float,
    connections: int,
    duration: float,
    warmup: float,
    cpu: int,
    protocol: str = "http1",
    streams: int = 1,
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
        protocol=protocol,
        streams=streams,
    )
    r = run_load(spec)
    achieved = r.answers / r.duration_s
    u = r.latency_uncorrected
    assert u is not None
    return {
        "rate": rate,
        "connections": connections,
        "streams": streams,
        "achieved": achieved,
        "error_pct": (achieved / rate - 1) * 100,
        "within": abs(achieved / rate - 1) <= OPEN_LOOP_TOLERANCE,
        "late": r.late,
        "errors": sum(r.errors.values()),
        "p50_ms": r.latency.p50,
        "p99_ms": r.latency.p99,
        "max_ms": r.latency.max,
        "p50_u_ms": u.p50,
        "p99_u_ms": u.p99,
        "max_u_ms": u.max,
        "cpu_pct": r.client_cpu_pct,
    }


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
