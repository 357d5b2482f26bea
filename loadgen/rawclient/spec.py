"""What a raw client run is asked to do: :class:`LoadSpec`, checked when it is built."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from loadgen.http1 import DEFAULT_CHECK_EVERY
from loadgen.loadspec import common_problems


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
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            problems.append("rate must be a positive number (or None for a closed loop)")
        if self.procs < 1:
            problems.append("procs must be at least 1")
        if self.procs > self.connections:
            problems.append(f"{self.procs} procs need at least as many connections")
        if problems:
            raise ValueError("invalid LoadSpec: " + "; ".join(problems))

    @property
    def client_cpus(self) -> int:
        """How many CPUs the client can use: one per process, at most the CPUs it is given."""
        if self.cpus:
            return min(self.procs, len(set(self.cpus)))
        return min(self.procs, os.cpu_count() or 1)
