"""The raw client's HTTP/2 loop and the HTTP/2 verifier against real servers on 127.0.0.1.

The servers are the counting fixture (:mod:`tests.h2_fixture`, hyper-h2 in a process of its own)
and, for refusals, servers that speak only HTTP/1.1. Every load is short and bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.procs import free_port
from loadgen.rawclient import LoadInterrupted, LoadResult, LoadSpec, run_load
from loadgen.tls import make_certificate
from loadgen.verify_h2 import H2Refused, fetch_h2
from tests.h2_fixture import STALL_S, fixture

pytestmark = pytest.mark.e2e  # every test starts a server (and nearly all send load)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def spec(port: int, protocol: str = "h2c", **kw: object) -> LoadSpec:
    base: dict[str, object] = {
        "connections": 2,
        "streams": 4,
        "duration": 1.0,
        "warmup": 0.0,
        "path": "/hello/",
        "protocol": protocol,
    }
    base.update(kw)
    return LoadSpec("127.0.0.1", port, **base)  # type: ignore[arg-type]


def only_ok(r: LoadResult) -> None:
    assert r.errors == dict.fromkeys(r.errors, 0), r.errors


# -- counts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["h2c", "h2"])
def test_the_client_count_agrees_with_the_servers(protocol: str, cert: tuple[Path, Path]) -> None:
    with fixture("ok", cert if protocol == "h2" else None) as (port, count):
        r = run_load(spec(port, protocol, kind="html", check_every=10))
    only_ok(r)
    assert r.requests > 200
    in_flight = r.connections * 4
    # The server answered every request the client counted, and at most the requests in
    # flight when the window closed besides.
    assert r.requests <= count.answered <= r.requests + in_flight
    assert r.latency.count == r.requests and 0 < r.latency.p50 <= r.latency.max


def test_two_processes_merge_their_results() -> None:
    cpus = tuple(sorted(os.sched_getaffinity(0)))[:2]
    with fixture("ok") as (port, count):
        r = run_load(spec(port, procs=2, connections=4, cpus=cpus))
    only_ok(r)
    assert r.procs == 2 and r.connections == 4 and r.requests > 200
    assert r.requests <= count.answered <= r.requests + 4 * 4
    assert r.latency.count == r.requests


def test_open_loop_keeps_its_rate_with_streams() -> None:
    with fixture("ok") as (port, _):
        r = run_load(spec(port, rate=800.0, duration=1.5, warmup=0.3))
    only_ok(r)
    assert r.requests / r.duration_s == pytest.approx(800, rel=0.05)
    assert r.latency_uncorrected is not None and r.latency_uncorrected.count == r.requests


def test_a_stall_shows_in_the_corrected_open_loop_p99() -> None:
    # The fixture holds every answer 200 ms of every 2 s: one or two stalls in the window.
    with fixture("stall") as (port, _):
        r = run_load(spec(port, rate=1000.0, duration=2.5, streams=4))
    stall_ms = STALL_S * 1000
    u = r.latency_uncorrected
    assert u is not None and r.requests > 1500
    assert 0.9 * stall_ms <= r.latency.max < 2 * stall_ms  # the stall, and its backlog
    assert r.latency.p99 >= 0.5 * stall_ms  # charged from the intended send times
    assert u.p99 < 0.5 * r.latency.p99  # from the actual sends, mostly hidden
    assert r.late > 50  # the 8 stream slots filled up: sends waited for the stall's end


@pytest.mark.parametrize("procs", [1, 2])
def test_ctrl_c_keeps_the_results_so_far(procs: int) -> None:
    with fixture("ok") as (port, _):
        # Late enough for the worker processes to have started (a second or two on a busy
        # machine): their windows have begun.
        timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(LoadInterrupted) as caught:
                run_load(spec(port, procs=procs, connections=2, duration=30.0))
        finally:
            timer.cancel()
        assert time.monotonic() - started < 8
    result = caught.value.result
    assert result is not None and result.requests > 0 and result.duration_s < 5


# -- errors by kind -----------------------------------------------------------------------------


def test_status_and_body_errors_are_counted() -> None:
    with fixture("status500") as (port, _):
        r = run_load(spec(port, connections=1))
    assert r.requests == 0 and r.errors["status"] == r.answers > 20
    with fixture("wrongbody") as (port, _):
        r = run_load(spec(port, connections=1, kind="html", check_every=1))
    assert r.requests == 0 and r.errors["body"] == r.answers > 20


def test_resets_and_timeouts_are_counted() -> None:
    with fixture("reset") as (port, _):
        r = run_load(spec(port, connections=1, duration=0.5))
    assert r.requests == 0 and r.errors["reset"] > 20 and r.errors["parse"] == 0
    with fixture("silent") as (port, _):
        started = time.monotonic()
        r = run_load(spec(port, duration=1.0, timeout=0.3))
    assert time.monotonic() - started < 4
    assert r.requests == 0 and r.errors["timeout"] >= 2 * 4 and r.reconnects >= 2


def test_nothing_listening_is_a_connect_error_and_http1_a_parse_error(
    cert: tuple[Path, Path],
) -> None:
    r = run_load(spec(free_port(), duration=0.5))
    assert r.requests == 0 and r.errors["connect"] >= 2
    with fixture("http1") as (port, _):
        r = run_load(spec(port, duration=0.5))
    assert r.requests == 0 and r.errors["parse"] >= 2
    with fixture("http1", cert) as (port, _):  # TLS offering http/1.1 only
        r = run_load(spec(port, "h2", duration=0.5))
    assert r.requests == 0 and r.errors["connect"] >= 2


# -- the verifier -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["h2c", "h2"])
def test_verify_h2_accepts_an_http2_server(protocol: str, cert: tuple[Path, Path]) -> None:
    with fixture("ok", cert if protocol == "h2" else None) as (port, count):
        answer = fetch_h2("127.0.0.1", port, protocol, "/hello/", f"127.0.0.1:{port}", 5.0)
    assert answer.status == 200 and b"Hello world!" in answer.body
    assert ("content-type", "text/html") in answer.headers
    assert answer.alpn == ("h2" if protocol == "h2" else None)
    assert count.answered == 1


@contextlib.contextmanager
def http_server(cert: tuple[Path, Path] | None = None) -> Iterator[int]:
    """Python's own http.server (HTTP/1.x only), with TLS when ``cert`` is given."""
    code = (
        "import http.server, ssl, sys\n"
        "s = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n"
        "if len(sys.argv) > 1:\n"
        "    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(*sys.argv[1:])\n"
        "    c.set_alpn_protocols(['http/1.1']); s.socket = c.wrap_socket(s.socket, True)\n"
        "print('PORT', s.server_address[1], flush=True)\n"
        "s.serve_forever()\n"
    )
    args = [str(p) for p in cert] if cert else []
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline().split()[1])
    finally:
        proc.terminate()
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def test_verify_h2_refuses_an_http1_server_with_a_reason(cert: tuple[Path, Path]) -> None:
    # http.server answers the preface with an HTTP/0.9-style error page: a body, no status line.
    with http_server() as port, pytest.raises(H2Refused, match="preface and the server answered"):
        fetch_h2("127.0.0.1", port, "h2c", "/", "localhost", 5.0)
    bad_request = pytest.raises(H2Refused, match=r"server answered 'HTTP/1\.1 400 Bad Request'")
    with fixture("http1") as (port, _), bad_request:
        fetch_h2("127.0.0.1", port, "h2c", "/", "localhost", 5.0)
    refused = pytest.raises(H2Refused, match=r"ALPN h2\) and the server chose http/1\.1")
    with http_server(cert) as port, refused:
        fetch_h2("127.0.0.1", port, "h2", "/", "localhost", 5.0)
    timed_out = pytest.raises(H2Refused, match=r"no HTTP/2 answer within 0\.5 s")
    with fixture("silent") as (port, _), timed_out:
        fetch_h2("127.0.0.1", port, "h2c", "/", "localhost", 0.5)
