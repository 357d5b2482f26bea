"""The raw client's HTTP/2 loop: one worker's connections × streams on a uvloop event loop.

Theory of operation
-------------------
The same timeline, counters, histograms and Ctrl-C handling as the HTTP/1.1 hot loop
(:mod:`loadgen.rawclient.hotloop`, whose docstring says them; its constants and pieces are
imported), with one :class:`~loadgen.http2.H2Client` per connection doing the protocol. ``h2c``
speaks HTTP/2 with prior knowledge on cleartext TCP; ``h2`` over TLS (asyncio's ssl,
:func:`loadgen.tls.client_context`), where a server whose ALPN answer is not ``h2`` is a
``connect`` error (and the connection is retried with the connection backoff).

Closed loop: each of a connection's ``streams`` slots sends its next request as soon as its
answer is complete (the refill happens in the ``data_received`` that completed it, one write
for the control frames and the new requests); latency runs from the send to the completion.

Open loop (``rate``): each connection owns a schedule of intended send times (one every
``connections / rate`` s, staggered as in the hot loop). A request goes out at its intended
time if a stream slot is free, else as soon as one frees; corrected latency from the intended
time, uncorrected from the actual send. As in the hot loop, a send held up only by our own
timer (within ``LATE_NS``) is charged from the actual send; one held up by full slots or a
reconnect from its intended time, and every send later than ``LATE_NS`` counts ``late``.

Errors, per request: ``status``/``body`` (as HTTP/1.1), ``reset`` (a RST_STREAM, a stream
refused by GOAWAY, or a stream in flight when the server closed the connection), ``timeout``
(each stream older than ``timeout``: its connection is dropped and reopened, and the other
streams it held are not counted), ``parse`` (the server broke HTTP/2: the connection is
dropped), ``connect`` (each failed attempt). A GOAWAY closes the connection once its streams
are done, and a new one is opened (a reconnect, not an error).
"""

from __future__ import annotations

import asyncio
import heapq
import ssl
import time
from array import array
from collections.abc import Callable
from typing import cast

from loadgen.hist import Histogram
from loadgen.http1 import ERROR_KINDS, ErrorKind
from loadgen.http2 import H2Client
from loadgen.http2_wire import H2ParseError
from loadgen.rawclient.hotloop import (
    _NOT_OPEN,
    CONNECT_BACKOFF_S,
    GRACE_S,
    LATE_NS,
    PROGRESS_S,
    TICK_EARLY_NS,
    TICK_S,
    _cpu_seconds,
    _Part,
    _Report,
    _Writer,
)
from loadgen.scenario_checks import sampled_check
from loadgen.tls import client_context

_now = time.monotonic_ns


class _H2Conn(asyncio.Protocol):
    """One connection slot (closed loop): reused every time its connection is reopened."""

    __slots__ = (
        "backoff",
        "core",
        "dropping",
        "number",
        "opened",
        "refused",
        "transport",
        "tx",
        "worker",
    )

    def __init__(self, worker: _H2Worker, number: int) -> None:
        part = worker.part
        self.worker = worker
        self.number = number
        self.core = H2Client(
            part.path,
            part.authority,
            scheme="https" if part.protocol == "h2" else "http",
            method=part.method,
            headers=part.headers,
            body=part.body,
            streams=part.streams,
            kind=part.kind,
            check=worker.check,
            check_every=part.check_every,
        )
        self.core.lats = worker.latencies
        self.transport: asyncio.Transport | None = None
        self.tx: _Writer = _NOT_OPEN
        self.opened = 0
        self.dropping = False
        self.refused = False
        """The server refused HTTP/2 (ALPN): the next attempt waits the backoff."""
        self.backoff = CONNECT_BACKOFF_S[0]

    # -- connection management (cold paths) --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        worker = self.worker
        if worker.stopping:
            transport.abort()
            return
        if worker.tls:
            tls = transport.get_extra_info("ssl_object")
            alpn = tls.selected_alpn_protocol() if tls is not None else None
            if alpn != "h2":
                worker.count("connect")
                worker.alpn = alpn
                self.dropping = self.refused = True
                transport.abort()
                return
        self.transport = transport
        self.tx = transport
        self.dropping = False
        self.backoff = CONNECT_BACKOFF_S[0]
        self.opened += 1
        if self.opened > 1:
            worker.reconnects += 1
        self.start()

    def start(self) -> None:
        """The connection is open: the preface and the first requests."""
        now = _now()
        core = self.core
        data = core.start()
        self.tx.write(data + b"".join(core.request(now, now) for _ in range(core.free())))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.tx = _NOT_OPEN
        worker = self.worker
        if worker.stopping:
            return
        lost = len(self.core.streams)
        if lost and not self.dropping:
            worker.errors["reset"] += lost
        self.core.streams.clear()
        if self.refused:
            self.refused = False
            worker.open(self, self.backoff)
            self.backoff = min(self.backoff * 2, CONNECT_BACKOFF_S[1])
        else:
            worker.open(self, 0.0)

    def drop(self, kind: ErrorKind | None, count: int = 1) -> None:
        """Give this connection up (counting ``count`` of ``kind``) and open a new one."""
        if kind is not None:
            self.worker.count(kind, count)
        self.dropping = True
        self.core.streams.clear()
        transport = self.transport
        if transport is None:
            return
        if kind is None:
            transport.close()
        else:
            transport.abort()

    def eof_received(self) -> bool | None:
        return None

    # -- the hot path ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        now = _now()
        core = self.core
        try:
            core.feed(data, now)
        except H2ParseError:
            self.drop("parse")
            return
        free = core.free()
        out = core.out
        if free > 0:
            if free == 1:
                requests = core.request(now, now)
            else:
                requests = b"".join([core.request(now, now) for _ in range(free)])
            if out:
                requests = bytes(out) + requests
                out.clear()
            self.tx.write(requests)
        elif out:
            self.tx.write(bytes(out))
            out.clear()
        if core.closing and not core.streams:
            self.drop(None)  # GOAWAY (or stream ids used up): a new connection


class _OpenH2Conn(_H2Conn):
    """A connection of an open-loop run: sends on its own schedule of intended times."""

    __slots__ = ("blocked", "due", "waiting")

    def __init__(self, worker: _H2Worker, number: int, first_due: int) -> None:
        super().__init__(worker, number)
        self.core.lats_u = worker.latencies_u
        self.due = first_due
        """Intended time (monotonic ns) of the next request."""
        self.waiting = False
        """In the worker's heap of connections held until their intended time."""
        self.blocked = True
        """The next request is held up by something else than our timer (full stream slots, a
        connection not open): charged from its intended time once it goes."""

    def start(self) -> None:
        self.tx.write(self.core.start())
        self.blocked = True
        self.pump(_now(), 0)

    def pump(self, now: int, early: int) -> None:
        """Send every request due before ``now + early`` that a free stream slot can take."""
        if self.transport is None:
            return
        core = self.core
        worker = self.worker
        interval = worker.interval_ns
        limit = now + early
        batch = []
        held = self.blocked
        full = False
        while self.due <= limit:
            if core.free() <= 0:
                full = True
                break
            due = self.due
            late = now - due
            if late > LATE_NS:
                worker.late += 1
                origin = due
            else:
                origin = due if held and late > 0 else now
            batch.append(core.request(origin, now))
            self.due = due + interval
        self.blocked = full
        out = core.out
        if out:
            batch.insert(0, bytes(out))
            out.clear()
        if batch:
            self.tx.write(b"".join(batch))
        if self.due > limit and not self.waiting and self.transport is not None:
            worker.wait(self)

    def data_received(self, data: bytes) -> None:
        now = _now()
        core = self.core
        try:
            core.feed(data, now)
        except H2ParseError:
            self.drop("parse")
            return
        self.pump(now, 0)
        if core.closing and not core.streams:
            self.drop(None)
            return
        worker = self.worker
        heap = worker.heap
        if heap and heap[0][0] <= now:
            worker.drain(now, 0)

    def connection_lost(self, exc: Exception | None) -> None:
        self.blocked = True
        super().connection_lost(exc)


class _H2Worker:
    """One process's share of an HTTP/2 run: its connections, timers, counters and window."""

    def __init__(self, part: _Part, loop: asyncio.AbstractEventLoop, thread_cpu: bool) -> None:
        self.part = part
        self.loop = loop
        self.thread_cpu = thread_cpu
        self.check: Callable[[bytes], bool] | None = None
        if part.scenario != "hello":
            self.check = sampled_check(part.scenario, part.queries)
        self.tls = part.protocol == "h2"
        self.ssl: ssl.SSLContext | None = client_context(["h2"]) if self.tls else None
        self.alpn: str | None = None
        """What a server that refused HTTP/2 answered to our ALPN offer (the last one)."""
        self.errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
        self.reconnects = 0
        self.late = 0
        self.latencies: array[int] = array("q")
        self.latencies_u: array[int] = array("q")
        self.stopping = False
        self.interrupted = False
        self.heap: list[tuple[int, int, _OpenH2Conn]] = []
        self.interval_ns = 0
        self.tick_early_ns = TICK_EARLY_NS
        self.conns: list[_H2Conn] = []
        self.connecting: set[asyncio.Task[None]] = set()
        self.handles: dict[str, asyncio.TimerHandle] = {}
        self.pacer: asyncio.TimerHandle | None = None
        self.done: asyncio.Future[_Report] = loop.create_future()
        self.report = _Report()
        self.base: dict[str, int] = {}
        self.cpu0 = 0.0
        self.total_answers: Callable[[int], None] | None = None

    def count(self, kind: str, n: int = 1) -> None:
        if not self.stopping:
            self.errors[kind] += n

    # -- timeline (as hotloop._Worker's) -----------------------------------------------------

    async def run(self, publish: Callable[[int], None] | None) -> _Report:
        part = self.part
        loop = self.loop
        self.total_answers = publish
        go_ns = int(part.go * 1e9)
        if part.rate is not None:
            spacing = 1e9 / part.rate
            self.interval_ns = max(1, round(spacing * part.total_connections))
            gap = spacing * part.total_connections / part.connections
            self.tick_early_ns = min(TICK_EARLY_NS, round(gap))
            for i in range(part.connections):
                number = part.first_connection + i
                self.conns.append(_OpenH2Conn(self, number, go_ns + round(spacing * number)))
        else:
            self.conns = [_H2Conn(self, part.first_connection + i) for i in range(part.connections)]
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
            self.open(conn, 0.0)

    def _counts(self) -> dict[str, int]:
        counts = dict(self.errors)
        ok = status = body = resets = 0
        for conn in self.conns:
            core = conn.core
            ok += core.ok
            status += core.status_errors
            body += core.body_errors
            resets += core.resets
        counts["ok"] = ok
        counts["status"] += status
        counts["body"] += body
        counts["reset"] += resets
        counts["reconnects"] = self.reconnects
        counts["late"] = self.late
        return counts

    def _begin_window(self) -> None:
        self.base = self._counts()
        self.latencies = array("q")
        self.latencies_u = array("q")
        for conn in self.conns:
            conn.core.lats = self.latencies
            if isinstance(conn, _OpenH2Conn):
                conn.core.lats_u = self.latencies_u
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
        """SIGINT: end the run now (as :meth:`loadgen.rawclient.hotloop._Worker.interrupt`)."""
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
        sink: list[int] = []
        for conn in self.conns:
            conn.core.lats = sink
            conn.core.lats_u = None
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

    def open(self, conn: _H2Conn, delay: float) -> None:
        if self.stopping:
            return
        task = self.loop.create_task(self._connect(conn, delay))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)

    async def _connect(self, conn: _H2Conn, delay: float) -> None:
        part = self.part
        host, port = part.address[0], part.address[1]
        if delay:
            await asyncio.sleep(delay)
        server_hostname = (part.server_name or host) if self.tls else None
        while not self.stopping:
            try:
                await asyncio.wait_for(
                    self.loop.create_connection(
                        lambda: conn,
                        host,
                        port,
                        family=part.family,
                        ssl=self.ssl,
                        server_hostname=server_hostname,
                    ),
                    timeout=part.timeout,
                )
                return
            except (OSError, TimeoutError):
                self.count("connect")
            await asyncio.sleep(conn.backoff)
            conn.backoff = min(conn.backoff * 2, CONNECT_BACKOFF_S[1])

    def _sweep(self, period: float) -> None:
        """Drop connections holding overdue streams (a ``timeout`` each)."""
        if self.stopping:
            return
        limit = _now() - int(self.part.timeout * 1e9)
        for conn in self.conns:
            late = conn.core.overdue(limit)
            if late:
                conn.drop("timeout", late)
        self.handles["sweep"] = self.loop.call_later(period, self._sweep, period)

    # -- open-loop pacing --------------------------------------------------------------------

    def wait(self, conn: _OpenH2Conn) -> None:
        """Hold ``conn`` until its next intended time."""
        conn.waiting = True
        heapq.heappush(self.heap, (conn.due, conn.number, conn))
        if self.pacer is None and not self.stopping:
            self.pacer = self.loop.call_later(TICK_S, self._tick)

    def drain(self, now: int, early: int) -> None:
        """Send what every held connection has due before ``now + early``."""
        heap = self.heap
        limit = now + early
        while heap and heap[0][0] <= limit:
            conn = heapq.heappop(heap)[2]
            conn.waiting = False
            if conn.transport is not None:
                conn.pump(now, early)

    def _tick(self) -> None:
        self.pacer = None
        if self.stopping:
            return
        self.drain(_now(), self.tick_early_ns)
        if self.heap:
            self.pacer = self.loop.call_later(TICK_S, self._tick)
