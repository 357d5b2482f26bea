"""The raw client's WebSocket loop (scenario ``ws-echo``): echoed messages, timed like requests.

Theory of operation
-------------------
The timeline, counters, histograms, pacing, reconnects and Ctrl-C handling are the HTTP/1.1 hot
loop's (:mod:`loadgen.rawclient.hotloop`, read its docstring first): :class:`_WsWorker` is its
worker with WebSocket connections (:class:`_WsConn`, closed loop; :class:`_WsOpenConn`, open
loop), which speak through the sans-IO core :mod:`loadgen.websocket`.

A connection opens with the upgrade handshake (``GET part.path``, ``Host: part.authority``, a
random key per connection). Until its 101 answer arrives and checks out, no message goes out;
the handshake counts as the request in flight (a ``timeout`` when it takes longer than
``timeout``, a ``reset`` when the server hangs up). A wrong answer is a ``status`` error (not
101) or a ``parse`` error (wrong accept key, ...), and the connection is opened again.

Closed loop: each connection sends one message of ``message_size`` bytes (text or binary),
waits for its echo, and sends the next; the latency runs from the send to the echo's last byte.
Open loop (``rate``): each connection owns a schedule of intended send times, as in the hot
loop, but a message goes out at its intended time whether or not earlier echoes are in: a
WebSocket carries several messages in flight, and their echoes come back in order. Corrected
latency runs from the intended time (from the send when the pacer's timer was within
``LATE_NS``; sends later than that count as ``late``), uncorrected from the actual send. As the
schedule never waits for an echo, a server that stalls shows in both. After a reconnect, the
sends whose time passed while the connection was down go out at once, charged from their
intended times.

One "request" is one echoed message. Every echo is checked, not one in ``check_every``: it must
be the very message sent, in order, as text or binary alike (else a ``body`` error). This costs
one ``bytes`` comparison: each run encodes ``VARIANTS`` different messages once, both as the
client's masked frame and as the unmasked frame an echo is expected to be; a connection sends
them in turn, and when a read holds exactly the expected echo frame (the common case), it is
counted without parsing. Anything else (a frame split over reads, several echoes in one read,
fragmented echoes, pings, a close) goes through the core, and each message's payload is compared
with the one sent. A protocol violation is a ``parse`` error; the server's close frame is
answered and counted as a ``reset`` (with a message or handshake in flight); an echo that
comes with nothing in flight is a ``body`` error; each drops the connection and opens another.

Masks: the client's frames are masked, each of the ``VARIANTS`` frames with its own random
key, so the keys cycle instead of being fresh per frame as RFC 6455 asks. The RFC wants
unpredictable keys so that attacker-chosen payloads cannot be made to look like something else
to proxies on the way; here the payloads are the client's own, sent to a server on this machine,
and a server's unmasking costs the same whatever the key. Encoding each frame anew would cost
a random key and a pass over the payload per message.

At the end of the window, no new message goes out; each connection still open waits for the
echoes in flight (not counted), then sends a close frame (1000); the worker waits up to
:data:`CLOSE_WAIT_S` for the servers' close frames before it aborts what is left.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import time
from array import array
from collections import deque
from collections.abc import Callable
from typing import cast

from loadgen.http1 import ErrorKind
from loadgen.rawclient.hotloop import (
    _NOT_OPEN,
    CONNECT_BACKOFF_S,
    GRACE_S,
    LATE_NS,
    PROGRESS_S,
    TICK_EARLY_NS,
    TICK_S,
    _OpenConn,
    _Part,
    _Report,
    _Worker,
)
from loadgen.websocket import OP_BINARY, OP_TEXT, ClientCore, ProtocolError, encode_frame

VARIANTS = 16
"""How many different messages a run sends in turn (fewer for large messages, see
:data:`VARIANT_BYTES`): an echo of the wrong message, or out of order, is caught."""
VARIANT_BYTES = 8 * 1024 * 1024
"""At most this many bytes of messages are kept encoded per worker (twice: sent and echoed)."""
CLOSE_WAIT_S = 0.3
"""How long a worker waits for the servers' close frames at the end of a run."""
MAX_IN_FLIGHT = 1000
"""Open loop: at most this many messages in flight per connection. A message due when the
connection has this many goes out when the next echo arrives (late, charged from its intended
time): so a catch-up after a reconnect, or a server that fell far behind, is no flood."""
_TEXT = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
_now = time.monotonic_ns


def messages(size: int, binary: bool) -> list[bytes]:
    """The payloads a run sends: ``size`` bytes each, different from one another (when
    ``size`` and their count allow), printable ASCII for text, every byte value for binary."""
    count = max(1, min(VARIANTS, VARIANT_BYTES // (size + 14)))
    alphabet = bytes(range(256)) if binary else _TEXT
    pattern = alphabet * (size // len(alphabet) + 2)
    return [pattern[i : i + size] for i in range(count)]


class _WsConn(_OpenConn):
    """One WebSocket connection slot of a closed-loop run (reused across reconnects).

    It is a hot-loop open-loop connection so that the worker's pacing and window code apply as
    they are; ``core`` (the HTTP/1.1 parser) is not used."""

    __slots__ = (
        "bad",
        "echoed",
        "echoes",
        "expect",
        "flight",
        "frames",
        "n_in",
        "n_out",
        "owed",
        "payloads",
        "text",
        "ws",
    )

    def __init__(self, worker: _WsWorker, number: int, first_due: int) -> None:
        super().__init__(worker, number, first_due)
        self.ws = ClientCore()
        self.frames = worker.frames
        self.echoes = worker.echoes
        self.payloads = worker.payloads
        self.text = not worker.part.message_binary
        self.expect = b""
        """The frame the next echo is expected to be (the fast path's one comparison)."""
        self.n_out = 0
        """Messages sent on this connection."""
        self.n_in = 0
        """Echoes received on this connection."""
        self.echoed = 0
        """Echoes received in the whole run, right or wrong."""
        self.bad = 0
        """Echoes that were not the message sent."""
        self.flight: deque[tuple[int, int]] = deque()
        """Open loop: (origin of the corrected latency, send time) of each message in flight."""
        self.owed = 0
        """At the end of the run: the echoes still to come before the close frame is sent."""

    # -- connection management (cold paths) --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        worker = self.worker
        if worker.stopping:
            transport.abort()
            return
        self.transport = transport
        self.tx = _NOT_OPEN  # no message before the 101
        self.dropping = False
        self.backoff = CONNECT_BACKOFF_S[0]
        self.opened += 1
        if self.opened > 1:
            worker.reconnects += 1
        self.ws = ClientCore()
        self.n_out = self.n_in = 0
        self.expect = self.echoes[0]
        self.flight.clear()
        self.sent = _now()  # the handshake is in flight
        part = worker.part
        transport.write(self.ws.request(part.path, part.authority))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.tx = _NOT_OPEN
        self.flight.clear()
        worker = self.worker
        if worker.stopping:
            return
        if self.sent and not self.dropping:
            worker.errors["reset"] += 1
        self.sent = 0
        worker.open(self)

    def drop(self, kind: ErrorKind | None) -> None:
        """Give this connection up (counting ``kind``; None closes it gracefully, after the
        close reply) and open a new one."""
        self.tx = _NOT_OPEN
        self.flight.clear()
        super().drop(kind)

    def upgraded(self, now: int) -> None:
        """The 101 answer checked out: start sending."""
        assert self.transport is not None
        self.tx = self.transport
        self.sent = now
        self.n_out = 1
        self.tx.write(self.frames[0])

    # -- the hot path ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        now = _now()
        if data == self.expect and not self.ws.partial and self.sent:
            self.echoed += 1
            self.lats.append(now - self.sent)
            i = self.n_out
            k = i % len(self.frames)
            self.n_out = i + 1
            self.n_in = i
            self.expect = self.echoes[k]
            self.sent = now
            self.tx.write(self.frames[k])
            return
        self.slow(data, now)

    def slow(self, data: bytes, now: int) -> None:
        """Everything but one whole expected echo: through the WebSocket core."""
        ws = self.ws
        was_open = ws.upgraded
        try:
            done = ws.feed(data)
        except ProtocolError as exc:
            self.drop(exc.kind)
            return
        transport = self.transport
        if ws.outgoing:
            if transport is not None:
                transport.write(bytes(ws.outgoing))
            ws.outgoing.clear()
        if self.worker.stopping:  # the run is over: the echoes owed, then the close
            if ws.messages:
                self.owed -= len(ws.messages)
                ws.messages.clear()
            if transport is not None:
                if ws.closed:
                    transport.close()
                elif self.owed <= 0 and not ws.close_sent:
                    transport.write(ws.close())
            return
        if not was_open and ws.upgraded:
            self.upgraded(now)
        if done:
            for message in ws.messages:
                if not self.sent:  # nothing in flight: not an echo
                    self.drop("body")
                    return
                k = self.n_in % len(self.payloads)
                self.echo(now, message.payload == self.payloads[k] and message.text == self.text)
            ws.messages.clear()
        if ws.closed:  # the server ended the WebSocket
            if self.sent:
                self.worker.errors["reset"] += 1
            self.drop(None)

    def echo(self, now: int, right: bool) -> None:
        """One echo arrived (``right``: the message sent): count it, send the next."""
        self.echoed += 1
        if not right:
            self.bad += 1
        self.lats.append(now - self.sent)
        i = self.n_out
        k = i % len(self.frames)
        self.n_out = i + 1
        self.n_in = i
        self.expect = self.echoes[k]
        self.sent = now
        self.tx.write(self.frames[k])


class _WsOpenConn(_WsConn):
    """A WebSocket connection of an open-loop run: sends on its schedule, echoes in flight."""

    __slots__ = ()

    def upgraded(self, now: int) -> None:
        assert self.transport is not None
        self.tx = self.transport
        self.sent = 0
        worker = self.worker
        if not self.waiting:
            worker.wait(self)
        if self.due <= now:
            worker.drain(now, 0)

    def send(self, now: int, busy: bool) -> None:
        """Send the next message (called by the worker's pacer at its intended time)."""
        if self.tx is _NOT_OPEN:  # closed or in its handshake: ``upgraded`` resumes
            return
        if len(self.flight) >= MAX_IN_FLIGHT:  # held: the next echo sends it
            return
        due = self.due
        late = now - due
        worker = self.worker
        if late > LATE_NS:
            worker.late += 1
            origin = due
        else:
            origin = due if busy and late > 0 else now
        self.flight.append((origin, now))
        if not self.sent:
            self.sent = now  # the oldest message in flight (the timeout sweep reads it)
        i = self.n_out
        self.n_out = i + 1
        self.due = due + worker.interval_ns
        self.tx.write(self.frames[i % len(self.frames)])
        worker.wait(self)

    def data_received(self, data: bytes) -> None:
        now = _now()
        flight = self.flight
        if data == self.expect and not self.ws.partial and flight:
            origin, sent = flight.popleft()
            self.echoed += 1
            self.lats.append(now - origin)
            self.lats_u.append(now - sent)
            self.sent = flight[0][1] if flight else 0
            i = self.n_in + 1
            self.n_in = i
            self.expect = self.echoes[i % len(self.echoes)]
            if not self.waiting:  # a send was held (MAX_IN_FLIGHT)
                self.send(now, True)
        else:
            self.slow(data, now)
        heap = self.worker.heap
        if heap and heap[0][0] <= now:
            self.worker.drain(now, 0)

    def echo(self, now: int, right: bool) -> None:
        self.echoed += 1
        if not right:
            self.bad += 1
        flight = self.flight
        origin, sent = flight.popleft()
        self.lats.append(now - origin)
        self.lats_u.append(now - sent)
        self.sent = flight[0][1] if flight else 0
        i = self.n_in + 1
        self.n_in = i
        self.expect = self.echoes[i % len(self.echoes)]
        if not self.waiting:
            self.send(now, True)


class _WsWorker(_Worker):
    """The hot loop's worker, with WebSocket connections and a close handshake at the end."""

    def __init__(self, part: _Part, loop: asyncio.AbstractEventLoop, thread_cpu: bool) -> None:
        super().__init__(part, loop, thread_cpu)
        opcode = OP_BINARY if part.message_binary else OP_TEXT
        self.payloads = messages(part.message_size, part.message_binary)
        self.frames = [encode_frame(opcode, p, os.urandom(4)) for p in self.payloads]
        self.echoes = [encode_frame(opcode, p, None) for p in self.payloads]
        self.ws_conns: list[_WsConn] = []
        self.ticking = False
        """The pacer's tick is draining the heap (and will set the next tick itself)."""

    async def run(self, publish: Callable[[int], None] | None) -> _Report:
        part = self.part
        loop = self.loop
        self.total_answers = publish
        go_ns = int(part.go * 1e9)
        conns: list[_WsConn] = []
        if part.rate is not None:
            spacing = 1e9 / part.rate
            self.interval_ns = max(1, round(spacing * part.total_connections))
            gap = spacing * part.total_connections / part.connections
            self.tick_early_ns = min(TICK_EARLY_NS, round(gap))
            for i in range(part.connections):
                number = part.first_connection + i
                conns.append(_WsOpenConn(self, number, go_ns + round(spacing * number)))
        else:
            conns = [_WsConn(self, part.first_connection + i, 0) for i in range(part.connections)]
        self.ws_conns = conns
        self.conns = [*conns]
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
            # The close handshakes begun by stop(): wait a little for the servers' answers.
            limit = time.monotonic() + CLOSE_WAIT_S
            while time.monotonic() < limit and any(c.transport is not None for c in conns):
                await asyncio.sleep(0.01)
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.abort()
            for _ in range(3):
                await asyncio.sleep(0)

    def wait(self, conn: _OpenConn) -> None:
        """Hold ``conn`` until its next intended time. Unlike the hot loop's, this is called by
        the sends of the pacer's own tick: the tick then sets the next tick, not this."""
        conn.waiting = True
        heapq.heappush(self.heap, (conn.due, conn.number, conn))
        if self.pacer is None and not self.ticking and not self.stopping:
            self.pacer = self.loop.call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        self.ticking = True
        try:
            super()._tick()
        finally:
            self.ticking = False

    def _counts(self) -> dict[str, int]:
        counts = dict(self.errors)
        echoed = bad = 0
        for conn in self.ws_conns:
            echoed += conn.echoed
            bad += conn.bad
        counts["ok"] = echoed - bad
        counts["body"] += bad
        counts["reconnects"] = self.reconnects
        counts["late"] = self.late
        return counts

    def _publish(self) -> None:
        if self.stopping or self.total_answers is None:
            return
        self.total_answers(sum(conn.echoed for conn in self.ws_conns))
        self.handles["publish"] = self.loop.call_later(PROGRESS_S, self._publish)

    def stop(self) -> None:
        """End the run: timers off, no more messages, and a close frame on every open
        WebSocket once the echoes in flight are in (a server is not made to echo into a closing
        connection); the run's ``finally`` waits briefly for the servers' close frames, then
        aborts what is left."""
        if self.stopping:
            return
        self.stopping = True
        for handle in self.handles.values():
            handle.cancel()
        if self.pacer is not None:
            self.pacer.cancel()
        for conn in self.ws_conns:
            in_flight = len(conn.flight) if self.part.rate is not None else bool(conn.sent)
            conn.sent = 0
            conn.flight.clear()
            conn.tx = _NOT_OPEN
            transport = conn.transport
            if transport is None:
                continue
            ws = conn.ws
            if ws.upgraded and not ws.closed and not transport.is_closing():
                conn.owed = in_flight
                if not in_flight:
                    transport.write(ws.close())
            else:
                transport.abort()
        self.latencies = array("q")
        self.latencies_u = array("q")
