"""A counting HTTP/2 fixture server for the tests (hyper-h2 on asyncio): run it as a script.

    python tests/h2_fixture.py MODE [--tls CERT KEY]

It listens on a free port of 127.0.0.1, prints ``PORT n``, serves until its stdin closes, then
prints ``ANSWERED n``: the answers it wrote. h2c is HTTP/2 with prior knowledge; with ``--tls``
it speaks TLS offering ALPN ``h2`` (``http/1.1`` only in mode ``http1``). Modes:

- ``ok``: every request gets 200 and the hello HTML page;
- ``status500``: 500; ``wrongbody``: 200 with a wrong body; ``reset``: RST_STREAM;
  ``silent``: no answer at all (timeouts);
- ``stall``: as ``ok``, but every answer is held 200 ms of every 2 s (from 0.5 s after the
  first request): the stall shows in an open loop's corrected latency;
- ``http1``: an HTTP/1.1-only server (answers ``400`` to the HTTP/2 preface, closes).

:func:`fixture` runs it from a test (stopping it by PID) and gives the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import h2.config
import h2.connection
import h2.events
import h2.exceptions

HELLO = b"<!DOCTYPE html><html><body><p>Hello world!</p></body></html>\n"
STALL_S = 0.2
STALL_EVERY_S = 2.0
STALL_FIRST_S = 0.5


class Count:
    """What the fixture said when it stopped."""

    answered = -1


@contextlib.contextmanager
def fixture(mode: str = "ok", tls: tuple[Path, Path] | None = None) -> Iterator[tuple[int, Count]]:
    """The fixture server in ``mode`` on a free port; its answer count once the block exits."""
    cmd = [sys.executable, __file__, mode]
    if tls is not None:
        cmd += ["--tls", str(tls[0]), str(tls[1])]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    count = Count()
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield int(line.split()[1]), count
        proc.stdin.close()
        last = proc.stdout.readline()
        if last.startswith("ANSWERED "):
            count.answered = int(last.split()[1])
    finally:
        if proc.stdin is not None and not proc.stdin.closed:
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


# -- the server (runs in its own process) ------------------------------------------------------


class _State:
    answered = 0
    first = 0.0
    held: ClassVar[list[tuple[_H2Server, int]]] = []


def _stalled() -> bool:
    if not _State.first:
        _State.first = time.monotonic()
    since = time.monotonic() - _State.first - STALL_FIRST_S
    return since >= 0 and since % STALL_EVERY_S < STALL_S


class _H2Server(asyncio.Protocol):
    def __init__(self, mode: str) -> None:
        self.mode = mode
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.answer(event.stream_id)
        self.flush()

    def answer(self, sid: int) -> None:
        mode = self.mode
        if mode == "silent":
            return
        if mode == "stall" and _stalled():
            _State.held.append((self, sid))
            return
        if mode == "reset":
            self.conn.reset_stream(sid)
            return
        status, body = b"200", HELLO
        if mode == "status500":
            status, body = b"500", b"oops"
        elif mode == "wrongbody":
            body = b"<html><body><p>Goodbye</p></body></html>"
        headers = [
            (b":status", status),
            (b"content-type", b"text/html"),
            (b"content-length", b"%d" % len(body)),
        ]
        self.conn.send_headers(sid, headers)
        self.conn.send_data(sid, body, end_stream=True)
        _State.answered += 1

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)


class _Http1Only(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        self.transport.close()


async def _release_stalled() -> None:
    while True:
        await asyncio.sleep(0.01)
        if _State.held and not _stalled():
            held, _State.held = _State.held, []
            for server, sid in held:
                if server.transport is not None:
                    server.answer(sid)
                    server.flush()


async def _main(mode: str, tls: list[str]) -> None:
    loop = asyncio.get_running_loop()
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[0], tls[1])
        context.set_alpn_protocols(["http/1.1"] if mode == "http1" else ["h2"])

    def factory() -> asyncio.Protocol:
        return _Http1Only() if mode == "http1" else _H2Server(mode)

    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=context, backlog=1024)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    release = asyncio.create_task(_release_stalled()) if mode == "stall" else None
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    print("ANSWERED", _State.answered, flush=True)
    if release is not None:
        release.cancel()
    server.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    tls_files = args[args.index("--tls") + 1 :][:2] if "--tls" in args else []
    asyncio.run(_main(args[0], tls_files))
