"""The raw client's ``ws-echo`` load and the WebSocket verifier, against real echo servers.

The servers (:mod:`tests.ws_fixture`) run in processes of their own on free ports of 127.0.0.1:
the ``websockets`` library's server (an implementation independent of ours), and a small
hand-written one for the ways a server can be wrong that the library will not be. Every load is
short (a second or three) and bounded.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from loadgen.hist import Histogram
from loadgen.procs import free_port
from loadgen.rawclient import LoadResult, LoadSpec, run_load
from loadgen.verify_ws import ws_echo_problem
from tests.ws_fixture import CLOSE_AFTER, STALL_S, ws_server

pytestmark = pytest.mark.e2e  # every test talks to a server started here


def spec(port: int, **kw: object) -> LoadSpec:
    base: dict[str, object] = {
        "path": "/ws-echo/",
        "scenario": "ws-echo",
        "connections": 8,
        "duration": 1.0,
        "warmup": 0.2,
    }
    base.update(kw)
    return LoadSpec("127.0.0.1", port, **base)  # type: ignore[arg-type]


def good_only(r: LoadResult) -> None:
    assert r.errors == dict.fromkeys(r.errors, 0), r.errors
    assert set(r.errors) == {"connect", "timeout", "reset", "status", "body", "parse"}


# --- counts, latency, procs -------------------------------------------------------------------


def test_closed_loop_counts_agree_with_the_servers_count() -> None:
    with ws_server("echo") as srv:
        r = run_load(spec(srv.port, warmup=0.0))
    good_only(r)
    assert r.requests > 200
    assert r.answers == r.requests == r.latency.count
    assert r.latency_uncorrected is None and r.late == 0
    assert 0 < r.latency.p50 <= r.latency.p99 <= r.latency.max
    # No warm-up: the server echoed what the window counted, plus at most one in flight per
    # connection when the window ended.
    assert srv.echoed is not None
    assert r.requests <= srv.echoed <= r.requests + 8
    # Every connection ended with a close handshake.
    assert srv.closed_ok == 8


def test_open_loop_keeps_its_rate_and_counts_agree() -> None:
    with ws_server("echo") as srv:
        r = run_load(spec(srv.port, warmup=0.0, rate=1000.0, duration=1.5))
    good_only(r)
    # Every message of the schedule (1.5 s at 1000/s) was sent and echoed. (Without a
    # warm-up, the rate over the window can read high on a busy machine: a window that
    # begins late is shorter, and the sends due since the go time catch up inside it.)
    assert r.requests == pytest.approx(1500, rel=0.02)
    assert r.latency_uncorrected is not None
    assert r.latency_uncorrected.count == r.latency.count == r.requests
    assert r.late < r.requests / 2
    in_flight = 8 + 1000 * r.latency.max / 1000  # sent in the last max-latency of the window
    assert srv.echoed is not None
    assert r.requests <= srv.echoed <= r.requests + in_flight


@pytest.mark.parametrize(("size", "binary"), [(1000, True), (100_000, False), (1, True)])
def test_sizes_and_kinds_of_message(size: int, binary: bool) -> None:
    with ws_server("echo") as srv:
        r = run_load(spec(srv.port, message_size=size, message_binary=binary, connections=4))
    good_only(r)
    assert r.requests > 20


def test_the_hand_written_server_and_its_whole_message_echoes() -> None:
    with ws_server("raw") as srv:
        r = run_load(spec(srv.port, message_size=70_000, connections=2))
    good_only(r)
    assert r.requests > 20


def test_pings_from_the_server_are_answered_under_load() -> None:
    # The server pings every 50 ms and cuts a client whose pong is a second late.
    with ws_server("pings") as srv:
        r = run_load(spec(srv.port, connections=4, duration=1.5, warmup=0.0, rate=400.0))
    good_only(r)
    assert r.reconnects == 0
    assert r.requests > 400


def test_a_stall_shows_in_the_open_loop_p99() -> None:
    # The server stops for STALL_S (0.2 s) every 2 s, the first time 2 s after it starts: the
    # windows below (from about 0.3 s to 2.8 s) hold one stop.
    with ws_server("stall") as srv:
        closed = run_load(spec(srv.port, duration=2.5, warmup=0.2))
    with ws_server("stall") as srv:
        opened = run_load(spec(srv.port, duration=2.5, warmup=0.2, rate=1000.0))
    stall_ms = STALL_S * 1000
    # Closed loop: only the 8 messages in flight waited; the percentiles hide the stall.
    assert closed.latency.max >= 0.9 * stall_ms
    assert closed.latency.p99 < 0.5 * stall_ms
    # Open loop: every message meant for the stalled 0.2 s waited (8 % of them).
    u = opened.latency_uncorrected
    assert u is not None
    assert opened.latency.max == pytest.approx(stall_ms, rel=0.3)
    assert opened.latency.p99 >= 0.5 * stall_ms
    assert opened.latency.p50 < 0.1 * stall_ms
    # The schedule never waits for echoes, so the uncorrected latency shows it too.
    assert u.p99 >= 0.5 * stall_ms


def test_two_processes_merge_their_results() -> None:
    cpus = tuple(sorted(os.sched_getaffinity(0)))[:2]
    with ws_server("echo") as srv:
        r = run_load(spec(srv.port, procs=2, connections=6, cpus=cpus, warmup=0.0))
    good_only(r)
    assert r.procs == 2 and r.connections == 6
    assert r.requests > 200
    assert Histogram.decode(r.hist).count == r.latency.count == r.requests
    assert srv.echoed is not None
    assert r.requests <= srv.echoed <= r.requests + 6


def test_two_processes_open_loop() -> None:
    with ws_server("echo") as srv:
        r = run_load(spec(srv.port, procs=2, connections=6, rate=600.0, duration=1.5))
    good_only(r)
    assert r.requests / r.duration_s == pytest.approx(600, rel=0.05)
    assert r.latency_uncorrected is not None


@pytest.mark.parametrize("procs", [1, 2])
def test_ctrl_c_keeps_the_results_so_far(procs: int) -> None:
    from loadgen.rawclient import LoadInterrupted

    with ws_server("echo") as srv:
        timer = threading.Timer(2.5, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(LoadInterrupted) as info:
                run_load(spec(srv.port, procs=procs, connections=4, duration=30.0, warmup=0.3))
        finally:
            timer.cancel()
    r = info.value.result
    assert r is not None
    good_only(r)
    assert r.requests > 100 and r.latency.count == r.requests
    assert 0.3 < r.duration_s < 4.0  # from the window's start to the Ctrl-C
    assert info.value.elapsed_s < 6.0


# --- errors -----------------------------------------------------------------------------------


def test_a_wrong_echo_is_a_body_error() -> None:
    with ws_server("wrongecho") as srv:
        r = run_load(spec(srv.port, connections=4))
    assert r.answers > 50
    assert r.errors["body"] == r.answers
    assert r.requests == 0


def test_the_server_closing_is_a_reset_and_a_reconnect() -> None:
    with ws_server("closing") as srv:
        r = run_load(spec(srv.port, connections=4))
    assert r.requests > 100
    assert r.errors["reset"] >= r.requests // (CLOSE_AFTER + 1) - 4
    assert r.reconnects >= r.errors["reset"] - 4
    assert r.errors["body"] == r.errors["parse"] == r.errors["status"] == 0


@pytest.mark.parametrize(("mode", "kind"), [("notfound", "status"), ("badaccept", "parse")])
def test_a_wrong_handshake_is_counted(mode: str, kind: str) -> None:
    with ws_server(mode) as srv:
        r = run_load(spec(srv.port, connections=2, duration=0.5, warmup=0.0))
    assert r.requests == 0
    assert r.errors[kind] > 0


def test_nothing_listening_counts_connect_errors_and_does_not_hang() -> None:
    port = free_port()
    started = time.monotonic()
    r = run_load(spec(port, connections=4, duration=0.5, warmup=0.0))
    assert time.monotonic() - started < 3
    assert r.requests == 0
    assert r.errors["connect"] >= 4


def test_timeouts_are_counted() -> None:
    with ws_server("silent") as srv:
        started = time.monotonic()
        r = run_load(spec(srv.port, connections=3, duration=1.0, warmup=0.0, timeout=0.3))
    assert time.monotonic() - started < 4
    assert r.requests == 0
    assert r.errors["timeout"] >= 3
    assert r.reconnects >= 3


# --- the verifier -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["echo", "raw", "pings"])
def test_verify_accepts_a_right_echo_server(mode: str) -> None:
    with ws_server(mode) as srv:
        assert ws_echo_problem("127.0.0.1", srv.port, "/ws-echo/", "127.0.0.1", 2.0) is None


@pytest.mark.parametrize(
    ("mode", "phrase"),
    [
        ("notfound", "the WebSocket handshake failed: answered 404 Not Found instead of 101"),
        ("badaccept", "the WebSocket handshake failed: wrong Sec-WebSocket-Accept"),
        ("wrongecho", "the echo of the ASCII text message differs"),
        ("nofrag", "text message sent in three fragments"),
        ("nopong", "no answer within 0.5 s to a ping"),
        ("noclose", "no answer within 0.5 s to the close frame"),
        ("silent", "no answer within 0.5 s to the ASCII text message"),
        ("closing", None),  # closes after 20 echoes: the verifier sends fewer
    ],
)
def test_verify_names_what_is_wrong(mode: str, phrase: str | None) -> None:
    with ws_server(mode) as srv:
        problem = ws_echo_problem("127.0.0.1", srv.port, "/ws-echo/", "127.0.0.1", 0.5)
    if phrase is None:
        assert problem is None
    else:
        assert problem is not None and phrase in problem, problem


def test_verify_with_nothing_listening() -> None:
    problem = ws_echo_problem("127.0.0.1", free_port(), "/", "127.0.0.1", 0.5)
    assert problem is not None and problem.startswith("cannot connect to 127.0.0.1:")
