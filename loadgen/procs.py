"""Child processes, the one way: a free port, CPU pinning, stopping for sure, the log's tail.

Every process fwbench starts (target servers, reference servers, load workers, locust
processes, wrk) goes through these helpers, so each job is written once:

- **Ports**: :func:`free_port` asks the kernel for one; :func:`port_holder` says who holds a
  configured one (and :func:`listeners` which PIDs listen on it).
- **Pinning**: :func:`pinned` pins this process for a ``with`` block and restores its CPU set
  after; :func:`pin_preexec` pins a child between fork and exec (``Popen(preexec_fn=...)``).
  An empty CPU set leaves affinity alone in both.
- **Stopping**: processes are stopped by PID or by process group, never by name.
  :func:`stop_group` is for a child started with ``start_new_session=True`` (its PID is its
  group's ID): SIGTERM to the group, wait up to ``grace`` for every member and every known PID,
  then SIGKILL the group and the stragglers, and prove nothing is left (:class:`StopReport`).
  :func:`stop_processes` is for children in our own group (load workers, locust processes):
  SIGTERM by PID, then SIGKILL, then close their pipes.
- **Logs**: :func:`log_tail` reads the last lines of a child's log for an error message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

POLL_S = 0.05
"""How often a stop checks whether the processes it signalled are gone."""
PROOF_S = 5.0
"""How long a stop waits, after SIGKILL, for the kernel to take the processes away."""


# --------------------------------------------------------------------------------------------
# Ports


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody holds right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_holder(host: str, port: int) -> str | None:
    """None when ``port`` can be bound; else who holds it, as best as can be told."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return None
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f"port {port} cannot be bound: {exc.strerror}"
    for pid in listeners(port):
        return f"port {port} is already held by pid {pid}"
    return f"port {port} is already in use"


def listeners(port: int) -> list[int]:
    """PIDs listening on TCP ``port`` (those this user may see), sorted."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return []
    return sorted(
        {
            c.pid
            for c in conns
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
        }
    )


# --------------------------------------------------------------------------------------------
# Pinning


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    """Pin this process to ``cpus`` for the block, then give it back its CPU set."""
    if not cpus:
        yield
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, old)


def pin_preexec(cpus: Sequence[int]) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child to ``cpus`` before it execs; None for no CPUs."""
    if not cpus:
        return None
    chosen = tuple(cpus)

    def pin() -> None:
        os.sched_setaffinity(0, chosen)

    return pin


# --------------------------------------------------------------------------------------------
# Stopping


@dataclass(frozen=True)
class StopReport:
    """How a process group was stopped."""

    signal: str
    """"SIGTERM" when the group left on its own, "SIGKILL" when it had to be killed."""
    stop_s: float
    exit_code: int | None
    """The leader's exit status (negative: the signal that ended it)."""
    left: tuple[int, ...]
    """PIDs still alive after everything: must be empty."""


def stop_group(
    proc: subprocess.Popen[Any], pids: Iterable[int] = frozenset(), grace: float = 5.0
) -> StopReport:
    """Stop ``proc``'s process group (it was started with ``start_new_session=True``).

    SIGTERM to the group; wait up to ``grace`` s for every member and every PID of ``pids``
    (processes of the tree that may have left the group); then SIGKILL the group and every one
    still alive, by PID, reap the leader and prove, bounded, that none is left.
    """
    started = time.monotonic()
    pgid = proc.pid  # start_new_session: the leader's PID is the group's ID
    known = set(pids)
    sig = "SIGTERM"
    _signal_group(pgid, signal.SIGTERM)
    deadline = started + grace
    while time.monotonic() < deadline:
        proc.poll()
        if not _alive(known | _members(pgid)):
            break
        time.sleep(POLL_S)
    else:
        sig = "SIGKILL"
    left = _alive(known | _members(pgid))
    if left:
        sig = "SIGKILL"
        _signal_group(pgid, signal.SIGKILL)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=PROOF_S)
    end = time.monotonic() + PROOF_S
    while (left := _alive(known | _members(pgid))) and time.monotonic() < end:
        time.sleep(POLL_S)
    return StopReport(sig, time.monotonic() - started, proc.returncode, tuple(sorted(left)))


def stop_processes(procs: Iterable[subprocess.Popen[Any]], grace: float = 2.0) -> None:
    """Stop children that share our process group, by PID: SIGTERM, wait, SIGKILL; close pipes.

    Each one still running gets SIGTERM, then up to ``grace`` s to exit, then SIGKILL; every
    one is reaped, and its stdin, stdout and stderr pipes (those it has) are closed.
    """
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
    for proc in procs:
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(PROOF_S)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (exited ones not yet reaped do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(_alive(_members(pgid)))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _members(pgid: int) -> set[int]:
    """PIDs whose process group is ``pgid`` (found by scanning, so escaped children count)."""
    out: set[int] = set()
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid:
                out.add(p.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return out


def _alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie has exited: it only waits to be reaped)."""
    out = set()
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.add(pid)
        except psutil.NoSuchProcess:
            continue
    return out


# --------------------------------------------------------------------------------------------
# Logs


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of the log at ``path`` (of its last 64 kB); "" if unreadable."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64_000))
            tail = deque(fh.read().decode("utf-8", "replace").splitlines(), maxlen=lines)
    except OSError:
        return ""
    return "\n".join(tail)


def last_line(text: str) -> str:
    """The last line of ``text`` that is not blank, stripped; "" when there is none."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
