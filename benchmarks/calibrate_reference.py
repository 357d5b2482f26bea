"""The reference server of ``fwbench calibrate``: a fixed, fast server to measure clients on.

nginx from the distribution when installed (one worker, a fixed body, no access log), else a
bare uvicorn ASGI app; for ``h2c`` nginx only, listening with ``http2`` (HTTP/2 with prior
knowledge on cleartext TCP: nginx's h2c). Started pinned, in its own process group, on a free
port, with a clean environment and watched by the reaper (:func:`loadgen.procs.spawn`), and
stopped (group and all) with :func:`loadgen.procs.stop_group`.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen.procs import child_env, free_port, log_tail, spawn, stop_group
from loadgen.verify_h2 import fetch_h2

BODY = "<!DOCTYPE html><html><body><p>Hello world!</p></body></html>\n"

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000000;
    server {{
        listen 127.0.0.1:{port}{http2};
        http2_max_concurrent_streams 1024;
        location = /hello/ {{
            default_type text/html;
            return 200 '{body}';
        }}
    }}
}}
"""

ASGI_APP = """\
BODY = {body!r}.encode()
HEADERS = [(b"content-type", b"text/html"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": BODY}})
"""


class CalibrateError(RuntimeError):
    """The reference server or a client could not run; the message says why."""


@dataclass
class Reference:
    """A running reference server (its own process group: ``proc.pid`` is the group's ID)."""

    name: str
    version: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


def _wait_ready(ref: Reference, timeout: float = 20.0, protocol: str = "http1") -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if ref.proc.poll() is not None:
            break
        if protocol != "http1":
            try:
                h2 = fetch_h2("127.0.0.1", ref.port, protocol, "/hello/", "127.0.0.1", 1.0)
                if h2.status == 200 and b"Hello world!" in h2.body:
                    return
                last = f"status {h2.status}"
            except (OSError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.1)
            continue
        try:
            conn = http.client.HTTPConnection("127.0.0.1", ref.port, timeout=1.0)
            conn.request("GET", "/hello/")
            answer = conn.getresponse()
            body = answer.read()
            conn.close()
            if answer.status == 200 and b"Hello world!" in body:
                return
            last = f"status {answer.status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise CalibrateError(
        f"{ref.name} did not come up on port {ref.port} ({last})\n{log_tail(ref.log)}"
    )


@contextlib.contextmanager
def reference_server(
    kind: str, cpus: Sequence[int], tmp: Path, protocol: str = "http1"
) -> Iterator[Reference]:
    """Start the reference server in its own process group; stop the group afterwards.

    ``protocol`` ``h2c``: nginx serving HTTP/2 with prior knowledge (no uvicorn fallback:
    uvicorn does not speak HTTP/2)."""
    port = free_port()
    log = tmp / "server.log"
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if protocol != "http1" and (kind == "uvicorn" or not nginx):
        raise CalibrateError(
            f"the {protocol} reference server is nginx (apt-get install nginx); uvicorn does "
            "not speak HTTP/2"
        )
    if kind in ("auto", "nginx") and nginx:
        conf = tmp / "nginx.conf"
        http2 = "" if protocol == "http1" else " http2"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=BODY.strip(), http2=http2))
        version = subprocess.run(
            [nginx, "-v"], capture_output=True, text=True, check=False
        ).stderr.strip()
        cmd = [nginx, "-c", str(conf), "-p", str(tmp)]
        name = "nginx"
    elif kind == "nginx":
        raise CalibrateError("nginx is not installed (apt-get install nginx)")
    elif importlib.util.find_spec("uvicorn") is not None:
        if kind == "auto":
            print("fwbench calibrate: nginx not found; using uvicorn (bare ASGI)", file=sys.stderr)
        (tmp / "refapp.py").write_text(ASGI_APP.format(body=BODY))
        version = f"uvicorn {importlib.metadata.version('uvicorn')}"
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "refapp:app",
            "--app-dir",
            str(tmp),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ]
        name = "uvicorn"
    else:
        raise CalibrateError("neither nginx nor uvicorn is installed: no reference server")
    with log.open("wb") as out:
        proc: subprocess.Popen[bytes] = spawn(
            cmd,
            env=child_env(),
            session=True,
            cpus=cpus,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    ref = Reference(name, version, port, proc, log)
    try:
        _wait_ready(ref, protocol=protocol)
        yield ref
    finally:
        stop_group(proc)
