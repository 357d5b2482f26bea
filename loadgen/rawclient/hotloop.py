"""The raw client's hot loop: one worker's connections on a uvloop event loop, in one thread.

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

This module is the work of one process (a :class:`_Worker` runs a :class:`_Part` and returns a
:class:`_Report`); :mod:`loadgen.rawclient.fanout` splits a run into parts and runs them in
this process or in worker processes. The code here is tuned: every microsecond per answer
costs about 5 % of requests/s, so change it only with ``fwbench calibrate`` before and after.
"""

from __future__ import annotations

import asyncio
import heapq
import resource
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from loadgen.checks import Kind
from loadgen.hist import Histogram
from loadgen.http1 import (
    ERROR_KINDS,
    ErrorKind,
    KnownAnswer,
    ParseError,
    ResponseParser,
)
from loadgen.scenario_checks import sampled_check

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
    scenario: str = "hello"  # another: its sampled body check instead of ``kind``'s
    queries: int = 1  # the rows of a queries answer
    protocol: str = "http1"  # h2c / h2: loadgen.rawclient.h2loop runs the part
    streams: int = 1  # concurrent streams per connection (HTTP/2)
    path: str = "/"  # HTTP/2 and WebSocket loops build their own requests from these
    authority: str = ""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    message_size: int = 64  # ws-echo (loadgen.rawclient.wsloop)
    message_binary: bool = False
    server_name: str | None = None  # h2: TLS server name
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


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C ended a run: ``reports`` hold what the workers' windows measured until then.

    A report whose window had not begun (the run was still warming up) has
    ``window_start_monotonic == 0``. A KeyboardInterrupt, so every caller that stops on Ctrl-C
    still does; :func:`loadgen.rawclient.run_load` turns it into ``LoadInterrupted``.
    """

    def __init__(self, reports: list[_Report]) -> None:
        super().__init__()
        self.reports = reports


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
            worker.kind,
            worker.check_every,
            shared=worker.known,
            close_every=worker.close_every,
            check=worker.check,
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
        self.check: Callable[[bytes], bool] | None = None
        if part.scenario != "hello":
            self.check = sampled_check(part.scenario, part.queries)
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
        """SIGINT: end the run now (the caller raises :class:`_Interrupted`).

        A window under way ends here, as at its planned end, so that what it measured so far
        is reported; before the window (in the warm-up) the report stays empty.
        """
        self.interrupted = True
        if self.report.window_start_monotonic and not self.stopping:
            self._end_window()
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
