"""The ws-echo loop's connections without sockets: a fake transport, bytes in, frames out.

The event loop here is a plain asyncio one that never runs (timers are only scheduled), so
these are unit tests; the real thing runs against real servers in tests/test_ws_load.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from loadgen.rawclient import wsloop
from loadgen.rawclient.hotloop import _Part
from loadgen.rawclient.wsloop import (
    MAX_IN_FLIGHT,
    VARIANTS,
    _WsConn,
    _WsOpenConn,
    _WsWorker,
    messages,
)
from loadgen.websocket import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, accept_for, encode_frame, mask

PART = _Part(
    index=0,
    address=("127.0.0.1", 1),
    family=int(socket.AF_INET),
    request=b"",
    connections=1,
    first_connection=0,
    total_connections=1,
    rate=None,
    warmup=0.0,
    duration=1.0,
    timeout=1.0,
    kind=None,
    check_every=1,
    cpus=(),
    scenario="ws-echo",
    path="/ws-echo/",
    authority="127.0.0.1:1",
    message_size=10,
)


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = ""

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return bool(self.closed)

    def close(self) -> None:
        self.closed = "close"

    def abort(self) -> None:
        self.closed = "abort"


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def opened(conn: _WsConn) -> FakeTransport:
    """Connect ``conn`` to a fake transport and answer its handshake rightly."""
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    request = transport.written.pop()
    assert request.startswith(b"GET /ws-echo/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n")
    assert conn.ws.key.encode() in request
    conn.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_for(conn.ws.key).encode() + b"\r\n\r\n"
    )
    return transport


def sent_payloads(transport: FakeTransport) -> list[bytes]:
    """The payloads of the client's (masked, short) frames written."""
    out = []
    for frame in transport.written:
        assert frame[1] & 0x80
        out.append(mask(frame[6:], frame[2:6]))
    return out


def test_closed_loop_sends_waits_and_checks_each_echo(loop: asyncio.AbstractEventLoop) -> None:
    worker = _WsWorker(PART, loop, False)
    conn = _WsConn(worker, 0, 0)
    worker.ws_conns = [conn]
    transport = opened(conn)
    payloads = messages(10, False)
    assert sent_payloads(transport) == payloads[:1]  # the first message, after the 101
    echo = worker.echoes
    conn.data_received(echo[0])  # the fast path: one whole expected echo
    conn.data_received(echo[1][:3])  # split: through the core
    conn.data_received(echo[1][3:])
    conn.data_received(echo[3])  # the wrong message (2 was sent)
    assert conn.echoed == 3 and conn.bad == 1
    assert len(conn.lats) == 3
    assert sent_payloads(transport) == payloads[:4]
    counts = worker._counts()
    assert counts["ok"] == 2 and counts["body"] == 1
    # A ping is answered with a pong of the same payload, between echoes.
    transport.written.clear()
    conn.data_received(encode_frame(OP_PING, b"hi", None) + echo[3])
    pong = transport.written[0]
    assert pong[0] == 0x80 | OP_PONG and mask(pong[6:], pong[2:6]) == b"hi"
    assert conn.echoed == 4 and conn.bad == 1
    # The server closing with a message in flight: answered, a reset, the connection closed.
    transport.written.clear()
    conn.data_received(encode_frame(OP_CLOSE, b"\x03\xe9", None))
    assert transport.written[0][0] == 0x80 | OP_CLOSE
    assert worker.errors["reset"] == 1 and transport.closed == "close"


def test_closed_loop_protocol_and_handshake_errors(loop: asyncio.AbstractEventLoop) -> None:
    worker = _WsWorker(PART, loop, False)
    conn = _WsConn(worker, 0, 0)
    transport = opened(conn)
    conn.data_received(b"\x81\x85abcdhello")  # a masked frame from the server
    assert worker.errors["parse"] == 1 and transport.closed == "abort"
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert worker.errors["status"] == 1 and transport.closed == "abort"
    assert worker.reconnects == 1


def test_open_loop_has_several_messages_in_flight(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [10_000_000_000]
    monkeypatch.setattr(wsloop, "_now", lambda: clock[0])
    part = replace(PART, rate=1000.0, message_binary=True)
    worker = _WsWorker(part, loop, False)
    worker.interval_ns = 1_000_000
    # Due 3.5 ms ago: once upgraded, the four sends due until now go out at once (a
    # catch-up), the two more than LATE_NS behind counted late.
    conn = _WsOpenConn(worker, 0, clock[0] - 3_500_000)
    worker.ws_conns = [conn]
    transport = opened(conn)
    assert len(conn.flight) == len(transport.written) == 4
    assert worker.late == 2
    worker.drain(clock[0] + 3_000_000, 0)  # three more intended times come due
    assert len(conn.flight) == 7
    clock[0] += 3_200_000  # the next send is due in 0.3 ms
    echo = worker.echoes
    conn.data_received(echo[0])
    conn.data_received(echo[1] + echo[2])  # two echoes in one read
    assert conn.echoed == 3 and conn.bad == 0
    assert len(conn.flight) == 4 and len(transport.written) == 7
    # Corrected from the intended time when late (3.5 and 2.5 ms), else from the send.
    assert list(conn.lats) == [6_700_000, 5_700_000, 3_200_000]
    assert list(conn.lats_u) == [3_200_000] * 3
    conn.data_received(encode_frame(OP_TEXT, messages(10, True)[3], None))  # text, not binary
    assert conn.bad == 1


def test_the_end_of_a_run_closes_each_websocket(loop: asyncio.AbstractEventLoop) -> None:
    worker = _WsWorker(PART, loop, False)
    conn = _WsConn(worker, 0, 0)
    worker.ws_conns = [conn]
    transport = opened(conn)
    transport.written.clear()
    worker.stop()  # a message is in flight: its echo first
    assert not transport.written and not transport.closed
    conn.data_received(worker.echoes[0])  # not counted, and then the close frame
    assert len(transport.written) == 1 and transport.written[0][0] == 0x80 | OP_CLOSE
    conn.data_received(encode_frame(OP_CLOSE, b"\x03\xe8", None))
    assert len(transport.written) == 1 and conn.echoed == 0
    assert transport.closed == "close"


def test_the_end_of_an_open_loop_run_waits_for_the_echoes_owed(
    loop: asyncio.AbstractEventLoop,
) -> None:
    worker = _WsWorker(replace(PART, rate=1000.0), loop, False)
    worker.interval_ns = 1_000_000
    conn = _WsOpenConn(worker, 0, time.monotonic_ns() - 2_500_000)
    worker.ws_conns = [conn]
    transport = opened(conn)
    owed = len(conn.flight)
    assert owed >= 3
    transport.written.clear()
    worker.stop()
    assert not transport.written
    conn.data_received(worker.echoes[0])
    conn.data_received(b"".join(worker.echoes[1:owed]))
    assert len(transport.written) == 1 and transport.written[0][0] == 0x80 | OP_CLOSE
    assert conn.echoed == 0


def test_messages_of_a_run_differ() -> None:
    for size, binary in ((64, False), (1, True), (16 * 1024 * 1024, False)):
        payloads = messages(size, binary)
        assert all(len(p) == size for p in payloads)
        assert len(set(payloads)) == len(payloads) <= VARIANTS
    assert all(p.isascii() and p.decode().isprintable() for p in messages(200, False))


def test_open_loop_holds_sends_over_the_cap(loop: asyncio.AbstractEventLoop) -> None:
    worker = _WsWorker(replace(PART, rate=1000.0), loop, False)
    worker.interval_ns = 1_000_000
    # Due MAX_IN_FLIGHT + 10 intervals ago: the catch-up stops at the cap.
    conn = _WsOpenConn(worker, 0, time.monotonic_ns() - (MAX_IN_FLIGHT + 10) * 1_000_000)
    worker.ws_conns = [conn]
    transport = opened(conn)
    assert len(conn.flight) == len(transport.written) == MAX_IN_FLIGHT
    assert not conn.waiting  # held, out of the pacer's heap
    conn.data_received(worker.echoes[0])  # an echo frees a place: the held send goes out
    assert len(conn.flight) == MAX_IN_FLIGHT and len(transport.written) == MAX_IN_FLIGHT + 1
    assert worker.late >= MAX_IN_FLIGHT


def test_the_pacer_keeps_one_timer(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sends made by the pacer's tick re-enter its heap; the tick alone sets the next tick
    # (a timer per send would multiply the ticks, and burn the client's CPU).
    worker = _WsWorker(replace(PART, rate=1000.0, connections=2), loop, False)
    worker.interval_ns = 1_000_000
    conns = [_WsOpenConn(worker, i, time.monotonic_ns() + 500_000) for i in range(2)]
    worker.ws_conns = list(conns)
    transports = [opened(conn) for conn in conns]
    timers: list[object] = []
    real = loop.call_later

    def counting(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        timers.append(callback)
        return real(delay, callback, *args)

    monkeypatch.setattr(loop, "call_later", counting)
    for _ in range(5):
        time.sleep(0.0015)
        worker._tick()
    assert len(timers) == 5
    assert all(len(t.written) >= 5 for t in transports)  # each tick sent what was due
