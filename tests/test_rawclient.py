"""The raw client against real small servers on 127.0.0.1 (started here, on free ports).

Each server is a small asyncio program (:data:`SERVER`) in a process of its own, so that the
client under test has the CPU and the event loop to itself. Every load here is short (a second
or two) and bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from commands import load as loadcmd
from loadgen.hist import Histogram
from loadgen.procs import free_port
from loadgen.rawclient import LoadResult, LoadSpec, run_load

pytestmark = pytest.mark.e2e  # every test sends load, nearly all to a server started here

# --------------------------------------------------------------------------------------------
# The servers: a small asyncio program, run with ``python -c`` so it starts in a blink

STALL_S = 1.0

SERVER = r"""
import asyncio, sys, time

MODE, ARG, STALL_S = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
HELLO = b'{"message":"Hello world!"}'
def answer(status, body, extra=b""):
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )


ANSWERS = {
    "ok": answer(b"200 OK", HELLO),
    "close": answer(b"200 OK", HELLO, b"Connection: close\r\n"),
    "wrongbody": answer(b"200 OK", b'{"message":"Goodbye"}'),
    "status500": answer(b"500 Internal Server Error", b"oops"),
    "garbage": b"HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\n",
    "stall": answer(b"200 OK", HELLO),
    "silent": b"",
}
ANSWER = ANSWERS[MODE]
state = {"first": 0.0, "stalled": False}


class Server(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.buffer = self.buffer[end + 4 :]
            self.respond()

    def respond(self):
        if MODE == "stall":
            # Once, ARG seconds into the load: block the whole server for STALL_S.
            now = time.monotonic()
            if not state["first"]:
                state["first"] = now
            elif not state["stalled"] and now - state["first"] >= ARG:
                state["stalled"] = True
                time.sleep(STALL_S)
        if ANSWER:
            self.transport.write(ANSWER)
        if MODE in ("close", "garbage"):
            self.transport.close()


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, "127.0.0.1", 0, backlog=1024)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    server.close()


try:
    import uvloop
except ImportError:
    asyncio.run(main())
else:
    uvloop.run(main())
"""


@contextlib.contextmanager
def server(mode: str = "ok", arg: float = 0.0) -> Iterator[int]:
    """A server of the given mode on a free port of 127.0.0.1, stopped (by PID) afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, mode, str(arg), str(STALL_S)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield int(line.split()[1])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def spec(port: int, **kw: object) -> LoadSpec:
    base: dict[str, object] = {"connections": 8, "duration": 1.0, "warmup": 0.2}
    base.update(kw)
    return LoadSpec("127.0.0.1", port, **base)  # type: ignore[arg-type]


def good_only(r: LoadResult) -> None:
    assert r.errors == dict.fromkeys(r.errors, 0), r.errors
    assert set(r.errors) == {"connect", "timeout", "reset", "status", "body", "parse"}


# --------------------------------------------------------------------------------------------
# The tests


def test_closed_loop_counts_and_window() -> None:
    with server("ok") as port:
        before = time.time()
        r = run_load(spec(port, kind="json", check_every=10))
    good_only(r)
    assert r.requests > 500
    assert r.answers == r.requests == r.latency.count
    assert r.duration_s == pytest.approx(1.0, abs=0.05)
    assert r.rps == pytest.approx(r.requests / r.duration_s)
    assert before < r.window_start < r.window_end
    assert r.window_end - r.window_start == pytest.approx(r.duration_s, abs=0.02)
    assert r.window_end_monotonic - r.window_start_monotonic == pytest.approx(r.duration_s)
    assert 0 < r.latency.p50 <= r.latency.p99 <= r.latency.max
    assert r.latency_uncorrected is None and r.hist_uncorrected is None and r.late == 0
    assert Histogram.decode(r.hist).count == r.requests
    assert r.client_cpu_s > 0 and 0 < r.client_cpu_pct <= 110
    json.dumps(r.to_dict())


def test_open_loop_keeps_its_rate() -> None:
    with server("ok") as port:
        r = run_load(spec(port, rate=1000.0, connections=10, duration=1.5, warmup=0.3))
    good_only(r)
    assert r.requests / r.duration_s == pytest.approx(1000, rel=0.03)
    assert r.latency_uncorrected is not None and r.hist_uncorrected is not None
    assert r.latency_uncorrected.count == r.latency.count == r.requests
    assert r.late < r.requests / 2  # most sends on time, even on a busy machine
    assert r.latency.p50 < 5


def test_server_closing_every_connection_is_counted_as_reconnects() -> None:
    with server("close") as port:
        r = run_load(spec(port, connections=4, warmup=0.1))
    good_only(r)
    assert r.requests > 50
    assert r.reconnects >= r.requests - 4  # one new connection per answer


def test_wrong_body_is_a_body_error_on_sampled_answers() -> None:
    with server("wrongbody") as port:
        r = run_load(spec(port, connections=4, kind="json", check_every=10))
    # Identical answers are classified alike (see http1, "known answers"): every one is wrong.
    assert r.answers > 50
    assert r.errors["body"] == r.answers
    assert r.requests == 0
    assert r.errors["status"] == r.errors["parse"] == 0


def test_status_500_is_a_status_error() -> None:
    with server("status500") as port:
        r = run_load(spec(port, connections=4))
    assert r.requests == 0
    assert r.errors["status"] == r.answers > 0


def test_garbage_is_a_parse_error() -> None:
    with server("garbage") as port:
        r = run_load(spec(port, connections=2, duration=0.5, warmup=0.0))
    assert r.requests == 0
    assert r.errors["parse"] > 0


def test_nothing_listening_counts_connect_errors_and_does_not_hang() -> None:
    port = free_port()
    started = time.monotonic()
    r = run_load(spec(port, connections=4, duration=0.5, warmup=0.0))
    assert time.monotonic() - started < 3
    assert r.requests == 0
    assert r.errors["connect"] >= 4
    assert r.latency.count == 0


def test_timeouts_are_counted() -> None:
    with server("silent") as port:
        started = time.monotonic()
        r = run_load(spec(port, connections=3, duration=1.0, warmup=0.0, timeout=0.3))
    assert time.monotonic() - started < 4
    assert r.requests == 0
    assert r.errors["timeout"] >= 3
    assert r.reconnects >= 3


def test_a_stall_shows_in_the_corrected_open_loop_latency_only() -> None:
    # The server stops for STALL_S seconds 0.5 s into the load.
    with server("stall", 0.5) as port:
        closed = run_load(spec(port, connections=8, duration=2.0, warmup=0.0))
    with server("stall", 0.5) as port:
        opened = run_load(spec(port, connections=8, duration=2.0, warmup=0.0, rate=2000.0))
    stall_ms = STALL_S * 1000
    # Closed loop: only the 8 requests in flight waited; the percentiles hide the stall.
    assert closed.latency.max >= 0.9 * stall_ms
    assert closed.latency.p99 < 0.1 * stall_ms
    # Open loop: every request meant for the stalled second is charged from its intended time.
    u = opened.latency_uncorrected
    assert u is not None
    assert opened.latency.max == pytest.approx(stall_ms, rel=0.15)
    assert opened.latency.p99 >= 0.7 * stall_ms
    assert opened.latency.p90 >= 0.2 * stall_ms
    assert u.p99 < 0.1 * stall_ms  # measured from the actual send, it does not show
    assert opened.late > 1000  # about a second's worth of sends could not go out on time


def test_two_processes_merge_their_results() -> None:
    cpus = tuple(sorted(os.sched_getaffinity(0)))[:2]
    with server("ok") as port:
        r = run_load(spec(port, procs=2, connections=6, cpus=cpus, kind="json"))
    good_only(r)
    assert r.procs == 2 and r.connections == 6
    assert r.requests > 200
    assert Histogram.decode(r.hist).count == r.latency.count == r.requests
    assert r.client_cpus == min(2, len(cpus))
    assert r.client_cpu_s > 0


def test_two_processes_open_loop_rate() -> None:
    with server("ok") as port:
        r = run_load(spec(port, procs=2, connections=6, rate=600.0, duration=1.5))
    good_only(r)
    assert r.requests / r.duration_s == pytest.approx(600, rel=0.05)


@pytest.mark.parametrize("procs", [1, 2])
def test_ctrl_c_stops_the_run(procs: int) -> None:
    with server("ok") as port:
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt):
                run_load(spec(port, procs=procs, connections=4, duration=30.0, warmup=0.0))
        finally:
            timer.cancel()
        assert time.monotonic() - started < 5
    # The autouse fixture then checks that no worker process is left behind, and warnings
    # being errors, an unclosed transport would fail the test too.


@pytest.mark.parametrize("procs", [1, 2])
def test_ctrl_c_keeps_the_results_so_far(procs: int) -> None:
    from loadgen.rawclient import LoadInterrupted

    with server("ok") as port:
        timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(LoadInterrupted) as info:
                run_load(spec(port, procs=procs, connections=4, duration=30.0, warmup=0.3))
        finally:
            timer.cancel()
    r = info.value.result
    assert r is not None  # the window had begun: what it measured is kept
    good_only(r)
    assert r.requests > 100 and r.latency.count == r.requests
    assert r.procs == procs
    assert 0.3 < r.duration_s < 3.0  # from the window's start to the Ctrl-C
    assert info.value.elapsed_s < 5.0


def test_ctrl_c_in_the_warm_up_has_nothing_measured() -> None:
    from loadgen.rawclient import LoadInterrupted

    with server("ok") as port:
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(LoadInterrupted) as info:
                run_load(spec(port, connections=2, duration=5.0, warmup=20.0))
        finally:
            timer.cancel()
    assert info.value.result is None


@pytest.mark.parametrize("as_json", [False, True])
def test_load_command_prints_the_results_so_far_on_ctrl_c(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    with server("ok") as port:
        url = f"http://127.0.0.1:{port}/hello/"
        timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            args = [url, "-c", "2", "-d", "30", "--warmup", "0.3"]
            code = loadcmd.main(args + (["--json"] if as_json else []))
        finally:
            timer.cancel()
    assert code == 130
    captured = capsys.readouterr()
    assert "interrupted after" in captured.err and "results so far" in captured.err
    if as_json:
        out = json.loads(captured.out)
        assert out["interrupted"] is True and out["requests"] > 100
    else:
        assert "Requests/sec:" in captured.out and "good requests" in captured.out


def test_progress_is_reported_about_once_a_second() -> None:
    seen: list[int] = []
    with server("ok") as port:
        run_load(spec(port, connections=4, duration=1.8, warmup=0.2), progress=seen.append)
    assert 1 <= len(seen) <= 3
    assert seen == sorted(seen) and seen[-1] > 0


def test_load_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    with server("ok") as port:
        url = f"http://127.0.0.1:{port}/hello/"
        code = loadcmd.main([url, "-c", "4", "-d", "0.5", "--warmup", "0", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)  # exactly one JSON object
    assert out["requests"] > 0 and out["rps"] > 0
    assert set(out["latency_ms"]) >= {"p50", "p90", "p99", "p999", "max"}
    assert out["errors"] == dict.fromkeys(
        ("connect", "timeout", "reset", "status", "body", "parse"), 0
    )
    assert "client_cpu_pct" in out


def test_load_command_text(capsys: pytest.CaptureFixture[str]) -> None:
    with server("ok") as port:
        url = f"http://127.0.0.1:{port}/hello/"
        code = loadcmd.main([url, "-c", "2", "-d", "0.5", "--warmup", "0", "--rate", "200"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Requests/sec:" in out and "uncorrected" in out
