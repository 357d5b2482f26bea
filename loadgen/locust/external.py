"""A worker lent to a locust master on another machine: what ``fwbench locust-worker`` runs.

The master is an ``fwbench run --client locust`` on another machine that expects external
workers; it listens on locust's port (5557 unless told otherwise). :func:`lend` starts a
``python -m loadgen.locust.driver worker`` process that joins it, runs the users the master
gives it and reports its own measurements at the end; then (unless ``once``) a new one joins
the next master on the same address, trial after trial, until Ctrl-C.

Load safety: the worker loads only the host the master names, and only when that host passes
:func:`loadgen.safety.check_host` in the worker process: loopback, or one of ``allow_hosts``.

Pure of locust: this module runs in fwbench's process; locust runs in the child.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadgen.locust.launch import child_env, cpus_argv, driver_argv
from loadgen.locust.protocol import DEFAULT_MASTER_PORT, EXIT_NO_MASTER
from loadgen.procs import forget, spawn

JOIN_STOP_S = 10.0
"""After Ctrl-C, how long the worker has to tell its master and exit before being killed."""


@dataclass(frozen=True)
class ExternalWorker:
    """Where the master is, what to run, and what this machine allows."""

    master: str
    """The master's host or address."""
    master_port: int = DEFAULT_MASTER_PORT
    scenario: str = "hello"
    """As the master's."""
    locustfile: str | None = None
    """A locustfile instead of the scenario's (as the master's)."""
    cpus: tuple[int, ...] = ()
    """Pin the worker to these CPUs; () leaves it unpinned."""
    connect_timeout: float = 60.0
    """How long to wait for a master each time."""
    allow_hosts: tuple[str, ...] = ()
    """Hosts the master may have this worker load, besides loopback."""

    def argv(self) -> list[str]:
        """The worker process's command line."""
        argv = [
            *driver_argv("worker"),
            "--master-host", self.master,
            "--master-port", str(self.master_port),
            "--scenario", self.scenario,
            "--connect-timeout", str(self.connect_timeout),
        ]  # fmt: skip
        if self.locustfile:
            argv += ["--locustfile", os.path.abspath(self.locustfile)]
        argv += cpus_argv(self.cpus)
        for host in self.allow_hosts:
            argv += ["--allow-host", host]
        return argv


def lend(
    worker: ExternalWorker, once: bool = False, waiting: Callable[[], None] | None = None
) -> int:
    """Join masters, one run each, until one fails (its exit code), Ctrl-C, or ``once``.

    ``waiting`` is called before joining the next master (after a run, or when none answered
    within ``connect_timeout``).
    """
    argv = worker.argv()
    while True:
        code = join(argv)
        if once or code not in (0, EXIT_NO_MASTER):
            return code
        if waiting is not None:
            waiting()


def join(argv: Sequence[str]) -> int:
    """One worker process, to its end; Ctrl-C reaches it too and it tells the master."""
    proc = spawn(argv, env=child_env(), stdin=subprocess.DEVNULL)  # watched by the reaper
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(JOIN_STOP_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        forget(proc)
