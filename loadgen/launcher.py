"""Start a target's server on 127.0.0.1, pinned, in its own process group; stop it for sure.

Start: pick a free port (or take the configured one after checking nobody holds it), spawn the
server command in a new session (so its process group is ours to signal), pinned to the server
CPU set, output to a log file. Wait, bounded, until the hello path answers 200, checking on every
poll that the process is alive; then make sure the listening socket belongs to the server's own
process tree (an answer from some other process holding the port is not our target's).

Stop: SIGTERM to the process group, wait up to the grace period for every process of the tree,
then SIGKILL the group and any straggler by PID, and prove none is left.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadgen.config import Config
from loadgen.envs import Env, env_vars
from loadgen.targets import Target

POLL_S = 0.05


class LaunchError(RuntimeError):
    """The server did not come up; ``log_tail`` holds its last output lines."""

    def __init__(self, reason: str, log_tail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = log_tail


@dataclass(frozen=True)
class LaunchOptions:
    """How a target's server is started and stopped (from bench.toml's [server] and [cpus])."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port for every start
    workers: int = 1
    cpus: tuple[int, ...] = ()  # the server CPU set; () leaves affinity alone
    timeout: float = 60.0  # for the first good answer, unless the target sets its own
    stop_grace: float = 5.0  # between SIGTERM and SIGKILL

    @classmethod
    def from_config(cls, cfg: Config) -> LaunchOptions:
        s = cfg.server
        return cls(s.host, s.port, s.workers, cfg.cpus.server, s.startup_timeout, s.stop_grace)


DEFAULT_LAUNCH = LaunchOptions()


@dataclass(frozen=True)
class StopReport:
    signal: str  # "SIGTERM" when the group left on its own, "SIGKILL" when it had to be killed
    stop_s: float
    exit_code: int | None
    left: tuple[int, ...]  # PIDs still alive after everything: must be empty


@dataclass
class Server:
    """A running target server. Use as a context manager, or call :meth:`stop`."""

    target: Target
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    cpus: tuple[int, ...]
    started_at: float  # time.monotonic() at spawn
    startup_s: float = 0.0
    idle_rss_bytes: int = 0
    known_pids: set[int] = field(default_factory=set)
    stopped: StopReport | None = None

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session makes the leader's PID the group's ID

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.target.hello_path}"

    def tree(self) -> list[psutil.Process]:
        """The server's live processes (leader and descendants); remembers every PID seen."""
        try:
            leader = psutil.Process(self.proc.pid)
            procs = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            procs = []
        self.known_pids.update(p.pid for p in procs)
        return procs

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> StopReport:
        if self.stopped is None:
            self.stopped = stop_group(
                self.proc, self.known_pids | {p.pid for p in self.tree()}, grace
            )
        return self.stopped

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64_000))
            tail = deque(fh.read().decode("utf-8", "replace").splitlines(), maxlen=lines)
    except OSError:
        return ""
    return "\n".join(tail)


def free_port(host: str) -> int:
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
    for c in _listeners(port):
        return f"port {port} is already held by pid {c}"
    return f"port {port} is already in use"


def _listeners(port: int) -> list[int]:
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


def start(
    target: Target, env: Env, *, log_dir: Path, opts: LaunchOptions = DEFAULT_LAUNCH
) -> Server:
    """Start and wait for the first good answer; raises :class:`LaunchError` (nothing left)."""
    host, port, cpus = opts.host, opts.port, opts.cpus
    if port:
        held = port_holder(host, port)
        if held:
            raise LaunchError(held)
    else:
        port = free_port(host)
    argv = target.argv(host=host, port=port, workers=opts.workers, python=str(env.python))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target.name}-{port}.log"
    if argv and "/" not in argv[0]:
        exe = env.bin / argv[0]
        if exe.exists():
            argv[0] = str(exe)  # the environment's own script, never one found elsewhere
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=target.dir,
                env=env_vars(env.path, target),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_pin(cpus) if cpus else None,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start {argv[0]}: {exc.strerror}") from None
    server = Server(target, host, port, proc, log_path, cpus, time.monotonic())
    try:
        _wait_ready(server, target.startup_timeout or opts.timeout)
        _check_owner(server)
        time.sleep(0.3)  # let the server settle before reading idle memory
        server.idle_rss_bytes = sum(_rss(p) for p in server.tree())
    except BaseException:
        server.stop(opts.stop_grace)
        raise
    return server


def _pin(cpus: tuple[int, ...]):  # type: ignore[no-untyped-def]
    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = server.started_at + timeout
    last = "no answer"
    while True:
        code = server.proc.poll()
        if code is not None:
            raise LaunchError(f"server exited with code {code} during start-up", server.log_tail())
        server.tree()  # remember workers as they appear
        status = _probe(server.host, server.port, server.target.hello_path)
        if status == 200:
            server.startup_s = time.monotonic() - server.started_at
            return
        if status is not None:
            last = f"status {status}"
        if time.monotonic() > deadline:
            raise LaunchError(
                f"no good answer within {timeout:g} s (last: {last})", server.log_tail()
            )
        time.sleep(POLL_S)


def _probe(host: str, port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection(host, port, timeout=2.0)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _check_owner(server: Server) -> None:
    mine = {p.pid for p in server.tree()}
    holders = _listeners(server.port)
    if holders and not set(holders) & mine:
        raise LaunchError(
            f"port {server.port} answers, but it is held by pid {holders[0]}, not by the server",
            server.log_tail(),
        )


def stop_group(proc: subprocess.Popen[bytes], pids: set[int], grace: float) -> StopReport:
    """SIGTERM the group, wait, SIGKILL what is left (group and known PIDs); prove it is gone."""
    started = time.monotonic()
    pgid = proc.pid
    sig = "SIGTERM"
    _signal_group(pgid, signal.SIGTERM)
    deadline = started + grace
    while time.monotonic() < deadline:
        proc.poll()
        if not _alive(pids | _members(pgid)):
            break
        time.sleep(POLL_S)
    else:
        sig = "SIGKILL"
    left = _alive(pids | _members(pgid))
    if left:
        sig = "SIGKILL"
        _signal_group(pgid, signal.SIGKILL)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    end = time.monotonic() + 5
    while (left := _alive(pids | _members(pgid))) and time.monotonic() < end:
        time.sleep(POLL_S)
    return StopReport(sig, time.monotonic() - started, proc.returncode, tuple(sorted(left)))


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
    out = set()
    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                out.add(pid)
        except psutil.NoSuchProcess:
            continue
    return out
