"""What a locust run is asked to do (:class:`LocustSpec`) and how it fails (:class:`LocustError`).

Pure: no locust import (fwbench's own process builds these).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loadgen.loadspec import common_problems
from loadgen.locustfiles import locustfile_path


class LocustError(RuntimeError):
    """A locust run could not be made: ``stage`` says where, ``log_tail`` what locust said.

    Stages: ``scenario``, ``locustfile``, ``safety``, ``master``, ``workers``, ``run``.
    """

    def __init__(self, reason: str, stage: str = "run", log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage
        self.log_tail = log_tail


@dataclass(frozen=True)
class LocustSpec:
    """What to run: target, scenario, users, timeline and the locust processes."""

    host: str
    port: int
    path: str = "/hello/"
    scenario: str = "hello"
    users: int = 64
    spawn_rate: float = 0.0
    """Users started per second; 0 starts them all at once."""
    duration: float = 10.0
    warmup: float = 2.0
    workers: int = 0
    """0: one local process; N: a master and N local worker processes."""
    cpus: tuple[int, ...] = ()
    """CPUs of the locust processes (workers round robin); () leaves them unpinned."""
    kind: str | None = None
    """Body kind to check ("html" or "json") on one answer in ``check_every``; None: no check."""
    check_every: int = 100
    out_dir: Path | None = None
    """Locust's CSV and HTML, its logs and the result file go here (None: a temporary folder)."""
    master_bind_port: int = 0
    """0: a free port (locust's 5557 when external workers are expected)."""
    worker_wait: float = 30.0
    """How long the master waits for every worker to connect."""
    expect_external_workers: int = 0
    """Workers from other machines (``fwbench locust-worker --master HOST``) to wait for."""
    timeout: float = 10.0
    """Connect and answer timeout of a request (an error of kind ``timeout`` past it)."""
    allow_hosts: tuple[str, ...] = ()
    """Hosts besides loopback that may be loaded ([network] allow_hosts)."""
    locustfile: Path | None = None
    """A locustfile to run instead of the scenario's (it should use FastHttpUser)."""
    master_bind_host: str = ""
    """Where the master listens: "" means 127.0.0.1, or every interface with external workers."""

    def __post_init__(self) -> None:
        problems = common_problems(
            host=self.host,
            port=self.port,
            clients=self.users,
            clients_name="users",
            duration=self.duration,
            warmup=self.warmup,
            timeout=self.timeout,
            kind=self.kind,
            check_every=self.check_every,
            cpus=self.cpus,
        )
        if not self.path.startswith("/"):
            problems.append("path must start with '/'")
        if self.spawn_rate < 0:
            problems.append("spawn_rate must not be negative")
        if self.workers < 0 or self.expect_external_workers < 0:
            problems.append("workers must not be negative")
        if not 0 <= self.master_bind_port < 65536:
            problems.append(f"master_bind_port {self.master_bind_port} is out of range")
        if not self.worker_wait > 0:
            problems.append("worker_wait must be positive")
        if problems:
            raise ValueError("invalid LocustSpec: " + "; ".join(problems))

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or self.expect_external_workers > 0

    @property
    def local_processes(self) -> int:
        """Locust processes on this machine: the local one, or the master and its workers."""
        return 1 + self.workers if self.distributed else 1

    @property
    def client_cpus(self) -> int:
        """CPUs the local locust processes can use (one each at most: gevent is one thread)."""
        have = len(set(self.cpus)) if self.cpus else (os.cpu_count() or 1)
        return max(1, min(self.local_processes, have))


def resolve_locustfile(spec: LocustSpec) -> Path:
    """The locustfile to run; :class:`LocustError` for an unknown scenario or a missing file."""
    if spec.locustfile is not None:
        path = Path(spec.locustfile).resolve()
        if not path.is_file():
            raise LocustError(f"no locustfile at {path}", "locustfile")
        return path
    try:
        return locustfile_path(spec.scenario)
    except ValueError as exc:  # it names the known scenarios
        raise LocustError(str(exc), "scenario") from None
