"""What a raw client run is asked to do: :class:`LoadSpec`, checked when it is built."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from loadgen.http1 import DEFAULT_CHECK_EVERY, encode_request, host_header_value
from loadgen.loadspec import MIN_RATE, common_problems
from loadgen.records.scenarios import H2_PROTOCOLS, MAX_QUERIES, PROTOCOLS, SCENARIOS, WS_SCENARIOS


@dataclass(frozen=True)
class LoadSpec:
    """What to run: target, connections, load model, duration and client placement."""

    host: str
    port: int
    path: str = "/hello/"
    connections: int = 64
    duration: float = 10.0
    warmup: float = 2.0
    rate: float | None = None
    """Requests per second for an open-loop run; None runs a closed loop."""
    procs: int = 1
    cpus: tuple[int, ...] = ()
    """CPUs for the client processes (one each, round robin); () leaves them unpinned."""
    timeout: float = 10.0
    kind: str | None = None
    """Body kind to check ("html" or "json") on one answer in ``check_every``; None: no check."""
    check_every: int = DEFAULT_CHECK_EVERY
    host_header: str | None = None
    keepalive: bool = True
    """False: one connection per request (``Connection: close``), for a server that cannot
    keep alive; every answer then ends with a reconnect, not with an error."""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers ``(name, value)``, sent after ``Host`` on every request."""
    body: bytes | None = None
    """The body of every request (sent with its ``Content-Length``); None: no body."""
    scenario: str = "hello"
    """What the answers are (:mod:`loadgen.records.scenarios`): ``hello`` is checked by
    ``kind``; any other by :func:`loadgen.scenario_checks.sampled_check` on one answer in
    ``check_every``, whatever ``kind`` says."""
    queries: int = 1
    """The rows a ``queries`` answer holds (the clamped ``?n=`` of ``path``)."""
    protocol: str = "http1"
    """``http1``, ``h2c`` (HTTP/2 with prior knowledge) or ``h2`` (HTTP/2 over TLS, ALPN)."""
    streams: int = 1
    """Concurrent streams per connection (HTTP/2 only; HTTP/1.1 has one request in flight)."""
    message_size: int = 64
    """``ws-echo``: the bytes of every message sent (and echoed)."""
    message_binary: bool = False
    """``ws-echo``: binary messages instead of text ones."""
    server_name: str | None = None
    """``h2``: the TLS server name sent (SNI); None: ``host``. The certificate is not checked
    (the suite made it for this run)."""

    def __post_init__(self) -> None:
        problems = common_problems(
            host=self.host,
            port=self.port,
            clients=self.connections,
            duration=self.duration,
            warmup=self.warmup,
            timeout=self.timeout,
            kind=self.kind,
            check_every=self.check_every,
            cpus=self.cpus,
        )
        if self.rate is not None and not (self.rate >= MIN_RATE and math.isfinite(self.rate)):
            problems.append(
                f"rate must be a finite number of requests/s, at least {MIN_RATE:g} "
                "(or None for a closed loop)"
            )
        if self.scenario not in SCENARIOS and self.scenario not in WS_SCENARIOS:
            problems.append(
                f"scenario must be one of {', '.join(SCENARIOS + tuple(sorted(WS_SCENARIOS)))}"
            )
        if self.protocol not in PROTOCOLS:
            problems.append(f"protocol must be one of {', '.join(PROTOCOLS)}")
        if self.streams < 1:
            problems.append("streams must be at least 1")
        elif self.streams > 1 and self.protocol not in H2_PROTOCOLS:
            problems.append(f"streams > 1 needs HTTP/2 (protocol is {self.protocol})")
        if self.scenario in WS_SCENARIOS and self.protocol != "http1":
            problems.append(f"{self.scenario} runs over HTTP/1.1 (protocol is {self.protocol})")
        if not 1 <= self.message_size <= 16 * 1024 * 1024:
            problems.append("message_size must be 1..16 MiB")
        if not 1 <= self.queries <= MAX_QUERIES:
            problems.append(f"queries must be 1..{MAX_QUERIES}")
        if self.procs < 1:
            problems.append("procs must be at least 1")
        if self.procs > self.connections:
            problems.append(f"{self.procs} procs need at least as many connections")
        if not problems:
            try:  # the request is checked where it is built (no header or request smuggled)
                self.request()
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("invalid LoadSpec: " + "; ".join(problems))

    @property
    def authority(self) -> str:
        """The ``Host`` header (HTTP/1.1, WebSocket) or ``:authority`` (HTTP/2) sent."""
        return self.host_header or host_header_value(self.host, self.port)

    def request(self) -> bytes:
        """The bytes of the request every connection sends (raises ValueError when invalid)."""
        host_header = self.host_header or host_header_value(self.host, self.port)
        return encode_request(
            self.path,
            host_header,
            close=not self.keepalive,
            method=self.method,
            headers=self.headers,
            body=self.body,
        )

    @property
    def client_cpus(self) -> int:
        """How many CPUs the client can use: one per process, at most the CPUs it is given."""
        if self.cpus:
            return min(self.procs, len(set(self.cpus)))
        return min(self.procs, os.cpu_count() or 1)
