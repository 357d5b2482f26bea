"""The raw load client: the measuring instrument, a thin asyncio transport on uvloop.

Theory of operation
-------------------
A run (:func:`run_load`) opens ``connections`` keep-alive connections, split over ``procs``
worker processes, each pinned to its CPU and running its own uvloop event loop. Every worker
follows one timeline on the system-wide monotonic clock, fixed by the parent once all workers
are ready::

    go ──── warm-up (answers discarded) ──── window start ──── duration ──── window end
                                             │ snapshot counters, CPU     │ snapshot again,
                                             │ time.time()/monotonic()    │ abort, report

Closed loop: each connection sends its next request as soon as the previous answer is in.
The latency of an answer runs from the moment the previous answer was read (the request is
written right after it) to the moment this one is read: one clock read per request, so it
includes the client's own microsecond or two of parsing, as wrk's includes its write.

Open loop (``rate`` given): every connection owns a fixed schedule of intended send times, one
every ``connections / rate`` seconds, staggered so that the sum over connections is evenly
spaced at ``1 / rate``. A request goes out at its intended time, or as soon as the previous
answer on its connection arrived if that was later. Two latencies are recorded per answer:
from the actual send time (uncorrected) and from the intended time (corrected for coordinated
omission, as wrk2 does), so a server that stalls is charged for every request it kept waiting.
The one exception: when a connection was idle and our own timer woke up within ``LATE_NS`` of
the intended time, the corrected latency starts at the actual send, so the timer's jitter
(libuv timers tick in milliseconds) is not charged to the server. Sends later than ``LATE_NS``
are counted in ``late`` and charged from the intended time, whatever the cause.

The hot path (``data_received``) does one clock read, feeds the bytes to the sans-IO parser
(:mod:`loadgen.http1`; a repeat of the last answer costs one ``bytes`` comparison there),
appends one integer to an ``array('q')`` and writes one pre-encoded ``bytes`` object, calling
methods through their objects (connection state lives in ``__slots__``). Nothing else runs per
request: no timer per request (one sweeper checks timeouts every 100 ms), the cyclic garbage
collector is off during the run, numpy is imported only after the window. Latencies (of every
completed answer, good or not) go into HDR histograms after the window (:mod:`loadgen.hist`).

Open-loop pacing: a connection whose next intended time is still ahead waits in a heap. Each
arriving answer sends whatever has come due, and a 1 ms timer tick sends the rest, up to half a
tick early (measured from the actual send then). Sends stay within about a millisecond of their
intended times on a quiet machine; ``LATE_NS`` sits above that.

Errors are counted by kind, within the window only: ``connect`` (each failed attempt, retried
with a backoff), ``timeout`` (an answer later than ``timeout``: the connection is dropped and
reopened), ``reset`` (the peer closed with a request in flight), ``status``, ``body`` and
``parse`` (see :mod:`loadgen.http1`). Each reopened connection counts one reconnect.

With ``procs`` > 1, each worker is ``python -m loadgen.rawclient --worker``: it reads its part
of the run as a JSON line on stdin, answers ``ready``, gets the go time, and writes ``progress``
lines and one ``result`` line (histograms encoded) on stdout. The parent merges the results,
and stops the workers by PID on any failure or Ctrl-C. With ``procs`` == 1 the run happens in
the calling thread, in a fresh event loop, pinned while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import json
import math
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, cast

import uvloop

from loadgen.checks import KINDS, Kind
from loadgen.hist import Histogram, LatencySummary
from loadgen.http1 import (
    DEFAULT_CHECK_EVERY,
    ERROR_KINDS,
    ErrorKind,
    KnownAnswer,
    ParseError,
    ResponseParser,
    encode_request,
    host_header_value,
)

LATE_NS = 2_000_000
"""An open-loop send later than this after its intended time counts as late (twice the
resolution of libuv's timers: a send within it may be late by the timer alone)."""
TICK_S = 0.001
"""Period of the open-loop pacer's timer (libuv timers have millisecond resolution)."""
TICK_EARLY_NS = 600_000
"""The pacer's tick sends what is due before half a tick from now (nearer now than the next
tick), or less early when sends are closer together than that: while answers flow, each one
also sends whatever has come due, so the tick need not send early in bursts."""
PROGRESS_S = 0.2
"""How often a worker publishes its answer count."""
CONNECT_BACKOFF_S = (0.005, 0.5)
"""First and largest wait between failed connection attempts (doubling)."""
GRACE_S = 5.0
"""How long past the end of its window a run may take before it is torn down."""
START_TIMEOUT_S = 60.0
"""How long worker processes may take to start and report ready."""


@dataclass(frozen=True)
class LoadSpec:
    """What to run: target, connections, load model, duration and client placement."""

    host: str
    port: int
    path: str = "/hello/"
    connections: int = 64
    duration: float = 10.0
    warmup: float = 2.0
    rate: float | None = None
    """Requests per second for an open-loop run; None runs a closed loop."""
    procs: int = 1
    cpus: tuple[int, ...] = ()
    """CPUs for the client processes (one each, round robin); () leaves them unpinned."""
    timeout: float = 10.0
    kind: str | None = None
    """Body kind to check ("html" or "json") on one answer in ``check_every``; None: no check."""
    check_every: int = DEFAULT_CHECK_EVERY
    host_header: str | None = None
    keepalive: bool = True
    """False: one connection per request (``Connection: close``), for a server that cannot
    keep alive; every answer then ends with a reconnect, not with an error."""

    def __post_init__(self) -> None:
        problems = []
        if not self.host:
            problems.append("host is empty")
        if not 0 < self.port < 65536:
            problems.append(f"port {self.port} is out of range")
        if self.connections < 1:
            problems.append("connections must be at least 1")
        if not self.duration > 0:
            problems.append("duration must be positive")
        if not self.warmup >= 0:
            problems.append("warmup must not be negative")
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            problems.append("rate must be a positive number (or None for a closed loop)")
        if self.procs < 1:
            problems.append("procs must be at least 1")
        if self.procs > self.connections:
            problems.append(f"{self.procs} procs need at least as many connections")
        if not self.timeout > 0:
            problems.append("timeout must be positive")
        if self.kind is not None and self.kind not in KINDS:
            problems.append(f"kind must be one of {', '.join(KINDS)} or None")
        if self.check_every < 1:
            problems.append("check_every must be at least 1")
        if any(cpu < 0 for cpu in self.cpus):
            problems.append("cpus must not be negative")
        if problems:
            raise ValueError("invalid LoadSpec: " + "; ".join(problems))

    @property
    def client_cpus(self) -> int:
        """How many CPUs the client can use: one per process, at most the CPUs it is given."""
        if self.cpus:
            return min(self.procs, len(set(self.cpus)))
        return min(self.procs, os.cpu_count() or 1)


@dataclass(frozen=True)
class LoadResult:
    """What a run measured in its window (errors by kind, zeros included)."""

    requests: int
    """Good answers (2xx, and a right body where sampled) completed in the window."""
    duration_s: float
    rps: float
    errors: dict[str, int]
    reconnects: int
    late: int
    latency: LatencySummary
    """Every completed answer; for an open loop, corrected for coordinated omission."""
    latency_uncorrected: LatencySummary | None
    hist: str
    hist_uncorrected: str | None
    window_start: float
    window_end: float
    client_cpu_s: float
    client_cpu_pct: float
    procs: int
    connections: int
    rate: float | None
    window_start_monotonic: float = 0.0
    window_end_monotonic: float = 0.0
    client_cpus: int = 1
    answers: int = 0
    """Every answer completed in the window, good or bad."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency"] = self.latency.to_dict()
        data["latency_uncorrected"] = (
            None if self.latency_uncorrected is None else self.latency_uncorrected.to_dict()
        )
        return data

    @property
    def cpu_us_per_request(self) -> float:
        """Client CPU time per answer, in microseconds."""
        return self.client_cpu_s * 1e6 / self.answers if self.answers else 0.0


def run_load(spec: LoadSpec, progress: Callable[[int], None] | None = None) -> LoadResult:
    """Run ``spec`` and return what was measured; blocks for warm-up + duration (+ start-up).

    ``progress`` is called from this thread about once a second with the number of answers
    completed so far (warm-up included). Ctrl-C stops the worker processes and re-raises.
    """
    address = _resolve(spec.host, spec.port)
    host_header = spec.host_header or host_header_value(spec.host, spec.port)
    request = encode_request(spec.path, host_header, close=not spec.keepalive)
    parts = _split(spec, address, request)
    if spec.procs == 1:
        reports = [_run_in_process(parts[0], progress)]
    else:
        reports = _run_in_processes(parts, progress)
    return _merge(spec, reports)


# --------------------------------------------------------------------------------------------
# The work of one process


@dataclass(frozen=True)
class _Part:
    """What one worker runs: its share of the connections, and everything it needs to know."""

    index: int
    address: tuple[Any, ...]
    family: int
    request: bytes
    connections: int
    first_connection: int
    total_connections: int
    rate: float | None
    warmup: float
    duration: float
    timeout: float
    kind: Kind | None
    check_every: int
    cpus: tuple[int, ...]
    keepalive: bool = True
    go: float = 0.0
    """Monotonic time at which the warm-up starts (set when all workers are ready)."""


@dataclass
class _Report:
    """What one worker measured in its window (plain values: it crosses a process pipe)."""

    counts: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    late: int = 0
    hist: str = ""
    hist_uncorrected: str | None = None
    window_start: float = 0.0
    window_end: float = 0.0
    window_start_monotonic: float = 0.0
    window_end_monotonic: float = 0.0
    cpu_s: float = 0.0


class _Conn(asyncio.Protocol):
    """One connection slot: reused (same object) every time its connection is reopened."""

    # Slots: compact objects, fewer cache lines touched per answer with hundreds of connections.
    __slots__ = (
        "_request",
        "backoff",
        "core",
        "dropping",
        "lats",
        "number",
        "opened",
        "sent",
        "transport",
        "tx",
        "worker",
    )

    def __init__(self, worker: _Worker, number: int) -> None:
        self.worker = worker
        self.number = number
        self.core = ResponseParser(
            worker.kind, worker.check_every, shared=worker.known, close_every=worker.close_every
        )
        self.transport: asyncio.Transport | None = None
        self.tx: _Writer = _NOT_OPEN
        """Where requests are written: the open transport, else a writer that drops them."""
        self._request = worker.request
        self.sent = 0
        """Monotonic ns of the request in flight; 0 when none is."""
        self.lats: array[int] = worker.latencies
        self.opened = 0
        self.dropping = False
        self.backoff = CONNECT_BACKOFF_S[0]

    # -- connection management (cold paths) --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        if self.worker.stopping:
            transport.abort()
            return
        self.transport = transport
        self.tx = transport
        self.dropping = False
        self.backoff = CONNECT_BACKOFF_S[0]
        self.opened += 1
        if self.opened > 1:
            self.worker.reconnects += 1
        self.start()

    def start(self) -> None:
        """The connection is open: send the first request."""
        self.sent = time.monotonic_ns()
        self.tx.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.tx = _NOT_OPEN
        worker = self.worker
        if worker.stopping:
            return
        if self.sent and not self.dropping:
            worker.errors["reset"] += 1
        self.sent = 0
        self.core.reset()
        worker.open(self)

    def drop(self, kind: ErrorKind | None) -> None:
        """Give this connection up (counting ``kind``) and open a new one."""
        if kind is not None:
            self.worker.errors[kind] += 1
        self.dropping = True
        self.sent = 0
        transport = self.transport
        if transport is None:
            return
        if kind is None:
            transport.close()
        else:
            transport.abort()

    # -- the hot path ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # Methods are called through their objects (not bound methods kept in slots): fewer
        # objects touched per answer, and every lookup specialised by the interpreter.
        now = _now()
        core = self.core
        try:
            done = core.feed(data)
        except ParseError:
            self.drop("parse")
            return
        if done:
            self.lats.append(now - self.sent)
            if core.must_close:
                self.drop(None)
                return
            self.sent = now
            self.tx.write(self._request)

    def eof_received(self) -> bool | None:
        return None


class _OpenConn(_Conn):
    """A connection of an open-loop run: sends on its own schedule of intended times."""

    __slots__ = ("due", "lats_u", "origin", "waiting")

    def __init__(self, worker: _Worker, number: int, first_due: int) -> None:
        super().__init__(worker, number)
        self.due = first_due
        """Intended time (monotonic ns) of the next request."""
        self.origin = 0
        """Where the corrected latency of the request in flight starts."""
        self.lats_u: array[int] = worker.latencies_u
        self.waiting = False
        """In the worker's heap of connections held until their intended time."""

    def start(self) -> None:
        if self.waiting:
            return
        now = time.monotonic_ns()
        if self.due <= now:
            self.send(now, True)
        else:
            self.worker.wait(self)

    def send(self, now: int, busy: bool) -> None:
        """Send the next request now; ``busy``: it was held up by the previous answer."""
        due = self.due
        late = now - due
        if late > LATE_NS:
            self.worker.late += 1
            self.origin = due
        else:
            self.origin = due if busy and late > 0 else now
        self.sent = now
        self.due = due + self.worker.interval_ns
        self.tx.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = _now()
        core = self.core
        try:
            done = core.feed(data)
        except ParseError:
            self.drop("parse")
            return
        if done:
            self.lats.append(now - self.origin)
            self.lats_u.append(now - self.sent)
            self.sent = 0
            worker = self.worker
            if core.must_close:
                self.drop(None)
            elif self.due <= now:
                self.send(now, True)
            else:
                worker.wait(self)
            heap = worker.heap
            if heap and heap[0][0] <= now:
                worker.drain(now, 0)


_now = time.monotonic_ns


class _Writer(Protocol):
    def write(self, data: bytes) -> None: ...


class _NotOpen:
    """The writer of a connection that is not open: a send waits for the reconnect."""

    def write(self, data: bytes) -> None:
        pass


_NOT_OPEN = _NotOpen()


class _Worker:
    """One process's share of a run: its connections, timers, counters and window."""

    def __init__(self, part: _Part, loop: asyncio.AbstractEventLoop, thread_cpu: bool) -> None:
        self.part = part
        self.loop = loop
        self.thread_cpu = thread_cpu
        self.kind = part.kind
        self.check_every = part.check_every
        self.close_every = not part.keepalive
        self.request = part.request
        self.known = KnownAnswer()
        self.errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
        self.reconnects = 0
        self.late = 0
        self.latencies: array[int] = array("q")
        self.latencies_u: array[int] = array("q")
        self.stopping = False
        self.interrupted = False
        self.heap: list[tuple[int, int, _OpenConn]] = []
        self.interval_ns = 0
        self.tick_early_ns = TICK_EARLY_NS
        self.conns: list[_Conn] = []
        self.connecting: set[asyncio.Task[None]] = set()
        self.handles: dict[str, asyncio.TimerHandle] = {}
        """The pending timers by purpose (a repeating one replaces its own entry)."""
        self.pacer: asyncio.TimerHandle | None = None
        self.done: asyncio.Future[_Report] = loop.create_future()
        self.report = _Report()
        self.base: dict[str, int] = {}
        self.cpu0 = 0.0
        self.total_answers: Callable[[int], None] | None = None

    # -- timeline ----------------------------------------------------------------------------

    async def run(self, publish: Callable[[int], None] | None) -> _Report:
        part = self.part
        loop = self.loop
        self.total_answers = publish
        go_ns = int(part.go * 1e9)
        if part.rate is not None:
            spacing = 1e9 / part.rate
            self.interval_ns = max(1, round(spacing * part.total_connections))
            # The mean gap between two sends of this worker.
            gap = spacing * part.total_connections / part.connections
            self.tick_early_ns = min(TICK_EARLY_NS, round(gap))
            for i in range(part.connections):
                number = part.first_connection + i
                self.conns.append(_OpenConn(self, number, go_ns + round(spacing * number)))
        else:
            self.conns = [_Conn(self, part.first_connection + i) for i in range(part.connections)]
        start = part.go + part.warmup
        end = start + part.duration
        now = time.monotonic()
        self.handles["go"] = loop.call_later(max(0.0, part.go - now), self._go)
        self.handles["start"] = loop.call_later(max(0.0, start - now), self._begin_window)
        self.handles["end"] = loop.call_later(max(0.0, end - now), self._end_window)
        sweep = min(0.1, part.timeout / 4)
        self.handles["sweep"] = loop.call_later(sweep, self._sweep, sweep)
        if publish is not None:
            self.handles["publish"] = loop.call_later(PROGRESS_S, self._publish)
        try:
            return await asyncio.wait_for(
                asyncio.shield(self.done), timeout=end - time.monotonic() + GRACE_S
            )
        finally:
            self.stop()
            # Let the aborted transports and cancelled connects finish their callbacks.
            tasks = list(self.connecting)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for conn in self.conns:
                if conn.transport is not None:
                    conn.transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)

    def _go(self) -> None:
        for conn in self.conns:
            self.open(conn)

    def _counts(self) -> dict[str, int]:
        counts = dict(self.errors)
        ok = status = body = 0
        for conn in self.conns:
            core = conn.core
            ok += core.ok
            status += core.status_errors
            body += core.body_errors
        counts["ok"] = ok
        counts["status"] += status
        counts["body"] += body
        counts["reconnects"] = self.reconnects
        counts["late"] = self.late
        return counts

    def _begin_window(self) -> None:
        self.base = self._counts()
        # Swap in fresh arrays: what the warm-up recorded is dropped.
        self.latencies = array("q")
        self.latencies_u = array("q")
        for conn in self.conns:
            conn.lats = self.latencies
            if isinstance(conn, _OpenConn):
                conn.lats_u = self.latencies_u
        report = self.report
        report.window_start = time.time()
        report.window_start_monotonic = time.monotonic()
        self.cpu0 = _cpu_seconds(self.thread_cpu)

    def _end_window(self) -> None:
        report = self.report
        report.cpu_s = _cpu_seconds(self.thread_cpu) - self.cpu0
        report.window_end_monotonic = time.monotonic()
        report.window_end = time.time()
        if not report.window_start_monotonic:
            # No warm-up callback ran (a run with no warm-up that ended at once): say so.
            report.window_start = report.window_end
            report.window_start_monotonic = report.window_end_monotonic
        counts = self._counts()
        base = self.base or dict.fromkeys(counts, 0)
        delta = {key: counts[key] - base[key] for key in counts}
        report.reconnects = delta.pop("reconnects")
        report.late = delta.pop("late")
        report.counts = delta
        latencies = self.latencies
        latencies_u = self.latencies_u
        self.stop()
        hist = Histogram()
        hist.record_ns_bulk(latencies)
        report.hist = hist.encode()
        if self.part.rate is not None:
            hist_u = Histogram()
            hist_u.record_ns_bulk(latencies_u)
            report.hist_uncorrected = hist_u.encode()
        if not self.done.done():
            self.done.set_result(report)

    def interrupt(self) -> None:
        """SIGINT: end the run now (the caller raises KeyboardInterrupt)."""
        self.interrupted = True
        self.stop()
        if not self.done.done():
            self.done.set_result(self.report)

    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        for handle in self.handles.values():
            handle.cancel()
        if self.pacer is not None:
            self.pacer.cancel()
        for conn in self.conns:
            conn.sent = 0
            if conn.transport is not None:
                conn.transport.abort()
        self.latencies = array("q")
        self.latencies_u = array("q")

    def _publish(self) -> None:
        if self.stopping or self.total_answers is None:
            return
        self.total_answers(sum(conn.core.done for conn in self.conns))
        self.handles["publish"] = self.loop.call_later(PROGRESS_S, self._publish)

    # -- connections -------------------------------------------------------------------------

    def open(self, conn: _Conn) -> None:
        if self.stopping:
            return
        task = self.loop.create_task(self._connect(conn))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    async def _connect(self, conn: _Conn) -> None:
        part = self.part
        host, port = part.address[0], part.address[1]
        while not self.stopping:
            try:
                await asyncio.wait_for(
                    self.loop.create_connection(lambda: conn, host, port, family=part.family),
                    timeout=part.timeout,
                )
                return
            except (OSError, TimeoutError):
                self._count_connect_error()
            await asyncio.sleep(conn.backoff)
            conn.backoff = min(conn.backoff * 2, CONNECT_BACKOFF_S[1])

    def _count_connect_error(self) -> None:
        if not self.stopping:
            self.errors["connect"] += 1

    def _sweep(self, period: float) -> None:
        """Drop connections whose answer is overdue (a ``timeout`` each)."""
        if self.stopping:
            return
        limit = time.monotonic_ns() - int(self.part.timeout * 1e9)
        for conn in self.conns:
            if conn.sent and conn.sent < limit:
                conn.drop("timeout")
        self.handles["sweep"] = self.loop.call_later(period, self._sweep, period)

    # -- open-loop pacing --------------------------------------------------------------------

    def wait(self, conn: _OpenConn) -> None:
        """Hold ``conn`` until its next intended time."""
        conn.waiting = True
        heapq.heappush(self.heap, (conn.due, conn.number, conn))
        if self.pacer is None and not self.stopping:
            self.pacer = self.loop.call_later(TICK_S, self._tick)

    def drain(self, now: int, early: int) -> None:
        """Send every held request due before ``now + early``."""
        heap = self.heap
        limit = now + early
        while heap and heap[0][0] <= limit:
            conn = heapq.heappop(heap)[2]
            conn.waiting = False
            if conn.transport is not None:
                conn.send(now, False)

    def _tick(self) -> None:
        self.pacer = None
        if self.stopping:
            return
        self.drain(time.monotonic_ns(), self.tick_early_ns)
        if self.heap:
            self.pacer = self.loop.call_later(TICK_S, self._tick)


def _cpu_seconds(thread: bool) -> float:
    """User + system CPU seconds of this thread (in-process runs) or this process."""
    usage = resource.getrusage(resource.RUSAGE_THREAD if thread else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _work(part: _Part, thread_cpu: bool, publish: Callable[[int], None] | None) -> _Report:
    """Run one worker in a fresh uvloop event loop in this thread.

    Ctrl-C: uvloop may hand a KeyboardInterrupt raised inside a protocol callback to the
    transport's error handling instead of the caller, so while the loop runs (in the main thread,
    with Python's default SIGINT handling) SIGINT is taken by a loop signal handler that ends
    the run; KeyboardInterrupt is raised here, once the connections are closed.
    """
    loop = uvloop.new_event_loop()
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    worker = _Worker(part, loop, thread_cpu)
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
        raise KeyboardInterrupt
    return report


# --------------------------------------------------------------------------------------------
# One process or several


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
            )
        )
        first += count
    return parts


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
    old_affinity = os.sched_getaffinity(0) if part.cpus else None
    if part.cpus:
        os.sched_setaffinity(0, part.cpus)
    try:
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
    finally:
        if old_affinity is not None:
            os.sched_setaffinity(0, old_affinity)


def _child_main() -> int:
    """Entry point of a worker process (``python -m loadgen.rawclient --worker``).

    It reads its part (one JSON line) from stdin, pins itself, says ``ready``, waits for the go
    time (one more line), runs, and writes ``progress N`` lines then one ``result {...}`` line.
    Ctrl-C is the parent's business: the parent stops its workers by PID.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    part = _part_from_json(sys.stdin.readline())
    if part.cpus:
        os.sched_setaffinity(0, part.cpus)
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
        report = _work(replace(part, go=go), False, publish)
        out.write("result " + json.dumps(asdict(report)) + "\n")
        out.flush()
    except BrokenPipeError:
        return 1
    return 0


def _part_to_json(part: _Part) -> str:
    data = asdict(part)
    data["request"] = part.request.decode("latin-1")
    return json.dumps(data)


def _part_from_json(text: str) -> _Part:
    data = json.loads(text)
    data["request"] = data["request"].encode("latin-1")
    data["address"] = tuple(data["address"])
    data["cpus"] = tuple(data["cpus"])
    return _Part(**data)


def _run_in_processes(
    parts: Sequence[_Part], progress: Callable[[int], None] | None
) -> list[_Report]:
    """Run each part in a worker process of its own; stop them all, by PID, on any failure."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # numpy (used after the window) must not start a BLAS thread pool on unpinned CPUs.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    cmd = [sys.executable, "-m", "loadgen.rawclient", "--worker"]
    workers: list[subprocess.Popen[str]] = []
    try:
        for part in parts:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
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
        reports: dict[int, _Report] = {}
        answers = [0] * len(workers)
        next_progress = time.monotonic() + 1.0
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
            if time.monotonic() >= deadline and len(reports) < len(workers):
                raise RuntimeError("load workers did not finish in time")
            if time.monotonic() >= next_progress:
                next_progress += 1.0
                if progress is not None:
                    progress(sum(answers))
        for proc in workers:
            proc.wait(GRACE_S)
        return [reports[i] for i in range(len(workers))]
    finally:
        _stop_workers(workers)


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


def _stop_workers(workers: Sequence[subprocess.Popen[str]]) -> None:
    """Stop every worker still running, by PID: SIGTERM, then SIGKILL."""
    for proc in workers:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    for proc in workers:
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(2.0)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _merge(spec: LoadSpec, reports: Sequence[_Report]) -> LoadResult:
    counts: dict[str, int] = {}
    for report in reports:
        for key, value in report.counts.items():
            counts[key] = counts.get(key, 0) + value
    errors: dict[str, int] = {kind: counts.get(kind, 0) for kind in ERROR_KINDS}
    ok = counts.get("ok", 0)
    start_mono = min(r.window_start_monotonic for r in reports)
    end_mono = max(r.window_end_monotonic for r in reports)
    duration = max(end_mono - start_mono, 1e-9)
    hist = Histogram.merged(r.hist for r in reports if r.hist)
    latency = hist.summary()
    hist_u: Histogram | None = None
    if spec.rate is not None:
        hist_u = Histogram.merged(r.hist_uncorrected for r in reports if r.hist_uncorrected)
    cpu_s = sum(r.cpu_s for r in reports)
    client_cpus = spec.client_cpus
    return LoadResult(
        requests=ok,
        duration_s=duration,
        rps=ok / duration,
        errors=errors,
        reconnects=sum(r.reconnects for r in reports),
        late=sum(r.late for r in reports),
        latency=latency,
        latency_uncorrected=None if hist_u is None else hist_u.summary(),
        hist=hist.encode(),
        hist_uncorrected=None if hist_u is None else hist_u.encode(),
        window_start=min(r.window_start for r in reports),
        window_end=max(r.window_end for r in reports),
        client_cpu_s=cpu_s,
        client_cpu_pct=cpu_s / duration / client_cpus * 100.0,
        procs=spec.procs,
        connections=spec.connections,
        rate=spec.rate,
        window_start_monotonic=start_mono,
        window_end_monotonic=end_mono,
        client_cpus=client_cpus,
        answers=ok + errors["status"] + errors["body"],
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_child_main())
    sys.exit("usage: python -m loadgen.rawclient --worker (started by run_load)")
