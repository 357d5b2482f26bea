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
- **Starting**: :func:`spawn` starts every child the one way: the environment it is given
  (:func:`child_env` builds it: only what a program needs from ours, never fwbench's secrets),
  pinned before it execs, in a session of its own (``session=True``: a server, its group
  stopped by :func:`stop_group`) or in ours (load workers, the sampler, locust processes:
  :func:`stop_processes`), and watched by :mod:`loadgen.reaper`, which stops it if fwbench dies
  first, even by SIGKILL. Stopping (or :func:`forget`, for a child reaped some other way) ends
  the watch; the reaper itself exits once nothing is watched.
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from loadgen.reaper import REAPER

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
# Starting

PASSED_ENV = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "LD_LIBRARY_PATH"}
)
"""What a child takes from fwbench's environment (with every ``LC_*``). Nothing else goes:
target code is third-party code, and fwbench's environment holds secrets
(``FWBENCH_WEBHOOK_SECRET``, ``FWBENCH_WEBHOOK_URL``, a CI's tokens)."""
SUITE_ROOT = Path(__file__).resolve().parents[1]
"""The folder holding the ``loadgen`` package (the suite's own child processes import it)."""


def child_env(extra: Mapping[str, str] | None = None, *, suite: bool = False) -> dict[str, str]:
    """The environment of a child process: :data:`PASSED_ENV` and ``LC_*`` of ours, then ``extra``.

    ``suite``: the child runs the suite's own code (``python -m loadgen...``): ``PYTHONPATH``
    starts with :data:`SUITE_ROOT`, then ours.
    """
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    if suite:
        paths = (str(SUITE_ROOT), os.environ.get("PYTHONPATH", ""))
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra or {})
    return env


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    session: bool = False,
    cpus: Sequence[int] = (),
    **popen: Any,
) -> subprocess.Popen[Any]:
    """Start a child with exactly ``env`` (see :func:`child_env`), watched by the reaper.

    ``session``: in a new session, its PID its group's ID, for :func:`stop_group`; else in our
    process group, for :func:`stop_processes`. ``cpus``: pinned between fork and exec. Other
    keywords go to :class:`subprocess.Popen`; its OSError comes through as is.
    """
    REAPER.prepare()  # started first: one write, not a whole start, between child and watch
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            start_new_session=session,
            preexec_fn=pin_preexec(cpus),
            **popen,
        )
    except BaseException:
        REAPER.settle()
        raise
    try:
        REAPER.watch(proc.pid, group=session)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if session:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait()
        raise
    return proc


def reaper_pid() -> int:
    """The reaper's PID, started now if none runs: a child of fwbench that is not the client."""
    REAPER.prepare()
    pid = REAPER.pid
    assert pid is not None
    return pid


def forget(proc: subprocess.Popen[Any]) -> None:
    """``proc`` (from :func:`spawn`, in our group) exited and was reaped: no longer watched.

    :func:`stop_processes` and :func:`stop_group` do this themselves.
    """
    if proc.returncode is not None:
        REAPER.forget(proc.pid, group=False)


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
    if not left:  # (what is left stays watched: the reaper tries again when fwbench exits)
        REAPER.forget(pgid, group=True)
    return StopReport(sig, time.monotonic() - started, proc.returncode, tuple(sorted(left)))


def stop_processes(procs: Iterable[subprocess.Popen[Any]], grace: float = 2.0) -> None:
    """Stop children that share our process group, by PID: SIGTERM, wait, SIGKILL; close pipes.

    Each one still running gets SIGTERM, then up to ``grace`` s to exit, then SIGKILL; every
    one is reaped and forgotten by the reaper, and its stdin, stdout and stderr pipes (those it
    has) are closed.
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
        forget(proc)
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
