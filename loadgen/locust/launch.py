"""The locust processes of one run, from fwbench's side: started, followed, stopped for sure.

A run is one ``local`` process, or a ``master`` and its local ``worker`` processes, each
``python -m loadgen.locust.driver <role>``: children of this process, in its process group,
pinned to the client CPUs (workers round robin), with their output in log files of the run's
folder, a clean environment and the reaper watching them (:func:`loadgen.procs.spawn`). The
master (or local process) reports on its stdout (``@fwbench`` event lines, read here by a
thread); :meth:`Processes.wait_event` waits, bounded, for the next step and turns an ``error``
event, an early exit or silence into a :class:`~loadgen.locust.spec.LocustError`.
Whatever happens, :meth:`Processes.stop` leaves no process behind
(:func:`loadgen.procs.stop_processes`: by PID, SIGTERM then SIGKILL).

Pure of locust: this module runs in fwbench's process.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from loadgen.locust.protocol import DEFAULT_MASTER_PORT, EXIT_LOCUSTFILE, SETUP_S, parse_event
from loadgen.locust.spec import LocustError, LocustSpec
from loadgen.procs import child_env as clean_env
from loadgen.procs import free_port, last_line, log_tail, spawn, stop_processes

ROOT = Path(__file__).resolve().parents[2]
"""The folder that holds the ``loadgen`` package (the driver processes import it from there)."""

READY_S = 90.0
"""How long the master (or local process) may take to import locust and the locustfile."""
END_S = 45.0
"""Past the window's end: tail, collecting the reports and writing locust's outputs."""
STOP_S = 5.0
"""How long the processes have to exit on their own after a run before being stopped."""
TERM_S = 2.0
"""How long a process has between SIGTERM and SIGKILL."""


def child_env() -> dict[str, str]:
    """The environment of a driver process: a clean one, with the ``loadgen`` package importable
    (:func:`loadgen.procs.child_env`: none of fwbench's secrets)."""
    return clean_env(suite=True)


def driver_argv(role: str) -> list[str]:
    """The start of a driver process's command line."""
    return [sys.executable, "-m", "loadgen.locust.driver", role]


def cpus_argv(cpus: Sequence[int]) -> list[str]:
    return ["--cpus", ",".join(str(c) for c in cpus)] if cpus else []


@dataclass
class Proc:
    """One locust process of a run and its log."""

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


class Processes:
    """The locust processes of one run: started, followed, and stopped by PID for sure."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.readers: list[threading.Thread] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(STOP_S if exc_type is None else 0.0)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(p.popen.pid for p in self.procs)

    def start(self, role: str, argv: Sequence[str], log_path: Path, events: bool = False) -> Proc:
        log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            popen: subprocess.Popen[bytes] = spawn(
                argv,
                env=child_env(),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if events else log,
                stderr=log,
            )
        except OSError as exc:
            log.close()
            raise LocustError(f"cannot start the locust {role}: {exc.strerror}", "master") from None
        proc = Proc(role, popen, log_path, log)
        self.procs.append(proc)
        if events:
            reader = threading.Thread(
                target=self._read, args=(proc,), name="fwbench-locust-events", daemon=True
            )
            reader.start()
            self.readers.append(reader)
        return proc

    def _read(self, proc: Proc) -> None:
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
        master: Proc,
        wanted: str,
        deadline: float,
        progress: Callable[[int], None] | None = None,
        watch: Sequence[Proc] = (),
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
                        + _said(proc.tail()),
                        "locustfile" if code == EXIT_LOCUSTFILE else "workers",
                        proc.tail(),
                    )
            if event is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    master.popen.wait(5)
                raise LocustError(
                    f"{master.name} exited with code {master.popen.returncode}"
                    + _said(master.tail()),
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

    def _master_error_first(self, master: Proc) -> None:
        """A worker died before the load: the master's own word on why, if it has one."""
        with contextlib.suppress(queue.Empty):
            event = self.events.get(timeout=1.0)
            if event is not None and event["event"] == "error":
                stage = str(event.get("stage", "run"))
                raise LocustError(str(event.get("reason", "unknown")), stage, master.tail())

    def stop(self, grace: float) -> None:
        """Let the processes exit on their own for ``grace`` s, then stop them by PID."""
        deadline = time.monotonic() + grace
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
        stop_processes([proc.popen for proc in self.procs], TERM_S)
        for proc in self.procs:
            proc.log.close()
        for reader in self.readers:
            reader.join(2.0)


def _said(text: str) -> str:
    line = last_line(text)
    return f": {line}" if line else ""


def _common_argv(spec: LocustSpec, locustfile: Path) -> list[str]:
    argv = ["--scenario", spec.scenario, "--locustfile", str(locustfile), "--managed"]
    for host in spec.allow_hosts:
        argv += ["--allow-host", host]
    return argv


def drive(
    spec: LocustSpec,
    locustfile: Path,
    work: Path,
    procs: Processes,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    """Start the run's processes in ``procs``, follow them to the end; the result file's data."""
    role = "master" if spec.distributed else "local"
    result_path = work / "locust-result.json"
    result_path.unlink(missing_ok=True)
    argv = [
        *driver_argv(role),
        *_common_argv(spec, locustfile),
        *cpus_argv(spec.cpus),
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
    workers: list[Proc] = []
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
    master = procs.start(role, argv, work / f"locust-{role}.log", events=True)
    for i in range(spec.workers):
        cpus = (spec.cpus[i % len(spec.cpus)],) if spec.cpus else ()
        worker_argv = [
            *driver_argv("worker"),
            *_common_argv(spec, locustfile),
            *cpus_argv(cpus),
            "--master-host", "127.0.0.1",
            "--master-port", str(port),
            "--connect-timeout", str(READY_S + spec.worker_wait),
            "--local",
        ]  # fmt: skip
        workers.append(procs.start("worker", worker_argv, work / f"locust-worker-{i + 1}.log"))
    procs.wait_event(master, "ready", time.monotonic() + READY_S, watch=workers)
    start_by = time.monotonic() + spec.worker_wait + SETUP_S + 10.0
    started = procs.wait_event(master, "started", start_by, progress, watch=workers)
    left = float(started["window_end"]) - time.time()
    procs.wait_event(master, "done", time.monotonic() + max(0.0, left) + END_S, progress)
    try:
        data: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LocustError(f"no readable locust result: {exc}", "run", master.tail()) from None
    return data
