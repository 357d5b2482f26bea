"""Locust as a load client: the pure parts, then real locust processes against real servers.

Covers: error kinds and the measured window (pure); a master with two local workers against
Starlette (requests from both, percentiles, workers = 2, pinning, locust's outputs); a local
run whose count agrees with locust's own stats within 1 %; the browse scenario (404 expected,
bodies checked); wrong bodies counted as errors; an unknown scenario and a broken locustfile
failing before any load; workers that never connect failing after a bounded wait; a worker
killed mid-run (the run goes on, the record says one finished, no orphan); an external worker
joining with ``fwbench locust-worker`` and one refusing a host it may not load.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from loadgen.envs import ensure_env
from loadgen.hist import Histogram
from loadgen.launcher import LaunchOptions, Server, start
from loadgen.locust.client import LocustError, LocustSpec, child_env, run_locust
from loadgen.locust.protocol import count_in_window, parse_event, window
from loadgen.locust.recording import BodyMismatch, Recorder, StatusMismatch, error_kind
from loadgen.procs import free_port
from loadgen.targets import discover

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------
# Pure parts


class RetriesExceeded(Exception):  # named as geventhttpclient's: recognised by name
    def __init__(self, original: BaseException) -> None:
        super().__init__("retries exceeded")
        self.original = original


class LocustBadStatusCode(Exception):
    pass


class HTTPParseError(Exception):
    pass


class HTTPConnectionClosed(HTTPParseError):
    pass


def test_error_kinds() -> None:
    assert error_kind(None) is None
    assert error_kind(ConnectionRefusedError(111, "refused")) == "connect"
    assert error_kind(socket.gaierror(-2, "unknown name")) == "connect"
    assert error_kind(RetriesExceeded(TimeoutError("timed out"))) == "timeout"
    assert error_kind(RetriesExceeded(BrokenPipeError(32, "pipe"))) == "reset"
    assert error_kind(ConnectionResetError(104, "reset")) == "reset"
    assert error_kind(HTTPConnectionClosed("closed")) == "reset"
    assert error_kind(HTTPParseError("bad")) == "parse"
    assert error_kind(LocustBadStatusCode("500")) == "status"
    assert error_kind(StatusMismatch("200, not 404")) == "status"
    assert error_kind(BodyMismatch("wrong")) == "body"


def test_recorder_counts_requests_started_in_the_window() -> None:
    rec = Recorder()
    rec.set_window(100.0, 110.0)
    rec.on_request(response_time=2.5, start_time=99.999)  # warm-up: not counted
    rec.on_request(response_time=1.25, start_time=100.0)
    rec.on_request(response_time=40.0, start_time=109.99)  # ends after the window: counted
    rec.on_request(response_time=3.0, start_time=105.0, exception=LocustBadStatusCode("503"))
    rec.on_request(response_time=9.0, start_time=105.0, exception=ConnectionRefusedError())
    rec.on_request(response_time=1.0, start_time=110.0)  # after: not counted
    assert rec.completed == 6
    assert rec.counts["ok"] == 2 and rec.counts["status"] == 1 and rec.counts["connect"] == 1
    report = rec.report("local", "id", "host", 1, True)
    hist = Histogram.decode(report.hist)
    assert hist.count == 3  # answers only: no latency for a refused connection
    assert report.answers == 3 and report.requests == 4
    assert hist.value_at_percentile_us(0.0) == 1250


def test_window_and_locust_per_second_counts() -> None:
    assert window(10.3, 2.0, 3.0) == (13.0, 16.0)
    per_second = {12: 5, 13: 10, 14: 10, 15: 10, 16: 7}
    assert count_in_window(per_second, 13.0, 16.0) == 30
    assert count_in_window(per_second, 13.0, 15.5) == 25
    assert parse_event('@fwbench {"event": "ready", "port": 5}') == {"event": "ready", "port": 5}
    assert parse_event("a locustfile's print") is None


def test_spec_refuses_bad_settings_all_at_once() -> None:
    with pytest.raises(ValueError) as err:
        LocustSpec(host="", port=80, users=0, path="hello", duration=float("inf"), worker_wait=0)
    assert str(err.value) == (
        "invalid LocustSpec: host is empty; users must be at least 1; duration must be a "
        "positive finite number; path must start with '/'; worker_wait must be positive"
    )
    assert LocustSpec(host="127.0.0.1", port=80, workers=2).local_processes == 3


@pytest.mark.child_process  # a Python that imports modules and exits: no server, no load
def test_fwbench_side_never_imports_locust_or_gevent() -> None:
    """Locust patches its process with gevent on import: only the driver's processes may."""
    probe = (
        "import sys, loadgen.locust.client, loadgen.locust.external\n"
        "heavy = ('gevent', 'locust', 'zmq')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


# --------------------------------------------------------------------------------------------
# Servers


class StdlibServer:
    """A stdlib server in this process: right or wrong hello answers; counts what it gets."""

    def __init__(self, body: bytes = b'{"message":"Hello world!"}') -> None:
        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.requests += 1
                status = b"200 OK" if self.path.startswith("/hello/") else b"404 Not Found"
                self.wfile.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StdlibServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def starlette(tmp_path_factory: pytest.TempPathFactory, envs_dir: Path) -> Iterator[Server]:
    target = discover(ROOT / "targets").select(["starlette"])[0]
    env = ensure_env(target, envs_dir)
    server = start(
        target, env, log_dir=tmp_path_factory.mktemp("logs"), opts=LaunchOptions(cpus=(0,))
    )
    try:
        yield server
    finally:
        assert not server.stop().left


def spec_for(server: Server, **changes: object) -> LocustSpec:
    base: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "path": server.target.hello_path,
        "kind": server.target.kind,
        "users": 16,
        "warmup": 0.5,
        "duration": 2.0,
    }
    base.update(changes)
    return LocustSpec(**base)  # type: ignore[arg-type]


def locust_children(role: str) -> list[psutil.Process]:
    out = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmd = p.cmdline()
            if "loadgen.locust.driver" in cmd and role in cmd:
                out.append(p)
    return out


# --------------------------------------------------------------------------------------------
# Real runs (e2e: each starts a server, locust or both)


@pytest.mark.e2e
def test_master_with_two_local_workers(starlette: Server, tmp_path: Path) -> None:
    affinities: list[set[int]] = []

    def progress(count: int) -> None:
        if not affinities:
            affinities.extend(set(p.cpu_affinity()) for p in locust_children("worker"))

    spec = spec_for(starlette, workers=2, cpus=(0, 1), out_dir=tmp_path / "locust")
    result, info = run_locust(spec, progress)
    assert info.mode == "distributed"
    assert info.workers_started == 2 and info.workers_finished == 2
    assert len(info.processes) == 2 and all(p.requests > 0 for p in info.processes)
    assert result.requests == sum(p.requests for p in info.processes) > 100
    assert result.errors == dict.fromkeys(result.errors, 0)
    assert 0 < result.latency.p50 <= result.latency.p99 <= result.latency.max
    assert Histogram.decode(result.hist).count == result.answers == result.requests
    assert result.window_end - result.window_start == pytest.approx(2.0)
    assert info.count_gap_pct < 1.0, (info.locust_requests, info.recorded)
    assert sorted(affinities, key=min) == [{0}, {1}]  # pinned round robin
    assert len(info.pids) == 3 and not any(psutil.pid_exists(p) for p in info.pids)
    assert info.html is not None and info.html.stat().st_size > 0
    assert {p.name for p in info.csv} >= {"locust_stats.csv", "locust_stats_history.csv"}
    assert "/hello/" in (tmp_path / "locust" / "locust_stats.csv").read_text()


@pytest.mark.e2e
def test_local_run_agrees_with_locust_stats(starlette: Server) -> None:
    seen: list[int] = []
    result, info = run_locust(spec_for(starlette), seen.append)
    assert info.mode == "local" and info.workers_started == 0
    assert result.requests > 300 and result.rps > 100
    assert info.locust_failures == 0 and sum(result.errors.values()) == 0
    assert info.count_gap_pct < 1.0, (info.locust_requests, info.recorded)
    assert 0 < result.client_cpu_pct <= 100.0 * 1.05
    assert len(seen) >= 2 and seen == sorted(seen)
    json.dumps(result.to_dict())
    json.dumps(info.to_dict())


@pytest.mark.e2e
def test_browse_scenario(starlette: Server, tmp_path: Path) -> None:
    spec = spec_for(starlette, scenario="browse", users=24, check_every=1, out_dir=tmp_path)
    result, info = run_locust(spec)
    assert result.requests > 20
    assert result.errors == dict.fromkeys(result.errors, 0)  # the 404 page is expected
    stats = (tmp_path / "locust_stats.csv").read_text()
    assert "404 (expected)" in stats and "?page=[n]" in stats
    assert info.locust_failures == 0


@pytest.mark.e2e
def test_wrong_bodies_are_errors() -> None:
    with StdlibServer(b'{"message": "Hello World"}') as server:
        spec = LocustSpec(
            host="127.0.0.1", port=server.port, kind="json", check_every=1, users=4,
            warmup=0.5, duration=1.0,
        )  # fmt: skip
        result, _ = run_locust(spec)
    assert result.requests == 0 and result.errors["body"] > 0
    assert result.answers == result.errors["body"]


@pytest.mark.e2e
def test_unknown_scenario_fails_before_load() -> None:
    with StdlibServer() as server:
        with pytest.raises(LocustError) as err:
            run_locust(LocustSpec(host="127.0.0.1", port=server.port, scenario="shop"))
        assert err.value.stage == "scenario" and "'shop'" in err.value.reason
        assert "hello" in err.value.reason
        assert server.requests == 0


@pytest.mark.e2e
def test_broken_locustfile_fails_before_load(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from locust import FastHttpUser\n\nclass User(FastHttpUser:\n    pass\n")
    with StdlibServer() as server:
        spec = LocustSpec(host="127.0.0.1", port=server.port, workers=1, locustfile=broken)
        started = time.monotonic()
        with pytest.raises(LocustError) as err:
            run_locust(spec)
        assert time.monotonic() - started < 30
        assert err.value.stage == "locustfile"
        assert "broken.py" in err.value.reason and "SyntaxError" in err.value.reason
        assert server.requests == 0


@pytest.mark.e2e
def test_workers_that_never_connect_fail_after_a_bounded_wait() -> None:
    with StdlibServer() as server:
        spec = LocustSpec(
            host="127.0.0.1", port=server.port, expect_external_workers=1, worker_wait=3.0,
            master_bind_port=free_port("127.0.0.1"), master_bind_host="127.0.0.1",
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(LocustError) as err:
            run_locust(spec)
        assert time.monotonic() - started < 30
        assert err.value.stage == "workers"
        assert err.value.reason == "0 of 1 workers connected after 3 s"
        assert server.requests == 0


@pytest.mark.e2e
def test_worker_killed_mid_run(starlette: Server) -> None:
    killed: list[int] = []

    def progress(count: int) -> None:
        if not killed and count > 0:
            victim = locust_children("worker")[0]
            killed.append(victim.pid)
            os.kill(victim.pid, signal.SIGKILL)

    result, info = run_locust(spec_for(starlette, workers=2), progress)
    assert killed
    assert info.workers_started == 2 and info.workers_finished == 1
    assert [p.pid for p in info.processes] != killed
    assert result.requests > 0
    assert not any(psutil.pid_exists(p) for p in info.pids)


@pytest.mark.e2e
def test_external_worker_joins_with_locust_worker_command(starlette: Server) -> None:
    port = free_port("127.0.0.1")
    cmd = [
        sys.executable, "-m", "commands.cli", "locust-worker", "--master", "127.0.0.1",
        "--master-port", str(port), "--once", "--connect-timeout", "60",
    ]  # fmt: skip
    external = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        spec = spec_for(
            starlette, workers=1, expect_external_workers=1, master_bind_port=port,
            master_bind_host="127.0.0.1",
        )  # fmt: skip
        result, info = run_locust(spec)
        out, _ = external.communicate(timeout=30)
    finally:
        if external.poll() is None:
            external.kill()
            external.wait()
    assert external.returncode == 0, out.decode()[-2000:]
    assert info.workers_started == 2 and info.workers_finished == 2
    assert sorted(p.local for p in info.processes) == [False, True]
    assert all(p.requests > 0 for p in info.processes)
    assert result.requests == sum(p.requests for p in info.processes)


@pytest.mark.e2e
def test_external_worker_refuses_a_host_it_may_not_load(tmp_path: Path) -> None:
    address = _outside_address()
    if address is None:
        pytest.skip("no address outside loopback on this machine")
    port = free_port("127.0.0.1")
    cmd = [
        sys.executable, "-m", "commands.cli", "locust-worker", "--master", "127.0.0.1",
        "--master-port", str(port), "--once", "--config", str(tmp_path / "none.toml"),
    ]  # fmt: skip
    (tmp_path / "none.toml").write_text("")
    external = subprocess.Popen(
        cmd, cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        spec = LocustSpec(
            host=address, port=9, expect_external_workers=1, master_bind_port=port,
            master_bind_host="127.0.0.1", allow_hosts=(address,),
        )  # fmt: skip
        with pytest.raises(LocustError) as err:
            run_locust(spec)
        out, _ = external.communicate(timeout=30)
    finally:
        if external.poll() is None:
            external.kill()
            external.wait()
    assert err.value.stage == "workers" and "refused the run" in err.value.reason
    assert "outside loopback" in err.value.reason
    assert external.returncode == 3, out.decode()[-2000:]


def _outside_address() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return None
