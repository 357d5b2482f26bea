"""The raw client's process fan-out: a run split into parts, run here or in worker processes.

With ``procs`` > 1, each worker is ``python -m loadgen.rawclient --worker`` (a clean
environment, watched by the reaper: :func:`loadgen.procs.spawn`): it reads its part of the run
as a JSON line on stdin, answers ``ready``, gets the go time, and writes ``progress`` lines and
one ``result`` line (histograms encoded) on stdout. The parent merges the results,
and stops the workers by PID on any failure or Ctrl-C. With ``procs`` == 1 the run happens in
the calling thread, in a fresh event loop, pinned while it runs.

Ctrl-C: the run ends with :class:`~loadgen.rawclient.hotloop._Interrupted` (a
KeyboardInterrupt) carrying what was measured so far. In one process, the worker's own SIGINT
handler ends its window. With workers, the parent sends each of them SIGINT (by PID; a worker
ignores SIGINT except while it runs), gathers the ``interrupted`` reports they write within
:data:`INTERRUPT_GRACE_S`, then stops them all by PID as on any failure.

A run's settings (:class:`~loadgen.rawclient.spec.LoadSpec`) are split into one
:class:`~loadgen.rawclient.hotloop._Part` per process (:func:`_split`); each part's
:class:`~loadgen.rawclient.hotloop._Report` comes back and :func:`_merge` sums them into one
:class:`~loadgen.records.LoadResult` (through its one constructor, ``LoadResult.measured``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any, Protocol

import uvloop

from loadgen.checks import KINDS, Kind
from loadgen.hist import Histogram
from loadgen.procs import child_env, pinned, spawn, stop_processes
from loadgen.rawclient.hotloop import (
    GRACE_S,
    PROGRESS_S,
    _Interrupted,
    _Part,
    _Report,
    _Worker,
)
from loadgen.rawclient.spec import LoadSpec
from loadgen.records import LoadResult, Window
from loadgen.records.scenarios import H2_PROTOCOLS, WS_SCENARIOS

START_TIMEOUT_S = 60.0
"""How long worker processes may take to start and report ready."""
INTERRUPT_GRACE_S = 2.0
"""How long interrupted workers may take to report what they measured."""


def _resolve(host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, _, _, _, sockaddr = infos[0]
    return int(family), tuple(sockaddr)


def _split(spec: LoadSpec, address: tuple[int, tuple[Any, ...]], request: bytes) -> list[_Part]:
    family, sockaddr = address
    parts = []
    first = 0
    share, extra = divmod(spec.connections, spec.procs)
    for index in range(spec.procs):
        count = share + (1 if index < extra else 0)
        if spec.cpus:
            if spec.procs >= len(spec.cpus):
                cpus: tuple[int, ...] = (spec.cpus[index % len(spec.cpus)],)
            else:
                cpus = tuple(spec.cpus[index :: spec.procs])
        else:
            cpus = ()
        parts.append(
            _Part(
                index=index,
                address=sockaddr,
                family=family,
                request=request,
                connections=count,
                first_connection=first,
                total_connections=spec.connections,
                rate=spec.rate,
                warmup=spec.warmup,
                duration=spec.duration,
                timeout=spec.timeout,
                kind=_kind(spec.kind),
                check_every=spec.check_every,
                cpus=cpus,
                keepalive=spec.keepalive,
                scenario=spec.scenario,
                queries=spec.queries,
                protocol=spec.protocol,
                streams=spec.streams,
                path=spec.path,
                authority=spec.authority,
                method=spec.method,
                headers=spec.headers,
                body=spec.body,
                message_size=spec.message_size,
                message_binary=spec.message_binary,
                server_name=spec.server_name,
            )
        )
        first += count
    return parts


def _worker_for(part: _Part) -> Callable[[_Part, asyncio.AbstractEventLoop, bool], _LoopWorker]:
    """The worker of the part's protocol (each protocol's loop a module of its own, imported
    only when used: HTTP/1.1 :mod:`~loadgen.rawclient.hotloop`, HTTP/2
    :mod:`~loadgen.rawclient.h2loop`, WebSocket :mod:`~loadgen.rawclient.wsloop`). A worker
    process calls it before it says ready, so no import runs between the start signal and the
    window."""
    if part.scenario in WS_SCENARIOS:
        from loadgen.rawclient.wsloop import _WsWorker

        return _WsWorker
    if part.protocol in H2_PROTOCOLS:
        from loadgen.rawclient.h2loop import _H2Worker

        return _H2Worker
    return _Worker


def _work(part: _Part, thread_cpu: bool, publish: Callable[[int], None] | None) -> _Report:
    """Run one part with the worker of its protocol, in a fresh event loop in this thread."""
    return _run_worker(_worker_for(part), part, thread_cpu, publish)


class _LoopWorker(Protocol):
    """What :func:`_run_worker` drives: this module's worker, HTTP/2's and WebSocket's."""

    interrupted: bool

    async def run(self, publish: Callable[[int], None] | None) -> _Report: ...
    def interrupt(self) -> None: ...
    def stop(self) -> None: ...


def _run_worker(
    make: Callable[[_Part, asyncio.AbstractEventLoop, bool], _LoopWorker],
    part: _Part,
    thread_cpu: bool,
    publish: Callable[[int], None] | None,
) -> _Report:
    """Run the worker ``make`` builds in a fresh uvloop event loop in this thread (every
    protocol's loop runs its worker through here).

    Ctrl-C: uvloop may hand a KeyboardInterrupt raised inside a protocol callback to the
    transport's error handling instead of the caller, so while the loop runs (in the main thread,
    with Python's default SIGINT handling) SIGINT is taken by a loop signal handler that ends
    the run; :class:`_Interrupted` (a KeyboardInterrupt) is raised here, once the connections
    are closed, with what the window measured so far.
    """
    loop = uvloop.new_event_loop()
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    worker = make(part, loop, thread_cpu)
    catch_sigint = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if catch_sigint:
        loop.add_signal_handler(signal.SIGINT, worker.interrupt)
    main = loop.create_task(worker.run(publish))
    try:
        report = loop.run_until_complete(main)
    finally:
        if not main.done():  # interrupted some other way: close every connection first
            worker.stop()
            main.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(main)
        if catch_sigint:
            loop.remove_signal_handler(signal.SIGINT)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if gc_was_enabled:
            gc.enable()
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    if worker.interrupted:
        raise _Interrupted([report])
    return report


def _kind(kind: str | None) -> Kind | None:
    for known in KINDS:
        if kind == known:
            return known
    return None


def _run_in_process(part: _Part, progress: Callable[[int], None] | None) -> _Report:
    """procs == 1: run in this process, in a fresh event loop, pinned while it runs."""
    try:
        asyncio.get_running_loop()
        nested = True
    except RuntimeError:
        nested = False
    if not nested:
        return _run_here(part, progress)
    # Called from inside an event loop: run in a thread of its own, so as not to nest loops.
    result: list[_Report] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(_run_here(part, None))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="fwbench-load", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _run_here(part: _Part, progress: Callable[[int], None] | None) -> _Report:
    with pinned(part.cpus):
        part = replace(part, go=time.monotonic() + 0.01)
        publish = None
        if progress is not None:
            last = [0.0]

            def publish(total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= 1.0 - PROGRESS_S / 2:
                    last[0] = now
                    progress(total)

        return _work(part, True, publish)


def _child_main() -> int:
    """Entry point of a worker process (``python -m loadgen.rawclient --worker``).

    It reads its part (one JSON line) from stdin, pins itself, says ``ready``, waits for the go
    time (one more line), runs, and writes ``progress N`` lines then one ``result {...}`` line.
    SIGINT is ignored but while it runs: then it ends the window, and the report so far is
    written as ``interrupted {...}`` (the parent stops its workers by PID in any case).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    part = _part_from_json(sys.stdin.readline())
    if part.cpus:
        os.sched_setaffinity(0, part.cpus)
    _worker_for(part)  # its imports now, not after the start signal
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    line = sys.stdin.readline()
    if not line:
        return 1
    go = float(line)

    def publish(total: int) -> None:
        try:
            out.write(f"progress {total}\n")
            out.flush()
        except OSError:  # the parent is gone: so is the point of going on
            os._exit(1)

    try:
        kind = "result"
        signal.signal(signal.SIGINT, signal.default_int_handler)  # for _work's own handler
        try:
            report = _work(replace(part, go=go), False, publish)
        except _Interrupted as exc:
            kind, report = "interrupted", exc.reports[0]
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        out.write(f"{kind} " + json.dumps(asdict(report)) + "\n")
        out.flush()
    except KeyboardInterrupt:  # SIGINT just before or after the run: nothing to report
        return 130
    except BrokenPipeError:
        return 1
    return 0


def _part_to_json(part: _Part) -> str:
    data = asdict(part)
    data["request"] = part.request.decode("latin-1")
    data["body"] = None if part.body is None else part.body.decode("latin-1")
    return json.dumps(data)


def _part_from_json(text: str) -> _Part:
    data = json.loads(text)
    data["request"] = data["request"].encode("latin-1")
    data["address"] = tuple(data["address"])
    data["cpus"] = tuple(data["cpus"])
    data["headers"] = tuple(tuple(h) for h in data["headers"])
    if data["body"] is not None:
        data["body"] = data["body"].encode("latin-1")
    return _Part(**data)


def _run_in_processes(
    parts: Sequence[_Part], progress: Callable[[int], None] | None
) -> list[_Report]:
    """Run each part in a worker process of its own; stop them all, by PID, on any failure."""
    # A clean environment (none of fwbench's secrets) where the suite's code imports; numpy
    # (used after the window) must not start a BLAS thread pool on unpinned CPUs.
    blas = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    env = child_env({name: os.environ.get(name, "1") for name in blas}, suite=True)
    cmd = [sys.executable, "-m", "loadgen.rawclient", "--worker"]
    workers: list[subprocess.Popen[str]] = []
    readers: _Lines | None = None
    reports: dict[int, _Report] = {}
    go = 0.0
    try:
        for part in parts:
            proc: subprocess.Popen[str] = spawn(
                cmd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            workers.append(proc)
            assert proc.stdin is not None
            proc.stdin.write(_part_to_json(part) + "\n")
            proc.stdin.flush()
        readers = _Lines(workers)
        deadline = time.monotonic() + START_TIMEOUT_S
        ready: set[int] = set()
        while len(ready) < len(workers):
            for index, line in readers.read(deadline):
                if line is None:
                    raise RuntimeError(f"load worker {index} exited before it was ready")
                if line == "ready":
                    ready.add(index)
        go = time.monotonic() + 0.05
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.write(f"{go!r}\n")
            proc.stdin.flush()
        part0 = parts[0]
        deadline = go + part0.warmup + part0.duration + GRACE_S + 2.0
        answers = [0] * len(workers)
        next_progress = time.monotonic() + 1.0
        interrupted = False
        while len(reports) < len(workers):
            for index, line in readers.read(min(deadline, next_progress), quiet_until=True):
                if line is None:
                    if index not in reports:
                        code = workers[index].poll()
                        raise RuntimeError(f"load worker {index} exited early (status {code})")
                    continue
                kind, _, rest = line.partition(" ")
                if kind == "progress":
                    answers[index] = int(rest)
                elif kind == "result":
                    reports[index] = _Report(**json.loads(rest))
                elif kind == "interrupted":  # SIGINT reached the worker: end the whole run
                    reports[index] = _Report(**json.loads(rest))
                    interrupted = True
            if interrupted:
                raise KeyboardInterrupt
            if time.monotonic() >= deadline and len(reports) < len(workers):
                raise RuntimeError("load workers did not finish in time")
            if time.monotonic() >= next_progress:
                next_progress += 1.0
                if progress is not None:
                    progress(sum(answers))
        for proc in workers:
            proc.wait(GRACE_S)
        return [reports[i] for i in range(len(workers))]
    except KeyboardInterrupt:
        if readers is None or not go:  # before the go: nothing was measured
            raise
        raise _Interrupted(_gather_interrupted(workers, readers, reports)) from None
    finally:
        stop_processes(workers)


def _gather_interrupted(
    workers: Sequence[subprocess.Popen[str]], readers: _Lines, reports: dict[int, _Report]
) -> list[_Report]:
    """Ctrl-C in the parent: each worker still running is asked (SIGINT, by PID) to end its
    window now; what they report within :data:`INTERRUPT_GRACE_S` is returned."""
    for index, proc in enumerate(workers):
        if index not in reports and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
    ended = set(reports)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    while len(ended) < len(workers) and time.monotonic() < deadline:
        for index, line in readers.read(deadline, quiet_until=True):
            kind, _, rest = (line or "").partition(" ")
            if kind in ("result", "interrupted"):
                reports[index] = _Report(**json.loads(rest))
            if line is None or kind in ("result", "interrupted"):
                ended.add(index)
    return [reports[i] for i in sorted(reports)]


class _Lines:
    """Reads whole lines from the stdout pipes of worker processes."""

    def __init__(self, workers: Sequence[subprocess.Popen[str]]) -> None:
        self.workers = workers
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[int, str] = {}
        for index, proc in enumerate(workers):
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)
            self.selector.register(proc.stdout.fileno(), selectors.EVENT_READ, index)
            self.buffers[index] = ""

    def read(self, deadline: float, quiet_until: bool = False) -> list[tuple[int, str | None]]:
        """The lines that arrive before ``deadline`` (at least one, unless ``quiet_until``).

        A worker's end of output comes as ``(index, None)``, after its last line.
        """
        lines: list[tuple[int, str | None]] = []
        while not lines:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                if quiet_until:
                    return lines
                raise RuntimeError("load workers did not answer in time")
            for key, _ in self.selector.select(timeout):
                index = int(key.data)
                chunk = os.read(int(key.fd), 65536).decode()
                if not chunk:
                    self.selector.unregister(key.fd)
                    lines.append((index, None))
                    continue
                text = self.buffers[index] + chunk
                *complete, self.buffers[index] = text.split("\n")
                lines.extend((index, line) for line in complete)
        return lines


def _merge_measured(spec: LoadSpec, reports: Sequence[_Report]) -> LoadResult | None:
    """:func:`_merge` of the reports whose window had begun (an interrupted run); None when
    none had (it was interrupted in the warm-up)."""
    measured = [r for r in reports if r.window_start_monotonic]
    return _merge(spec, measured) if measured else None


def _merge(spec: LoadSpec, reports: Sequence[_Report]) -> LoadResult:
    counts: dict[str, int] = {}
    for report in reports:
        for key, value in report.counts.items():
            counts[key] = counts.get(key, 0) + value
    window = Window(
        start=min(r.window_start for r in reports),
        end=max(r.window_end for r in reports),
        start_monotonic=min(r.window_start_monotonic for r in reports),
        end_monotonic=max(r.window_end_monotonic for r in reports),
    )
    hist_u = None
    if spec.rate is not None:
        hist_u = Histogram.merged(r.hist_uncorrected for r in reports if r.hist_uncorrected)
    return LoadResult.measured(
        counts=counts,
        hist=Histogram.merged(r.hist for r in reports if r.hist),
        hist_uncorrected=hist_u,
        window=window,
        duration_s=window.end_monotonic - window.start_monotonic,
        client_cpu_s=sum(r.cpu_s for r in reports),
        client_cpus=spec.client_cpus,
        procs=spec.procs,
        connections=spec.connections,
        rate=spec.rate,
        reconnects=sum(r.reconnects for r in reports),
        late=sum(r.late for r in reports),
    )
