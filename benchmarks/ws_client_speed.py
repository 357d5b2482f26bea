"""How fast the raw client's ws-echo load runs: ``python -m benchmarks.ws_client_speed``.

The question: is the client the limit of a WebSocket measurement? This starts an echo server
pinned to one CPU and runs, pinned to another, the raw client's closed-loop ``ws-echo`` load,
then a plain client written with the ``websockets`` library (each connection: ``send``, then
``recv``), with the same connections and window. It prints messages/s, p50/p99 and the client's
CPU per message for each: a client near 100 % CPU is the limit; one well below it is not.

The servers (``--server``):

- ``cached`` (default): a fast echo server for this measurement only. It parses frames rightly,
  and remembers the echo of each whole frame it has unmasked: a read equal to a remembered frame
  is answered with one dictionary lookup (the raw client sends a few frames again and again).
  So the server does little work per message, and the client's ceiling shows.
- ``websockets``: the ``websockets`` library's echo server, as the test fixture runs it.

This is a benchmark, not a test: it reports, it does not judge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import cast

import uvloop

from loadgen.procs import child_env, free_port, spawn, stop_processes
from loadgen.rawclient import LoadSpec, run_load
from loadgen.websocket import OP_CLOSE, OP_PING, OP_PONG, accept_for, encode_frame, mask

CACHE_SIZE = 1024


class _CachedEcho(asyncio.Protocol):
    cache: dict[bytes, bytes] = {}  # noqa: RUF012 - shared by every connection on purpose

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it
        self.buf = b""
        self.open = False

    def data_received(self, data: bytes) -> None:
        known = self.cache.get(data)
        if known is not None and not self.buf:
            self.transport.write(known)
            return
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            key = ""
            for line in self.buf[:end].decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-key":
                    key = value.strip()
            self.buf = self.buf[end + 4 :]
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade"
                b"\r\nSec-WebSocket-Accept: " + accept_for(key).encode() + b"\r\n\r\n"
            )
            self.open = True
            data = self.buf
        out = []
        while len(self.buf) >= 6:
            buf = self.buf
            n, pos = buf[1] & 0x7F, 2
            if n == 126:
                n, pos = int.from_bytes(buf[2:4]), 4
            elif n == 127:
                n, pos = int.from_bytes(buf[2:10]), 10
            if len(buf) < pos + 4 + n:
                break
            frame = buf[: pos + 4 + n]
            self.buf = buf[pos + 4 + n :]
            opcode = buf[0] & 0x0F
            payload = mask(frame[pos + 4 :], frame[pos : pos + 4])
            if opcode == OP_CLOSE:
                self.transport.write(encode_frame(OP_CLOSE, payload[:2], None))
                self.transport.close()
                return
            reply = encode_frame(OP_PONG if opcode == OP_PING else opcode, payload, None)
            out.append(reply)
            if frame == data and len(self.cache) < CACHE_SIZE and opcode != OP_PING:
                self.cache[data] = reply
        if out:
            self.transport.write(b"".join(out))


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_CachedEcho, "127.0.0.1", port, backlog=1024)
    print("READY", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


async def _serve_websockets(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in ws:
                await ws.send(message)

    async with serve(echo, "127.0.0.1", port, compression=None, ping_interval=None):
        print("READY", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def _library_client(port: int, connections: int, size: int, seconds: float) -> int:
    """Closed loop with the ``websockets`` client: messages echoed in ``seconds``."""
    from websockets.asyncio.client import connect

    message = "x" * size
    counts = [0] * connections
    stop = time.monotonic() + seconds

    async def one(i: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            while time.monotonic() < stop:
                await ws.send(message)
                await ws.recv()
                counts[i] += 1

    await asyncio.gather(*(one(i) for i in range(connections)))
    return sum(counts)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ws_client_speed", description=__doc__)
    p.add_argument("--server", choices=("cached", "websockets"), default="cached")
    p.add_argument("-c", "--connections", type=int, default=16)
    p.add_argument("-s", "--size", type=int, default=64, help="message bytes (64)")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="window, s (5)")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        serve = _serve if args.server == "cached" else _serve_websockets
        uvloop.run(serve(args.serve))
        return 0
    port = free_port()
    argv_server = [sys.executable, "-m", "benchmarks.ws_client_speed", "--server", args.server]
    proc = spawn(
        [*argv_server, "--serve", str(port)],
        env=child_env(suite=True),
        cpus=(args.server_cpu,),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            print("the echo server did not start", file=sys.stderr)
            return 1
        spec = LoadSpec(
            "127.0.0.1",
            port,
            path="/",
            scenario="ws-echo",
            connections=args.connections,
            duration=args.duration,
            warmup=1.0,
            message_size=args.size,
            cpus=(args.client_cpu,),
        )
        r = run_load(spec)
        print(
            f"raw client  ({args.server} server, {args.connections} connections, "
            f"{args.size} B text): {r.rps:,.0f} messages/s, p50 {r.latency.p50:.3f} ms, "
            f"p99 {r.latency.p99:.3f} ms, client CPU {r.client_cpu_pct:.0f} %, "
            f"{r.client_cpu_s / max(1, r.requests) * 1e6:.1f} us CPU/message, "
            f"errors {sum(r.errors.values())}"
        )
        os.sched_setaffinity(0, (args.client_cpu,))
        cpu0, t0 = _cpu(), time.monotonic()
        n = uvloop.run(_library_client(port, args.connections, args.size, args.duration))
        cpu, elapsed = _cpu() - cpu0, time.monotonic() - t0
        print(
            f"websockets client ({args.server} server, same load): {n / elapsed:,.0f} "
            f"messages/s, client CPU {100 * cpu / elapsed:.0f} %, "
            f"{cpu / max(1, n) * 1e6:.1f} us CPU/message"
        )
    finally:
        stop_processes([proc])
    return 0


if __name__ == "__main__":
    sys.exit(main())
