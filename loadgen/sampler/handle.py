"""The sampler seen from fwbench: start its process, stop it, read what it wrote.

:class:`SamplerProcess` runs ``python -m loadgen.sampler <config>`` (:mod:`loadgen.sampler.child`)
as a process of its own, pinned to the client's CPUs, never the target's (it refuses to share
CPUs with a pinned target), with a clean environment (:func:`loadgen.procs.child_env`), watched
by the reaper (:mod:`loadgen.reaper`) while it runs.

Talking to it: its stdout says ``ready`` once the first sample is written; any byte on its stdin,
or EOF, asks it to take a last sample and exit. It also exits when its parent dies: EOF on the
pipe, or, if a forked process still holds the pipe, ``os.getppid()`` no longer being its parent.
Stopping is bounded: ``STOP_TIMEOUT_S``, then it is killed; the samples file is read either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

from loadgen.procs import child_env, forget, reaper_pid, spawn
from loadgen.records.samples import Sample, read_samples

START_TIMEOUT_S = 15.0  # for the sampler's first sample (a Python start on a busy VM)
STOP_TIMEOUT_S = 5.0  # for its exit once asked, then it is killed


class SamplerError(RuntimeError):
    pass


class SamplerProcess:
    """The sampler's process, seen from fwbench. Use as a context manager, or start/stop."""

    def __init__(
        self,
        *,
        target_pid: int,
        client_pid: int,
        out: Path,
        interval: float = 0.25,
        uss_every: int = 8,
        cpus: tuple[int, ...] = (),
        database_pid: int | None = None,
    ) -> None:
        """``database_pid``: a database server's root process (PostgreSQL's postmaster),
        sampled as the ``database`` role and kept out of the client's."""
        if target_pid <= 0 or client_pid <= 0:
            raise ValueError("target_pid and client_pid must be PIDs")
        if database_pid is not None and database_pid <= 0:
            raise ValueError("database_pid must be a PID")
        if not interval > 0:
            raise ValueError(f"interval must be > 0, not {interval!r}")
        if uss_every < 1:
            raise ValueError(f"uss_every must be >= 1, not {uss_every!r}")
        if any(c < 0 for c in cpus):
            raise ValueError(f"cpus must be CPU numbers, not {cpus!r}")
        self.target_pid = target_pid
        self.client_pid = client_pid
        self.database_pid = database_pid
        self.out = out
        self.interval = interval
        self.uss_every = uss_every
        self.cpus = tuple(cpus)
        self.returncode: int | None = None
        self.stderr = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._samples: list[Sample] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start it; returns once the first sample is written. Raises :class:`SamplerError`."""
        if self._proc is not None:
            raise SamplerError("this sampler was already started")
        self._check_cpus()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "target_pid": self.target_pid,
            "client_pid": self.client_pid,
            "parent_pid": os.getpid(),
            "out": str(self.out),
            "interval": self.interval,
            "uss_every": self.uss_every,
            "cpus": list(self.cpus),
            "database_pid": self.database_pid,
        }
        config["ignore"] = [reaper_pid()]  # a child of ours, but not the client
        self._proc = proc = spawn(
            [sys.executable, "-m", "loadgen.sampler", json.dumps(config)],
            env=child_env(suite=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if self.cpus:
            # Pinned from here too (no preexec_fn: not safe with threads), so the interpreter's
            # start-up is already off the target's CPUs; the sampler pins itself again.
            try:
                os.sched_setaffinity(proc.pid, self.cpus)
            except ProcessLookupError:
                pass  # it failed already: _wait_ready says why
            except OSError as exc:
                self._fail(f"cannot pin it to CPUs {list(self.cpus)}: {exc.strerror}")
        self._wait_ready(proc)

    def stop(self) -> list[Sample]:
        """Ask it to stop (bounded wait, then kill) and return every sample it wrote."""
        if self._samples is not None:
            return self._samples
        proc = self._proc
        if proc is None:
            self._samples = []
            return self._samples
        if proc.stdin is not None:
            # A byte, not only EOF: a process forked from ours may hold the pipe open too.
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(b"stop\n")
                proc.stdin.flush()
        try:
            _, err = proc.communicate(timeout=STOP_TIMEOUT_S)
            problem = f"exited with code {proc.returncode}" if proc.returncode else ""
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            problem = f"did not stop within {STOP_TIMEOUT_S:g} s and was killed"
        forget(proc)
        self.returncode = proc.returncode
        self.stderr = err.decode("utf-8", "replace")
        if problem:
            tail = self.stderr.strip().splitlines()[-1:]
            print(f"fwbench: sampler {problem}" + (f": {tail[0]}" if tail else ""), file=sys.stderr)
        try:
            self._samples = read_samples(self.out)
        except FileNotFoundError:
            self._samples = []
        return self._samples

    def __enter__(self) -> SamplerProcess:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_cpus(self) -> None:
        """Refuse to share CPUs with a target that is pinned to some of the CPUs but not all."""
        try:
            target = os.sched_getaffinity(self.target_pid)
        except OSError:
            return  # gone already: the sampler itself reports it
        mine = set(self.cpus) or os.sched_getaffinity(0)
        pinned = target < (os.sched_getaffinity(0) | set(self.cpus) | target)
        if pinned and mine & target:
            raise SamplerError(
                f"the sampler would run on CPUs {sorted(mine & target)}, which the target is "
                f"pinned to ({sorted(target)}): give it the client's CPUs"
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT_S
        got = b""
        while b"\n" not in got:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"no first sample within {START_TIMEOUT_S:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 64)
                if not chunk:
                    self._fail("it exited before its first sample")
                got += chunk
        if got.strip() != b"ready":
            self._fail(f"unexpected answer {got!r}")

    def _fail(self, reason: str) -> NoReturn:
        proc = self._proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        _, err = proc.communicate()
        forget(proc)
        self.returncode = proc.returncode
        self.stderr = err.decode("utf-8", "replace")
        self._samples = []
        tail = "\n".join(self.stderr.strip().splitlines()[-3:])
        raise SamplerError(f"sampler did not start: {reason}" + (f"\n{tail}" if tail else ""))
