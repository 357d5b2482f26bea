"""What a raw client run is asked to do: :class:`LoadSpec`, checked when it is built."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from loadgen.http1 import DEFAULT_CHECK_EVERY, encode_request, host_header_value
from loadgen.loadspec import MIN_RATE, common_problems
from loadgen.records.scenarios import MAX_QUERIES, SCENARIOS


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
        if self.scenario not in SCENARIOS:
            problems.append(f"scenario must be one of {', '.join(SCENARIOS)}")
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
