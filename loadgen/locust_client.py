"""Locust as a load client, from fwbench's side: :func:`run_locust` gives a raw-client result.

Locust monkey-patches its process with gevent on import, so it never runs in fwbench's own
process: this module starts ``python -m loadgen.locust_driver`` processes and never imports
locust. A run is either one ``local`` process (``workers == 0``) or a ``master`` with
``workers`` local worker processes (and, if asked, workers from other machines joining with
``fwbench locust-worker``). All of them are children of this process, in its process group,
pinned to the client CPUs (workers round robin), and stopped by PID whatever happens.

Order of a run: the scenario is resolved and the host checked here; the master (or local
process) and the local workers start together (importing locust takes seconds; the workers
retry until the master listens on the port chosen here); every process imports the locustfile
first, and an import error stops the run before any load; the master waits, bounded, for every
worker to connect and accept the setup; the load runs; the master collects the workers' reports
and writes one result file, read here into the same :class:`~loadgen.rawclient.LoadResult` as
the raw client's. The events and formats are in :mod:`loadgen.locustfiles.protocol`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from loadgen.checks import KINDS
from loadgen.launcher import free_port, log_tail
from loadgen.locustfiles import SCENARIOS, locustfile_path
from loadgen.locustfiles.protocol import (
    DEFAULT_MASTER_PORT,
    EXIT_LOCUSTFILE,
    merge,
    parse_event,
)
from loadgen.locustfiles.recording import ProcessReport
from loadgen.rawclient import LoadResult
from loadgen.safety import check_host

ROOT = Path(__file__).resolve().parent.parent
"""The folder that holds the ``loadgen`` package (the driver processes import it from there)."""

READY_S = 90.0
"""How long the master (or local process) may take to import locust and the locustfile."""
SETUP_S = 10.0
"""The master's bounded wait for the workers' answers to the setup (as in the driver)."""
END_S = 45.0
"""Past the window's end: tail, collecting the reports and writing locust's outputs."""
STOP_S = 5.0
"""How long the processes have to exit on their own after a run before being killed."""


class LocustError(RuntimeError):
    """A locust run could not be made: ``stage`` says where, ``log_tail`` what locust said.

    Stages: ``scenario``, ``locustfile``, ``safety``, ``master``, ``workers``, ``run``.
    """

    def __init__(self, reason: str, stage: str = "run", log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.log_tail = log_tail


@dataclass(frozen=True)
class LocustSpec:
    """What to run: target, scenario, users, timeline and the locust processes."""

    host: str
    port: int
    path: str = "/hello/"
    scenario: str = "hello"
    users: int = 64
    spawn_rate: float = 0.0
    """Users started per second; 0 starts them all at once."""
    duration: float = 10.0
    warmup: float = 2.0
    workers: int = 0
    """0: one local process; N: a master and N local worker processes."""
    cpus: tuple[int, ...] = ()
    """CPUs of the locust processes (workers round robin); () leaves them unpinned."""
    kind: str | None = None
    """Body kind to check ("html" or "json") on one answer in ``check_every``; None: no check."""
    check_every: int = 100
    out_dir: Path | None = None
    """Locust's CSV and HTML, its logs and the result file go here (None: a temporary folder)."""
    master_bind_port: int = 0
    """0: a free port (locust's 5557 when external workers are expected)."""
    worker_wait: float = 30.0
    """How long the master waits for every worker to connect."""
    expect_external_workers: int = 0
    """Workers from other machines (``fwbench locust-worker --master HOST``) to wait for."""
    timeout: float = 10.0
    """Connect and answer timeout of a request (an error of kind ``timeout`` past it)."""
    allow_hosts: tuple[str, ...] = ()
    """Hosts besides loopback that may be loaded ([network] allow_hosts)."""
    locustfile: Path | None = None
    """A locustfile to run instead of the scenario's (it should use FastHttpUser)."""
    master_bind_host: str = ""
    """Where the master listens: "" means 127.0.0.1, or every interface with external workers."""

    def __post_init__(self) -> None:
        problems = []
        if not self.host:
            problems.append("host is empty")
        if not 0 < self.port < 65536:
            problems.append(f"port {self.port} is out of range")
        if not self.path.startswith("/"):
            problems.append("path must start with '/'")
        if self.users < 1:
            problems.append("users must be at least 1")
        if self.spawn_rate < 0:
            problems.append("spawn_rate must not be negative")
        if not self.duration > 0:
            problems.append("duration must be positive")
        if not self.warmup >= 0:
            problems.append("warmup must not be negative")
        if self.workers < 0 or self.expect_external_workers < 0:
            problems.append("workers must not be negative")
        if self.kind is not None and self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)} or None")
        if self.check_every < 1:
            problems.append("check_every must be at least 1")
        if not 0 <= self.master_bind_port < 65536:
            problems.append(f"master_bind_port {self.master_bind_port} is out of range")
        if not self.worker_wait > 0 or not self.timeout > 0:
            problems.append("worker_wait and timeout must be positive")
        if any(cpu < 0 for cpu in self.cpus):
            problems.append("cpus must not be negative")
        if problems:
            raise ValueError("invalid LocustSpec: " + "; ".join(problems))

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or self.expect_external_workers > 0

    @property
    def local_processes(self) -> int:
        """Locust processes on this machine: the local one, or the master and its workers."""
        return 1 + self.workers if self.distributed else 1

    @property
    def client_cpus(self) -> int:
        """CPUs the local locust processes can use (one each at most: gevent is one thread)."""
        have = len(set(self.cpus)) if self.cpus else (os.cpu_count() or 1)
        return max(1, min(self.local_processes, have))


@dataclass(frozen=True)
class LocustProcess:
    """One load-generating locust process of a run, as it reported."""

    role: str  # "local" | "worker"
    hostname: str
    pid: int
    local: bool
    requests: int  # good answers in the window
    errors: int
    cpu_pct: float  # % of one core over the window


@dataclass(frozen=True)
class LocustInfo:
    """What a locust run adds to its :class:`~loadgen.rawclient.LoadResult`."""

    mode: str  # "local" | "distributed"
    workers_started: int  # workers that took part (0 for a local run)
    workers_finished: int  # workers whose report came in at the end
    locust_requests: int  # locust's own count of the window's requests (its per-second stats)
    locust_failures: int
    recorded: int  # our count of the same requests (answers and transport errors)
    csv: tuple[Path, ...]
    html: Path | None
    out_dir: Path | None
    pids: tuple[int, ...]  # the local locust processes, master (or local process) first
    processes: tuple[LocustProcess, ...] = field(default=())  # the load processes
    master_cpu_pct: float | None = None  # the master's own CPU, % of one core (distributed)

    @property
    def count_gap_pct(self) -> float:
        """How far locust's count of the window is from ours, in % of ours."""
        if not self.recorded:
            return 0.0 if not self.locust_requests else 100.0
        return abs(self.locust_requests - self.recorded) / self.recorded * 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "workers_started": self.workers_started,
            "workers_finished": self.workers_finished,
            "locust_requests": self.locust_requests,
            "locust_failures": self.locust_failures,
            "recorded": self.recorded,
            "count_gap_pct": self.count_gap_pct,
            "csv": [str(p) for p in self.csv],
            "html": str(self.html) if self.html else None,
            "out_dir": str(self.out_dir) if self.out_dir else None,
            "pids": list(self.pids),
            "processes": [vars(p) for p in self.processes],
            "master_cpu_pct": self.master_cpu_pct,
        }


def run_locust(
    spec: LocustSpec, progress: Callable[[int], None] | None = None
) -> tuple[LoadResult, LocustInfo]:
    """Run ``spec``; blocks for start-up, warm-up, duration and the end (a few seconds).

    ``progress`` is called from this thread about once a second with the number of requests
    completed so far (warm-up included). Raises :class:`LocustError` for an unknown scenario, a
    locustfile that does not import, a host that may not be loaded, workers that do not connect
    within ``worker_wait`` and any locust process that fails or stalls; every locust process is
    gone when this returns or raises (Ctrl-C included).
    """
    locustfile = resolve_locustfile(spec)
    refused = check_host(spec.host, spec.allow_hosts)
    if refused:
        raise LocustError(refused, "safety")
    with contextlib.ExitStack() as stack:
        if spec.out_dir is not None:
            work = spec.out_dir
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fwbench-locust-")))
        group = stack.enter_context(_Group())
        data = _drive(spec, locustfile, work, group, progress)
        pids = tuple(p.popen.pid for p in group.procs)
    return _results(spec, data, pids)


def resolve_locustfile(spec: LocustSpec) -> Path:
    """The locustfile to run; :class:`LocustError` for an unknown scenario or a missing file."""
    if spec.locustfile is not None:
        path = Path(spec.locustfile).resolve()
        if not path.is_file():
            raise LocustError(f"no locustfile at {path}", "locustfile")
        return path
    try:
        return locustfile_path(spec.scenario)
    except ValueError:
        raise LocustError(
            f"unknown scenario {spec.scenario!r} (known: {', '.join(SCENARIOS)})", "scenario"
        ) from None


# --------------------------------------------------------------------------------------------
# The processes


@dataclass
class _Proc:
    role: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def tail(self, lines: int = 15) -> str:
        self.log.flush()
        return log_tail(self.log_path, lines)

    @property
    def name(self) -> str:
        return f"locust {self.role} (pid {self.popen.pid})"


class _Group:
    """The locust processes of one run: started, followed, and stopped by PID for sure."""

    def __init__(self) -> None:
        self.procs: list[_Proc] = []
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.readers: list[threading.Thread] = []

    def __enter__(self) -> _Group:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(STOP_S if exc_type is None else 0.0)

    def start(self, role: str, argv: Sequence[str], log_path: Path, events: bool = False) -> _Proc:
        log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            popen = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if events else log,
                stderr=log,
            )
        except OSError as exc:
            log.close()
            raise LocustError(f"cannot start the locust {role}: {exc.strerror}", "master") from None
        proc = _Proc(role, popen, log_path, log)
        self.procs.append(proc)
        if events:
            reader = threading.Thread(
                target=self._read, args=(proc,), name="fwbench-locust-events", daemon=True
            )
            reader.start()
            self.readers.append(reader)
        return proc

    def _read(self, proc: _Proc) -> None:
        stream = proc.popen.stdout
        assert stream is not None
        with contextlib.suppress(OSError, ValueError):
            for raw in stream:
                event = parse_event(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if event is not None:
                    self.events.put(event)
        self.events.put(None)

    def wait_event(
        self,
        master: _Proc,
        wanted: str,
        deadline: float,
        progress: Callable[[int], None] | None = None,
        watch: Sequence[_Proc] = (),
    ) -> dict[str, Any]:
        """The next ``wanted`` event of ``master``; LocustError on its error, exit or silence."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LocustError(
                    f"{master.name} did not report {wanted!r} in time", "run", master.tail()
                )
            try:
                event = self.events.get(timeout=min(left, 0.25))
            except queue.Empty:
                event = {"event": "(none)"}
            for proc in watch:
                code = proc.popen.poll()
                if code is not None:
                    self._master_error_first(master)
                    raise LocustError(
                        f"{proc.name} exited with code {code} before the load started"
                        + _last_line(proc.tail()),
                        "locustfile" if code == EXIT_LOCUSTFILE else "workers",
                        proc.tail(),
                    )
            if event is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    master.popen.wait(5)
                raise LocustError(
                    f"{master.name} exited with code {master.popen.returncode}"
                    + _last_line(master.tail()),
                    "run",
                    master.tail(),
                )
            kind = event["event"]
            if kind == "error":
                stage = str(event.get("stage", "run"))
                raise LocustError(str(event.get("reason", "unknown")), stage, master.tail())
            if kind == "progress" and progress is not None:
                progress(int(event.get("completed", 0)))
            if kind == wanted:
                return event

    def _master_error_first(self, master: _Proc) -> None:
        """A worker died before the load: the master's own word on why, if it has one."""
        with contextlib.suppress(queue.Empty):
            event = self.events.get(timeout=1.0)
            if event is not None and event["event"] == "error":
                stage = str(event.get("stage", "run"))
                raise LocustError(str(event.get("reason", "unknown")), stage, master.tail())

    def stop(self, grace: float) -> None:
        """Let the processes exit for ``grace`` s, then SIGTERM and SIGKILL them by PID."""
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in self.procs:
            try:
                proc.popen.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(5.0)
        for proc in self.procs:
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()
            proc.log.close()
        for reader in self.readers:
            reader.join(2.0)


def child_env() -> dict[str, str]:
    """The environment of a driver process: ours, with the ``loadgen`` package importable."""
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + old if old else "")
    return env


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return f": {lines[-1].strip()}" if lines else ""


def _cpus_arg(cpus: Sequence[int]) -> list[str]:
    return ["--cpus", ",".join(str(c) for c in cpus)] if cpus else []


def _common(spec: LocustSpec, locustfile: Path) -> list[str]:
    argv = ["--scenario", spec.scenario, "--locustfile", str(locustfile), "--managed"]
    for host in spec.allow_hosts:
        argv += ["--allow-host", host]
    return argv


def _driver(role: str) -> list[str]:
    return [sys.executable, "-m", "loadgen.locust_driver", role]


def _drive(
    spec: LocustSpec,
    locustfile: Path,
    work: Path,
    group: _Group,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    role = "master" if spec.distributed else "local"
    result_path = work / "locust-result.json"
    result_path.unlink(missing_ok=True)
    argv = [
        *_driver(role),
        *_common(spec, locustfile),
        *_cpus_arg(spec.cpus),
        "--host", spec.host,
        "--port", str(spec.port),
        "--path", spec.path,
        "--kind", spec.kind or "",
        "--check-every", str(spec.check_every),
        "--timeout", str(spec.timeout),
        "--users", str(spec.users),
        "--spawn-rate", str(spec.spawn_rate),
        "--warmup", str(spec.warmup),
        "--duration", str(spec.duration),
        "--result", str(result_path),
    ]  # fmt: skip
    if spec.out_dir is not None:
        argv += ["--out-dir", str(spec.out_dir)]
    workers: list[_Proc] = []
    port = 0
    if spec.distributed:
        # The master and its local workers start together (importing locust takes seconds):
        # the port is fixed here, and workers retry until the master listens.
        external = spec.expect_external_workers > 0
        bind_host = spec.master_bind_host or ("*" if external else "127.0.0.1")
        port = spec.master_bind_port or (
            DEFAULT_MASTER_PORT if external else free_port("127.0.0.1")
        )
        argv += [
            "--bind-host", bind_host,
            "--bind-port", str(port),
            "--expect-workers", str(spec.workers + spec.expect_external_workers),
            "--worker-wait", str(spec.worker_wait),
        ]  # fmt: skip
    master = group.start(role, argv, work / f"locust-{role}.log", events=True)
    for i in range(spec.workers):
        cpus = (spec.cpus[i % len(spec.cpus)],) if spec.cpus else ()
        worker_argv = [
            *_driver("worker"),
            *_common(spec, locustfile),
            *_cpus_arg(cpus),
            "--master-host", "127.0.0.1",
            "--master-port", str(port),
            "--connect-timeout", str(READY_S + spec.worker_wait),
            "--local",
        ]  # fmt: skip
        workers.append(group.start("worker", worker_argv, work / f"locust-worker-{i + 1}.log"))
    group.wait_event(master, "ready", time.monotonic() + READY_S, watch=workers)
    start_by = time.monotonic() + spec.worker_wait + SETUP_S + 10.0
    started = group.wait_event(master, "started", start_by, progress, watch=workers)
    left = float(started["window_end"]) - time.time()
    group.wait_event(master, "done", time.monotonic() + max(0.0, left) + END_S, progress)
    try:
        data: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LocustError(f"no readable locust result: {exc}", "run", master.tail()) from None
    return data


# --------------------------------------------------------------------------------------------
# The result


def _results(
    spec: LocustSpec, data: dict[str, Any], pids: tuple[int, ...]
) -> tuple[LoadResult, LocustInfo]:
    reports = [ProcessReport.from_dict(r) for r in data["reports"]]
    merged = merge(reports)
    start, end = float(data["window_start"]), float(data["window_end"])
    duration = max(end - start, 1e-9)
    counts = merged.counts
    ok = counts["ok"]
    errors = merged.errors
    cpu_s = merged.cpu_s_local + float(data.get("master_cpu_s", 0.0))
    client_cpus = spec.client_cpus
    result = LoadResult(
        requests=ok,
        duration_s=duration,
        rps=ok / duration,
        errors=errors,
        reconnects=0,
        late=0,
        latency=merged.hist.summary(),
        latency_uncorrected=None,
        hist=merged.hist.encode(),
        hist_uncorrected=None,
        window_start=start,
        window_end=end,
        client_cpu_s=cpu_s,
        client_cpu_pct=cpu_s / duration / client_cpus * 100.0,
        procs=len(reports),
        connections=spec.users,
        rate=None,
        window_start_monotonic=float(data.get("window_start_monotonic", 0.0)),
        window_end_monotonic=float(data.get("window_end_monotonic", 0.0)),
        client_cpus=client_cpus,
        answers=ok + errors["status"] + errors["body"],
    )
    processes = tuple(
        LocustProcess(
            role=r.role,
            hostname=r.hostname,
            pid=r.pid,
            local=r.local,
            requests=r.counts["ok"],
            errors=r.requests - r.counts["ok"],
            cpu_pct=r.cpu_s / duration * 100.0,
        )
        for r in reports
    )
    html = data.get("html")
    info = LocustInfo(
        mode=str(data["mode"]),
        workers_started=int(data["workers_started"]),
        workers_finished=int(data["workers_finished"]),
        locust_requests=int(data["locust_requests"]),
        locust_failures=int(data["locust_failures"]),
        recorded=merged.requests,
        csv=tuple(Path(p) for p in data.get("csv", [])),
        html=Path(html) if html else None,
        out_dir=spec.out_dir,
        pids=pids,
        processes=processes,
        master_cpu_pct=float(data.get("master_cpu_s", 0.0)) / duration * 100.0
        if data["mode"] == "distributed"
        else None,
    )
    return result, info


__all__ = [
    "LocustError",
    "LocustInfo",
    "LocustProcess",
    "LocustSpec",
    "child_env",
    "resolve_locustfile",
    "run_locust",
]
