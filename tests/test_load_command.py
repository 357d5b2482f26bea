"""``fwbench load``: its input checked before any load (URL, flags, hosts), the requests it sends
(method, headers, body) as a real server receives them, and what it says when nothing answers.

The tests that send requests are ``e2e``: each starts a small server on 127.0.0.1 (a stdlib
HTTP server in a thread of this process, recording every request it reads) and loads it for
half a second at a fixed rate, or tries a port where nothing listens.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from commands import load as loadcmd
from commands.cli import main as fwbench
from loadgen.procs import free_port
from loadgen.rawclient import LoadSpec

# --------------------------------------------------------------------------------------------
# Input: checked before any load, one line on stderr, exit status 2


@pytest.fixture
def no_load(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails the test if a connection is tried or load is started; records what was asked."""
    asked: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        asked.append("load")
        raise AssertionError("load was started")

    def no_connect(*args: object, **kwargs: object) -> str:
        asked.append("connect")
        return "not tried by the test"

    monkeypatch.setattr(loadcmd, "run_load", refuse)
    monkeypatch.setattr(loadcmd, "connect_problem", no_connect, raising=False)
    return asked


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/a b", ("127.0.0.1", 8000, "/a%20b")),
        ("http://127.0.0.1:8000/h\u00e9llo", ("127.0.0.1", 8000, "/h%C3%A9llo")),
        ("127.0.0.1:8000/x?q=a b&r=\u00e9", ("127.0.0.1", 8000, "/x?q=a%20b&r=%C3%A9")),
        ("http://127.0.0.1/%41%20b", ("127.0.0.1", 80, "/%41%20b")),  # already encoded: kept
        ("http://127.0.0.1/\udcff", ("127.0.0.1", 80, "/%FF")),  # an undecodable argv byte
        ("http://127.0.0.1:8000", ("127.0.0.1", 8000, "/")),
        ("http://127.0.0.1:8000/x#frag", ("127.0.0.1", 8000, "/x")),
        ("http://[::1]:8080/x", ("::1", 8080, "/x")),
        ("http://h\u00e9llo.localhost:8000/", ("xn--hllo-bpa.localhost", 8000, "/")),
    ],
)
def test_urls_are_encoded_as_curl_does(url: str, expected: tuple[str, int, str]) -> None:
    assert loadcmd.parse_url(url) == expected


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["http://127.0.0.1:8000/a\x01b"], "control character (\\x01)"),
        (["http://127.0.0.1:8000/a\nb"], "control character (\\x0a)"),
        (["http://127.0.0.1:8000/a\tb"], "control character (\\x09)"),
        (["http://127.0.0.1:8000/\x85"], "control character (\\x85)"),
        (["http://127.0.0.1:0/"], "out of range"),
        (["http://127.0.0.1:99999/"], "bad port"),
        (["http://user:pw@127.0.0.1/"], "user names"),
        (["http://a b/"], "bad host name"),
        (["http://[::zz]/"], "IPv6"),
        (["http://127.0.0.1:8000/", "--host-header", "a b"], "--host-header: must be printable"),
        (["http://127.0.0.1:8000/", "--host-header", "h\u00e9llo"], "IDNA"),
        (["http://127.0.0.1:8000/", "--host-header", ""], "--host-header: empty"),
        (["http://127.0.0.1:8000/", "-H", "Host: a b"], "must be printable"),
        (["http://127.0.0.1:8000/", "-H", "Content-Length: 3"], "set from the body"),
        (["http://127.0.0.1:8000/", "-H", "Transfer-Encoding: chunked"], "not allowed"),
        (["http://127.0.0.1:8000/", "--body-file", "/nonexistent/body"], "--body-file"),
        (["http://127.0.0.1:8000/", "--host-header", "a", "-H", "Host: b"], "two Host"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_load(
    capsys: pytest.CaptureFixture[str], no_load: list[str], args: list[str], words: str
) -> None:
    assert loadcmd.main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("fwbench load: error: ")
    assert words in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    assert no_load == []


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["-d", "inf"], "argument -d/--duration: not a finite duration"),
        (["-d", "nan"], "not a finite duration"),
        (["-d", "1e999"], "not a finite duration"),
        (["-d", "0"], "must be more than 0"),
        (["-d", "-1"], "not a finite duration"),
        (["-d", "8d"], "not a duration"),
        (["-d", "1e9"], "longer than a week"),
        (["--warmup", "inf"], "argument --warmup"),
        (["--timeout", "inf"], "argument --timeout"),
        (["--timeout", "0"], "must be more than 0"),
        (["--rate", "inf"], "argument --rate: must be a finite rate"),
        (["--rate", "nan"], "finite rate"),
        (["--rate", "1e-300"], "at least 0.001"),
        (["-m", "HEAD"], "HEAD is not supported"),
        (["-m", "head"], "HEAD is not supported"),
        (["-m", "GET /x"], "not a method name"),
        (["-H", "NoColon"], "not a 'Name: value' header"),
        (["-H", "Bad Name: 1"], "header name must be a token"),
        (["-H", "X-A: 1\r\nEvil: 2"], "holds a control character (\\x0d)"),
        (["-b", "x", "--body-file", "f"], "not allowed with argument"),
    ],
)
def test_bad_flags_exit_2_at_once(
    capsys: pytest.CaptureFixture[str], no_load: list[str], flags: list[str], words: str
) -> None:
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        loadcmd.main(["http://127.0.0.1:8000/", *flags])
    assert info.value.code == 2
    assert time.monotonic() - started < 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("fwbench load: error: ") and words in last, last
    assert no_load == []


def test_method_headers_and_body_make_the_request() -> None:
    parser = argparse.ArgumentParser()
    loadcmd.add_arguments(parser)
    args = parser.parse_args(
        [
            "http://127.0.0.1:8000/items",
            "-m",
            "post",
            "-H",
            "Content-Type:application/json",
            "-H",
            "X-Empty:",
            "-H",
            "Host: api.example",
            "-b",
            '{"a": "\u00e9"}',
        ]
    )
    spec = loadcmd.spec_from_args(args)
    assert spec.request() == (
        b"POST /items HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n"
        b'X-Empty: \r\nContent-Length: 11\r\n\r\n{"a": "\xc3\xa9"}'
    )
    assert "POST with a body of 11 bytes" in loadcmd._banner(args.url, spec)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"host_header": "x\r\nEvil: 1"}, "host header must not hold spaces or control"),
        ({"host_header": "a b"}, "host header must not hold spaces"),
        ({"headers": (("X-A", "1\r\nEvil: 2"),)}, "control characters"),
        ({"headers": (("X A", "1"),)}, "header name must be a token"),
        ({"path": "/a b"}, "path must not hold spaces"),
        ({"path": "/h\u00e9llo"}, "path must be ASCII"),
        ({"method": "HEAD"}, "HEAD is not supported"),
        ({"host": "h\u00e9llo"}, "host header must be ASCII"),
        ({"rate": 1e-300}, "rate must be a finite number"),
        ({"rate": math.inf}, "rate must be a finite number"),
        ({"timeout": 1e300}, "timeout must be at most 604800 s"),
        ({"duration": math.inf}, "duration must be a positive finite number"),
        ({"warmup": math.nan}, "warmup must be a finite number"),
    ],
)
def test_load_spec_refuses_what_would_break_the_request_or_the_clock(
    kwargs: dict[str, object], words: str
) -> None:
    base: dict[str, object] = {"host": "127.0.0.1", "port": 8000}
    base.update(kwargs)
    with pytest.raises(ValueError, match="invalid LoadSpec: .*" + re.escape(words)):
        LoadSpec(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# [network] allow_hosts is honoured (no socket is opened: the connection try is stubbed)


def test_allow_hosts_of_bench_toml_is_honoured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_load: list[str]
) -> None:
    url = "http://10.11.12.13:8000/"
    plain = tmp_path / "plain.toml"
    plain.write_text("")
    assert fwbench(["--config", str(plain), "load", url, "-d", "1"]) == 2
    err = capsys.readouterr().err
    assert "refusing to send load" in err
    assert "--allow-host 10.11.12.13" in err and 'allow_hosts = ["10.11.12.13"]' in err
    assert no_load == []

    allowing = tmp_path / "bench.toml"
    allowing.write_text('[network]\nallow_hosts = ["10.11.12.13"]\n')
    # Past the host check: the next step is the connection try (stubbed here).
    assert fwbench(["--config", str(allowing), "load", url, "-d", "1"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to 10.11.12.13:8000: not tried by the test" in err
    assert no_load == ["connect"]
    # The flag alone does it too, whatever bench.toml says.
    assert fwbench(["--config", str(plain), "load", url, "--allow-host", "10.11.12.13"]) == 1
    assert no_load == ["connect", "connect"]


def test_a_broken_bench_toml_is_named_only_when_it_was_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_load: list[str]
) -> None:
    broken = tmp_path / "bench.toml"
    broken.write_text("[network\n")
    # Loopback needs no config: the broken file is not even read.
    assert fwbench(["--config", str(broken), "load", "http://127.0.0.1:8000/"]) == 1
    assert no_load == ["connect"]
    assert fwbench(["--config", str(broken), "load", "http://10.11.12.13:8000/"]) == 2
    err = capsys.readouterr().err
    assert "refusing to send load" in err and "was not read" in err and "(syntax)" in err


# --------------------------------------------------------------------------------------------
# Against real sockets on 127.0.0.1


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    content_length: str | None
    body: bytes


@contextlib.contextmanager
def recording_server() -> Iterator[tuple[int, list[Seen]]]:
    """A stdlib HTTP/1.1 server on a free port of 127.0.0.1 (threads of this process) that
    answers 200 ``ok`` to any request and records each one; shut down afterwards."""
    seen: list[Seen] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self) -> None:
            length = self.headers.get("Content-Length")
            body = self.rfile.read(int(length)) if length else b""
            seen.append(Seen(self.command, self.path, dict(self.headers), length, body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client aborts its connections at the end of the run: not news

    server = Server(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, name="recorder", daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


BINARY = bytes(range(256))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("flags", "method", "headers", "length", "body"),
    [
        (
            ["-m", "POST", "-H", "Content-Type: application/json", "-H", "X-Test: 1", "-b", "{}"],
            "POST",
            {"Content-Type": "application/json", "X-Test": "1"},
            "2",
            b"{}",
        ),
        (["-m", "put", "--body-file", "BINARY"], "PUT", {}, "256", BINARY),
        (["-m", "PATCH"], "PATCH", {}, "0", b""),
        (["-H", "Accept: text/plain"], "GET", {"Accept": "text/plain"}, None, b""),
    ],
)
def test_every_request_carries_method_headers_and_body(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    method: str,
    headers: dict[str, str],
    length: str | None,
    body: bytes,
) -> None:
    (tmp_path / "body.bin").write_bytes(BINARY)
    flags = [str(tmp_path / "body.bin") if f == "BINARY" else f for f in flags]
    with recording_server() as (port, seen):
        url = f"http://127.0.0.1:{port}/a b/h\u00e9llo?q=\u00e9"
        load = ["-c", "2", "-d", "0.5", "--warmup", "0", "--rate", "100", "--json"]
        code = loadcmd.main([url, *load, *flags])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["requests"] > 10
    assert len(seen) >= out["requests"]
    for request in seen:
        assert request.method == method
        assert request.path == "/a%20b/h%C3%A9llo?q=%C3%A9"
        assert request.headers["Host"] == f"127.0.0.1:{port}"
        for name, value in headers.items():
            assert request.headers[name] == value
        assert request.content_length == length
        assert request.body == body


@pytest.mark.e2e
def test_nothing_listening_says_connection_refused_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    started = time.monotonic()
    code = loadcmd.main([url, "-d", "3", "--warmup", "0"])
    assert time.monotonic() - started < 2  # not the whole duration
    assert code == 1
    captured = capsys.readouterr()
    assert "connection refused" in captured.err.lower()
    assert "p50" not in captured.out


@pytest.mark.e2e
def test_refused_during_the_run_is_counted_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    # The listener takes the first connection (the command's first try), then goes away:
    # every connection of the load is refused.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept_once() -> None:
        with listener:
            conn, _ = listener.accept()
            conn.close()

    thread = threading.Thread(target=accept_once, daemon=True)
    thread.start()
    try:
        code = loadcmd.main([f"http://127.0.0.1:{port}/", "-c", "2", "-d", "1", "--warmup", "0"])
    finally:
        listener.close()
        thread.join(5)
    assert code == 1
    captured = capsys.readouterr()
    assert "0 good requests" in captured.out
    last = captured.err.strip().splitlines()[-1]
    # the window's own length, as measured (about the 1 s asked)
    assert re.match(r"fwbench load: error: no request succeeded in [01]\.\d s: ", last), last
    assert "connection attempts to 127.0.0.1:" in last and "connection refused" in last.lower()
