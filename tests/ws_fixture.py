"""WebSocket echo servers for the tests, each in a process of its own on a free port.

``ws_server(mode)`` starts ``python tests/ws_fixture.py MODE`` and yields a :class:`Fixture`
(its port; once the ``with`` block is left, how many messages it echoed). Modes:

Served by the ``websockets`` library (an implementation independent of ours):

- ``echo``: echoes every message (text as text, binary as binary) and counts it;
- ``stall``: ``echo``, but the whole server stops for :data:`STALL_S` of every
  :data:`STALL_EVERY_S` (its event loop blocked), the first stop :data:`STALL_EVERY_S` after start;
- ``pings``: ``echo``, and pings every client every 50 ms (a client that does not pong is cut);
- ``closing``: ``echo``, but closes each WebSocket (code 1001) after :data:`CLOSE_AFTER` echoes;
- ``silent``: completes the handshake, then never reads nor echoes;
- ``wrongecho``: echoes every message with its first byte changed;
- ``badaccept``: answers the handshake with a wrong ``Sec-WebSocket-Accept``;
- ``notfound``: answers the handshake with ``404 Not Found``.

A small hand-written server (stdlib only, it echoes whole messages) for what the library will
not do wrong:

- ``raw``: a right echo server;
- ``noclose``: never answers a close frame (nor closes the TCP connection);
- ``nopong``: never answers a ping;
- ``nofrag``: echoes each fragment as a message of its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

STALL_S = 0.2
STALL_EVERY_S = 2.0
CLOSE_AFTER = 20
LIBRARY_MODES = (
    "echo",
    "stall",
    "pings",
    "closing",
    "silent",
    "wrongecho",
    "badaccept",
    "notfound",
)
RAW_MODES = ("raw", "noclose", "nopong", "nofrag")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Fixture:
    port: int
    echoed: int | None = None
    """Messages the server echoed, known once it stopped (the ``with`` block was left)."""
    closed_ok: int | None = None
    """``echo`` modes: WebSockets the client closed with a close handshake (code 1000)."""


@contextlib.contextmanager
def ws_server(mode: str = "echo") -> Iterator[Fixture]:
    """A WebSocket server of ``mode`` on a free port of 127.0.0.1, stopped when left."""
    assert mode in LIBRARY_MODES + RAW_MODES, mode
    proc = subprocess.Popen(
        [sys.executable, __file__, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        fixture = Fixture(int(line.split()[1]))
        yield fixture
    finally:
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        out = proc.stdout.read()
        proc.stdout.close()
    for line in out.splitlines():
        if line.startswith("ECHOED "):
            fixture.echoed = int(line.split()[1])
        if line.startswith("CLOSED_OK "):
            fixture.closed_ok = int(line.split()[1])


# --- the server process -----------------------------------------------------------------------

COUNT = [0]
CLOSED_OK = [0]


def _stall(loop: asyncio.AbstractEventLoop) -> None:
    time.sleep(STALL_S)  # the whole server stops: no read, no echo
    loop.call_later(STALL_EVERY_S - STALL_S, _stall, loop)


async def _library(mode: str) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.http11 import Request, Response

    async def handler(ws: ServerConnection) -> None:
        if mode == "silent":
            await ws.wait_closed()
            return
        echoed = 0
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if mode == "wrongecho":
                    message = (b"#" if isinstance(message, bytes) else "#") + message[1:]
                await ws.send(message)
                COUNT[0] += 1
                echoed += 1
                if mode == "closing" and echoed >= CLOSE_AFTER:
                    await ws.close(1001)
                    return
        if ws.close_code == 1000:
            CLOSED_OK[0] += 1

    def process_request(ws: ServerConnection, request: Request) -> Response | None:
        if mode == "notfound":
            return ws.respond(404, "no WebSocket here\n")
        return None

    def process_response(ws: ServerConnection, request: Request, response: Response) -> None:
        if mode == "badaccept":
            del response.headers["Sec-WebSocket-Accept"]
            response.headers["Sec-WebSocket-Accept"] = base64.b64encode(b"x" * 20).decode()

    loop = asyncio.get_running_loop()
    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        max_size=None,
        close_timeout=1.0,
        ping_interval=0.05 if mode == "pings" else None,
        ping_timeout=1.0 if mode == "pings" else None,
        process_request=process_request,
        process_response=process_response,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print("PORT", port, flush=True)
        if mode == "stall":
            loop.call_later(STALL_EVERY_S, _stall, loop)
        await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload) ^ int.from_bytes(keys)).to_bytes(n) if n else b""


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2)
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8)
    return head + payload


class _Raw(asyncio.Protocol):
    """A minimal WebSocket echo server, by hand (misbehaving on purpose in some modes)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.buf = b""
        self.open = False
        self.parts: list[bytes] = []
        self.op = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            key = b""
            for line in self.buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            self.buf = self.buf[end + 4 :]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.open = True
        while len(self.buf) >= 6:
            first, second = self.buf[0], self.buf[1]
            n, pos = second & 0x7F, 2
            if n == 126:
                n, pos = int.from_bytes(self.buf[2:4]), 4
            elif n == 127:
                n, pos = int.from_bytes(self.buf[2:10]), 10
            if len(self.buf) < pos + 4 + n:
                return
            payload = _mask(self.buf[pos + 4 : pos + 4 + n], self.buf[pos : pos + 4])
            self.buf = self.buf[pos + 4 + n :]
            self.frame(first & 0x80, first & 0x0F, payload)

    def frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == 0x8:
            if self.mode != "noclose":
                self.transport.write(_frame(0x8, payload[:2]))
                self.transport.close()
        elif opcode == 0x9:
            if self.mode != "nopong":
                self.transport.write(_frame(0xA, payload))
        elif opcode in (0x0, 0x1, 0x2):
            if opcode:
                self.op = opcode
            if self.mode == "nofrag":
                self.transport.write(_frame(self.op, payload))
                COUNT[0] += 1
                return
            self.parts.append(payload)
            if fin:
                self.transport.write(_frame(self.op, b"".join(self.parts)))
                self.parts = []
                COUNT[0] += 1


async def _raw(mode: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Raw(mode), "127.0.0.1", 0)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main() -> None:
    mode = sys.argv[1]
    asyncio.run(_library(mode) if mode in LIBRARY_MODES else _raw(mode))
    print("ECHOED", COUNT[0], flush=True)
    print("CLOSED_OK", CLOSED_OK[0], flush=True)


if __name__ == "__main__":
    main()
