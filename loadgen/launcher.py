"""Start a target's server on 127.0.0.1, pinned, in its own process group; stop it for sure.

Start: pick a free port (or take the configured one after checking nobody holds it), spawn the
server command in a new session (so its process group is ours to signal), pinned to the server
CPU set, output to a log file, with a clean environment (:func:`loadgen.envs.env_vars`: none of
fwbench's secrets), watched by the reaper (:mod:`loadgen.reaper`: the group is stopped even if
fwbench is killed). Wait, bounded, until the hello path answers 200, checking on every
poll that the process is alive; then make sure the listening socket belongs to the server's own
process tree (an answer from some other process holding the port is not our target's).

Stop (:func:`loadgen.procs.stop_group`): SIGTERM to the process group, wait up to the grace
period for every process of the tree, then SIGKILL the group and any straggler by PID, and prove
none is left.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from loadgen.config import Config
from loadgen.envs import Env, env_vars
from loadgen.procs import (
    StopReport,
    free_port,
    listeners,
    log_tail,
    port_holder,
    spawn,
    stop_group,
)
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
    # For a pass that runs the server under a tool (the cost pass: valgrind): the tool's argv
    # put before the server's command, environment variables set (or, for ones already set,
    # appended to with a space: GUNICORN_CMD_ARGS), and every start-up wait multiplied.
    argv_prefix: tuple[str, ...] = ()
    extra_env: tuple[tuple[str, str], ...] = ()
    timeout_scale: float = 1.0
    probe_timeout: float = 2.0  # for one answer while waiting for the first good one
    # server.worker_cpus = "shared": CPUs a count larger than ``cpus`` may also take (the
    # client's), in order
    spare_cpus: tuple[int, ...] = ()
    protocol: str = "http1"  # the readiness probe's: http1, h2c or h2 (a server of h2 only)

    @classmethod
    def from_config(cls, cfg: Config) -> LaunchOptions:
        s = cfg.server
        return cls(s.host, s.port, s.workers[0], cfg.cpus.server, s.startup_timeout, s.stop_grace)


DEFAULT_LAUNCH = LaunchOptions()


def server_cpus(opts: LaunchOptions, workers: int) -> tuple[int, ...]:
    """The CPUs a server of ``workers`` workers runs on: the first N of the server set, then
    of the spare (client) CPUs when shared; a set smaller than N (a library caller's) whole."""
    pool = opts.cpus + opts.spare_cpus if opts.cpus else ()
    return pool[:workers] if len(pool) >= workers else opts.cpus


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


def start(
    target: Target, env: Env, *, log_dir: Path, opts: LaunchOptions = DEFAULT_LAUNCH
) -> Server:
    """Start and wait for the first good answer; raises :class:`LaunchError` (nothing left)."""
    host, port = opts.host, opts.port
    workers = target.workers or opts.workers
    # N workers run on N CPUs, one each (a sweep's scaling is per core)
    cpus = server_cpus(opts, workers)
    if port:
        held = port_holder(host, port)
        if held:
            raise LaunchError(held)
    else:
        port = free_port(host)
    argv = target.argv(host=host, port=port, workers=workers, python=str(env.python))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{target.name}-{port}.log"
    if argv and "/" not in argv[0]:
        exe = env.bin / argv[0]
        if exe.exists():
            argv[0] = str(exe)  # the environment's own script, never one found elsewhere
    argv = [*opts.argv_prefix, *argv]
    variables = env_vars(env.path, target)
    for key, value in opts.extra_env:
        variables[key] = f"{variables[key]} {value}" if variables.get(key) else value
    with open(log_path, "wb") as log:
        try:
            proc: subprocess.Popen[bytes] = spawn(
                argv,
                env=variables,
                session=True,
                cpus=cpus,
                cwd=target.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start {argv[0]}: {exc.strerror}") from None
    server = Server(target, host, port, proc, log_path, cpus, time.monotonic())
    try:
        _wait_ready(
            server,
            (target.startup_timeout or opts.timeout) * opts.timeout_scale,
            probe_timeout=opts.probe_timeout,
            protocol=opts.protocol,
        )
        _check_owner(server)
        time.sleep(0.3)  # let the server settle before reading idle memory
        server.idle_rss_bytes = sum(_rss(p) for p in server.tree())
    except BaseException:
        server.stop(opts.stop_grace)
        raise
    return server


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def _wait_ready(
    server: Server, timeout: float, probe_timeout: float = 2.0, protocol: str = "http1"
) -> None:
    deadline = server.started_at + timeout
    last = "no answer"
    while True:
        code = server.proc.poll()
        if code is not None:
            raise LaunchError(f"server exited with code {code} during start-up", server.log_tail())
        server.tree()  # remember workers as they appear
        status = _probe(server.host, server.port, server.target.hello_path, probe_timeout, protocol)
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


def _probe(
    host: str, port: int, path: str, timeout: float = 2.0, protocol: str = "http1"
) -> int | None:
    if protocol != "http1":  # HTTP/2 (h2c, h2): loadgen.verify_h2's one blocking GET
        from loadgen.verify_h2 import fetch_h2

        try:
            status: int = fetch_h2(host, port, protocol, path, f"{host}:{port}", timeout).status
            return status
        except (OSError, ValueError):  # ValueError: H2Refused, the server speaks no HTTP/2 yet
            return None
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
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
    holders = listeners(server.port)
    if holders and not set(holders) & mine:
        raise LaunchError(
            f"port {server.port} answers, but it is held by pid {holders[0]}, not by the server",
            server.log_tail(),
        )
