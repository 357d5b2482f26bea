"""The cost pass: instructions per request of a target's server, counted under callgrind.

Theory of operation. Requests/s on a shared machine moves by percents from run to run; the
number of instructions a server runs per request does not. For each target:

1. a fresh server is started under ``valgrind --tool=callgrind --instr-atstart=no
   --trace-children=yes`` (every process of its tree: gunicorn's workers too), pinned to the
   server CPUs, with ``PYTHONHASHSEED=0`` (dict and set order, hence the work, is the same in
   every process) and the watchdogs that would kill a 30x slower server raised for this pass
   only (``GUNICORN_CMD_ARGS``: worker ``--timeout``, ``--keep-alive``);
2. a warm-up of ``warmup`` requests with counting off (imports, caches, the first-request
   paths, valgrind's own translation of the code: none of it is counted);
3. ``repeats`` windows of exactly ``requests`` requests each, on one blocking keep-alive
   HTTP/1.1 connection (:class:`KeepAliveClient`, every answer's status and body checked with
   :mod:`loadgen.checks`): before a window, ``callgrind_control -z`` then ``-i on``; after it,
   ``-i off`` then ``-d`` (a dump per process), always naming the server's PIDs (without a
   PID, callgrind_control acts on every callgrind process of the user, other runs' too);
4. each dump's ``totals:`` line is read (:func:`parse_dump`), summed over the processes and
   divided by ``requests``: one figure per window. The target's figure is the median of the
   windows, its spread (max - min) / median; the per-process split is kept;
5. the server is stopped (SIGTERM, then SIGKILL, by process group), the dumps deleted.

What the figure is not (:data:`loadgen.records.COST_LIMITS`): kernel work, waiting and
multi-core effects; it is measured at concurrency one. It complements requests/s.

Defaults (``[cost]`` in bench.toml), chosen by measurement on this 2-CPU VM (valgrind 3.19,
CPython 3.11; figures in docs/regressions.md "Cost gate"):

- ``requests = 1000``: 300-request windows on fresh connections spread 0.3-1.9 % across eight
  targets (notes/cost.md); 1,000-request windows on one connection after the warm-up spread
  0.01-0.1 % for 11 of the first 15 targets counted (Starlette 0.05 %, Flask 0.03-0.07 %,
  Falcon 0.01 %). A few servers do lumpy work that a window either holds or not (a
  garbage collection, a timer): Tornado 1.6 %, Sanic 1.3 %, TurboGears 1.0 %. Under
  callgrind uvicorn + Starlette answers about 500 requests/s, gunicorn + Django (6x the
  count) about 80-90, Reahl (35 million instructions per request) about 1.5: 1,000 requests
  cost 2 s to 11 min.
- ``repeats = 3``: the smallest count with a median that one lumpy window cannot move.
- ``warmup = 500``: a warm-up ten times longer (5,000) gives the same figure within the A/A
  spread of fresh servers (one run: 207,321 after 500, 206,894 after 5,000, 0.21 % apart; had
  the extra 4,500 requests been counted, 2.5 times as much; tests/test_cost.py::
  test_count_excludes_the_warmup); with counting off it costs a few seconds.

The noise that is left is time, not code: the figure of a server rises with the wall-clock
time each request takes (over 20 fresh starlette servers, r = 0.91 between the two, about
650,000 instructions per second; most likely an event loop that waits for a slow client runs
more idle iterations and timers per request). Under another agent's load a whole server reads up to
0.9 % high; on a quiet machine the windows agree within 0.05 %. Subtracting an idle window's
rate (180,000 instructions/s for uvicorn) was tried and left most of it: the extra work is in
serving slowly, not in idling.
"""

from __future__ import annotations

import http.client
import math
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.checks import Kind, body_problem
from loadgen.config import Config
from loadgen.config import Cost as CostConfig
from loadgen.envs import Env
from loadgen.launcher import LaunchError, LaunchOptions, Server, start
from loadgen.passes import each_target
from loadgen.procs import last_line
from loadgen.records import CostProcess, CostRecord
from loadgen.targets import Target

INSTALL_HINT = (
    "valgrind is not installed: install Debian's package (`sudo apt-get install valgrind`, or "
    "`make system-deps` as root), or set [cost] valgrind in bench.toml to its path"
)

RAISED_ENV: tuple[tuple[str, str], ...] = (
    ("PYTHONHASHSEED", "0"),
    # gunicorn reads these before its command line: a worker 30x slower must not be killed as
    # hung, and an idle keep-alive connection must outlive callgrind_control between windows.
    ("GUNICORN_CMD_ARGS", "--timeout 3600 --graceful-timeout 30 --keep-alive 3600"),
)
"""Environment variables set for the cost pass only (appended to a target's own)."""

DUMP_PREFIX = "callgrind.out"
CONTROL_TIMEOUT_S = 120.0


class CostError(RuntimeError):
    """A target could not be counted: the message is the record's ``failure``."""


# --- callgrind's dump files (pure) -------------------------------------------------------------


@dataclass(frozen=True)
class Dump:
    """The header of one callgrind dump: which process, which trigger, how many instructions."""

    pid: int
    command: str
    trigger: str
    instructions: int


_TOTALS = re.compile(r"^(?:totals|summary):\s*(\d+)", re.M)


def parse_dump(text: str) -> Dump:
    """The figures of a callgrind dump (its header lines and ``totals:``); ValueError if none.

    ``totals:`` is the sum of the dump's cost lines; old valgrinds write only ``summary:``.
    With ``events: Ir`` (the default, no cache simulation) the first number is instructions.
    """
    pid = 0
    command = trigger = ""
    totals: int | None = None
    summary: int | None = None
    for line in text.splitlines():
        if line.startswith("pid:"):
            pid = int(line.split(":", 1)[1].split()[0])
        elif line.startswith("cmd:"):
            command = line.split(":", 1)[1].strip()
        elif line.startswith("desc: Trigger:"):
            trigger = line.split(":", 2)[2].strip()
        elif line.startswith("totals:"):
            totals = int(line.split(":", 1)[1].split()[0])
        elif line.startswith("summary:"):
            summary = int(line.split(":", 1)[1].split()[0])
    value = totals if totals is not None else summary
    if value is None:
        raise ValueError("no totals: or summary: line (not a callgrind dump?)")
    return Dump(pid, command, trigger, value)


def read_window_dumps(out_dir: Path, label: str, seen: set[Path]) -> list[Dump]:
    """The dumps triggered by ``dump <label>`` among the files not read yet (added to ``seen``)."""
    found: list[Dump] = []
    for path in sorted(out_dir.glob(f"{DUMP_PREFIX}.*.*")):
        if path in seen:
            continue
        try:
            dump = parse_dump(path.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError):
            continue  # still being written: read again on the next poll
        seen.add(path)
        if dump.trigger.endswith(label):
            found.append(dump)
    return found


def window_figures(
    per_window: Sequence[dict[int, int]], requests: int, commands: dict[int, str]
) -> tuple[tuple[float, ...], tuple[CostProcess, ...]]:
    """Instructions per request of each window (summed over processes) and the per-process split
    (median over the windows of each process's instructions per request)."""
    windows = tuple(sum(w.values()) / requests for w in per_window)
    total = statistics.median(windows) if windows else 0.0
    pids = sorted({pid for w in per_window for pid in w})
    procs = []
    for pid in pids:
        med = float(statistics.median(w.get(pid, 0) / requests for w in per_window))
        share = med / total * 100.0 if total else 0.0
        procs.append(CostProcess(pid, commands.get(pid, "")[:120], round(med, 1), round(share, 2)))
    return windows, tuple(procs)


# --- the tool ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    valgrind: str
    control: str
    version: str


def find_tool(valgrind: str = "valgrind") -> Tool | str:
    """valgrind and callgrind_control, or a message saying how to install them."""
    vg = shutil.which(valgrind)
    if vg is None:
        return INSTALL_HINT
    control = Path(vg).with_name("callgrind_control")
    ctl = str(control) if control.exists() else shutil.which("callgrind_control")
    if ctl is None:
        return f"callgrind_control is not next to {vg} nor on PATH; {INSTALL_HINT}"
    try:
        out = subprocess.run([vg, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{vg} does not run ({exc}); {INSTALL_HINT}"
    return Tool(vg, ctl, out.stdout.strip() or "valgrind")


def tool_argv(tool: Tool, out_dir: Path) -> tuple[str, ...]:
    return (
        tool.valgrind,
        "--tool=callgrind",
        "--instr-atstart=no",
        "--trace-children=yes",
        "--dump-line=no",
        f"--callgrind-out-file={out_dir}/{DUMP_PREFIX}.%p",
    )


def control(tool: Tool, pids: Sequence[int], *args: str) -> None:
    """``callgrind_control ARGS PID`` for each PID (never without one); CostError on failure."""
    for pid in pids:
        try:
            out = subprocess.run(
                [tool.control, *args, str(pid)],
                capture_output=True,
                text=True,
                timeout=CONTROL_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise CostError(
                f"callgrind_control {' '.join(args)} {pid}: no answer in {CONTROL_TIMEOUT_S:g} s"
            ) from None
        if out.returncode != 0 or "OK" not in out.stdout:
            said = last_line(out.stdout + "\n" + out.stderr) or f"exit status {out.returncode}"
            raise CostError(f"callgrind_control {' '.join(args)} {pid}: {said}")


# --- the client --------------------------------------------------------------------------------


class KeepAliveClient:
    """A small blocking HTTP/1.1 client on one keep-alive connection; every answer checked."""

    def __init__(self, host: str, port: int, path: str, kind: Kind, timeout: float) -> None:
        self.host, self.port, self.path, self.kind, self.timeout = host, port, path, kind, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0  # connections the server closed under us (not Connection: close)
        self.sent = 0

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def get(self) -> None:
        for attempt in (1, 2):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 1 and reused:  # an idle keep-alive connection the server closed
                    self.reconnects += 1
                    continue
                raise
            break
        self.sent += 1
        if resp.status != 200:
            raise CostError(f"request {self.sent}: status {resp.status}")
        problem = body_problem(self.kind, body)
        if problem:
            raise CostError(f"request {self.sent}: {problem}")
        if resp.will_close:
            self.close()

    def send(self, n: int, interval_s: float = 0.0) -> int:
        """``n`` requests; with ``interval_s``, request i starts at ``i × interval_s`` after the
        first (a fixed pace). Returns how many started late (the previous answer took longer
        than the interval)."""
        late = 0
        start = time.monotonic()
        for i in range(n):
            if interval_s:
                wait = start + i * interval_s - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif i:
                    late += 1
            self.get()
        return late

    def timed(self, n: int) -> list[float]:
        """``n`` requests back to back; the wall-clock seconds each took."""
        times = []
        for _ in range(n):
            t0 = time.monotonic()
            self.get()
            times.append(time.monotonic() - t0)
        return times

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- one target --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostSpec:
    requests: int = 1000
    repeats: int = 3
    warmup: int = 500
    startup_timeout: float = 300.0
    request_timeout: float = 60.0
    valgrind: str = "valgrind"
    interval_ms: float = 0.0  # a fixed pace of the counted requests (0: back to back)
    pace_factor: float = 0.0  # > 0: pace at max(interval_ms, factor x the probe's ms/request)

    @classmethod
    def from_config(cls, c: CostConfig) -> CostSpec:
        return cls(
            c.requests,
            c.repeats,
            c.warmup,
            c.startup_timeout,
            c.request_timeout,
            c.valgrind,
            c.interval_ms,
            c.pace_factor,
        )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_record(
    target: Target, env: Env | None, spec: CostSpec, run_id: str, machine: dict[str, Any]
) -> CostRecord:
    """The record before anything is counted (status ok, no window yet: not valid as is)."""
    return CostRecord(
        run_id=run_id,
        target=target.name,
        started_at=now_iso(),
        status="failed",
        failure="not measured",
        framework=target.framework,
        framework_version=env.version_of(target.framework_package) if env else "",
        server=target.server + (f" ({target.server_worker})" if target.server_worker else ""),
        server_version=env.version_of(target.server_package) if env else "",
        python=env.python_version if env else target.python,
        requests_per_window=spec.requests,
        warmup_requests=spec.warmup,
        machine=machine,
    )


def launch_options(
    base: LaunchOptions, target: Target, tool: Tool, spec: CostSpec, out: Path
) -> LaunchOptions:
    """The cost pass's start: under callgrind, the raised watchdogs, long start-up waits."""
    own = target.startup_timeout or base.timeout
    return replace(
        base,
        argv_prefix=tool_argv(tool, out),
        extra_env=RAISED_ENV,
        timeout_scale=max(1.0, spec.startup_timeout / own),
        probe_timeout=spec.request_timeout,
        stop_grace=max(base.stop_grace, 30.0),
    )


def measure(
    target: Target,
    env: Env | None,
    *,
    spec: CostSpec,
    launch: LaunchOptions,
    work_dir: Path,
    run_id: str = "",
    machine: dict[str, Any] | None = None,
    tool: Tool | str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> CostRecord:
    """Count one target on a fresh server; a target that cannot be counted gets a failed record
    with the reason (never an exception, but KeyboardInterrupt, which stops the server first)."""
    rec = base_record(target, env, spec, run_id, machine or {})
    if tool is None:
        tool = find_tool(spec.valgrind)
    if isinstance(tool, str):
        return rec.failed(tool)
    rec = replace(rec, tool=tool.version)
    if env is None:
        return rec.failed("no environment (the build failed)")
    out = work_dir / "callgrind" / target.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    opts = launch_options(launch, target, tool, spec, out)
    rec = replace(rec, tool_args=opts.argv_prefix[1:])
    try:
        server = start(target, env, log_dir=work_dir / "logs", opts=opts)
    except LaunchError as exc:
        tail = last_line(exc.log_tail)
        return rec.failed(f"start under valgrind: {exc.reason}" + (f" ({tail})" if tail else ""))
    try:
        rec = replace(rec, startup_s=round(server.startup_s, 2))
        return _count(server, target, tool, spec, out, rec, say)
    finally:
        server.stop(opts.stop_grace)
        shutil.rmtree(out, ignore_errors=True)


def _count(
    server: Server,
    target: Target,
    tool: Tool,
    spec: CostSpec,
    out: Path,
    rec: CostRecord,
    say: Callable[[str], None],
) -> CostRecord:
    client = KeepAliveClient(server.host, server.port, target.hello_path, target.kind,
                             spec.request_timeout)  # fmt: skip
    seen: set[Path] = set()
    per_window: list[dict[int, int]] = []
    commands: dict[int, str] = {}
    counted = 0.0
    late = 0
    interval_ms, probe_ms = spec.interval_ms, None
    try:
        client.send(spec.warmup)
        say(f"warm-up of {spec.warmup} requests done")
        if spec.pace_factor > 0:
            probe_ms = _probe_ms(server, tool, client)
            interval_ms = pace_ms(spec, probe_ms)
            say(f"pace probe: {probe_ms:.2f} ms/request counted; pace {interval_ms:g} ms")
        for w in range(1, spec.repeats + 1):
            pids = [p.pid for p in server.tree()]
            label = f"fwbench-{target.name}-w{w}"
            control(tool, pids, "-z")
            control(tool, pids, "-i", "on")
            t0 = time.monotonic()
            late += client.send(spec.requests, interval_ms / 1000.0)
            counted += time.monotonic() - t0
            control(tool, pids, "-i", "off")
            control(tool, pids, "-d", label)
            dumps = _await_dumps(out, label, seen, len(pids))
            if not server.alive():
                raise CostError(f"server exited with code {server.proc.returncode}")
            per_window.append({d.pid: d.instructions for d in dumps})
            commands.update({d.pid: d.command for d in dumps})
            ipr = sum(d.instructions for d in dumps) / spec.requests
            say(f"window {w}/{spec.repeats}: {ipr:,.0f} instructions/request")
    except CostError as exc:
        return rec.failed(str(exc))
    except (OSError, http.client.HTTPException) as exc:
        alive = "" if server.alive() else f" (server exited with code {server.proc.returncode})"
        return rec.failed(f"request {client.sent + 1}: {type(exc).__name__}: {exc}{alive}")
    finally:
        client.close()
    windows, procs = window_figures(per_window, spec.requests, commands)
    return replace(
        rec,
        status="ok",
        failure="",
        windows=tuple(round(x, 2) for x in windows),
        processes=procs,
        reconnects=client.reconnects,
        counted_s=round(counted, 2),
        interval_ms=interval_ms,
        probe_ms_per_request=None if probe_ms is None else round(probe_ms, 3),
        late_requests=late,
    )


PROBE_REQUESTS = 50
"""Requests of the pace probe: timed one by one with counting on (callgrind's instrumentation
slows a server several times; the warm-up runs with it off, so its times would be too short)."""


def _probe_ms(server: Server, tool: Tool, client: KeepAliveClient) -> float:
    """The median milliseconds a request takes with counting on (the counters are zeroed
    before the first window, so the probe's requests are not in any figure)."""
    pids = [p.pid for p in server.tree()]
    control(tool, pids, "-i", "on")
    try:
        times = client.timed(PROBE_REQUESTS)
    finally:
        control(tool, pids, "-i", "off")
    return statistics.median(times) * 1000.0


def pace_ms(spec: CostSpec, probe_ms: float) -> float:
    """The pace of one target: ``pace_factor`` times its probed time per request, rounded up to
    a whole millisecond, and never below ``interval_ms``. With a factor of 2, a request
    started on its slot is answered well inside it, so the server waits the same idle time per
    request on every run: the count no longer follows how busy the machine was."""
    return float(max(spec.interval_ms, math.ceil(spec.pace_factor * probe_ms)))


def _await_dumps(out: Path, label: str, seen: set[Path], expected: int) -> list[Dump]:
    """The window's dumps, one per process; they are written by the time callgrind_control
    returns, but give the file system a moment."""
    found: list[Dump] = []
    deadline = time.monotonic() + 10.0
    while True:
        found += read_window_dumps(out, label, seen)
        if len({d.pid for d in found}) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not found:
        raise CostError(f"no callgrind dump for {label} in {out}")
    return found


# --- a pass over targets -----------------------------------------------------------------------


def cost_pass(
    cfg: Config,
    targets: Sequence[tuple[Target, Env | None, str]],
    *,
    work_dir: Path,
    run_id: str,
    machine: dict[str, Any],
    spec: CostSpec | None = None,
    on_record: Callable[[CostRecord], None] = lambda _: None,
    say: Callable[[str], None] = lambda _: None,
) -> list[CostRecord]:
    """Count every target in turn (``(target, env or None, why not)``), one server at a time."""
    spec = spec or CostSpec.from_config(cfg.cost)
    tool = find_tool(spec.valgrind)
    launch = LaunchOptions.from_config(cfg)
    return each_target(
        "cost",
        targets,
        measure=lambda target, env, tell: measure(
            target,
            env,
            spec=spec,
            launch=launch,
            work_dir=work_dir,
            run_id=run_id,
            machine=machine,
            tool=tool,
            say=tell,
        ),
        failed=lambda target, why: base_record(target, None, spec, run_id, machine).failed(why),
        problem=lambda rec: "",  # fwbench cost says "NOT COUNTED" itself
        on_record=on_record,
        say=say,
    )
