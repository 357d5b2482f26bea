"""Locust's side of fwbench: ``python -m loadgen.locust_driver {local,master,worker} ...``.

Locust is used as a library, through its Environment, runners and events. It monkey-patches
the process with gevent on import, so it only ever runs in the processes of this module, never
in fwbench's own (see :mod:`loadgen.locust_client`, which starts them).

Theory of operation
-------------------
Roles: ``local`` runs the users in this one process (locust's LocalRunner); ``master`` runs no
users but directs workers (MasterRunner); ``worker`` runs users for a master (WorkerRunner),
started by fwbench on this machine or by ``fwbench locust-worker`` on another.

Before any load, the locustfile is imported (an error is reported as such, nothing starts) and
the target host must pass :func:`loadgen.safety.check_host`: the master checks its own, and a
worker checks the host the master gives it and refuses the run otherwise. Every request then
goes through locust's ``request`` event into a :class:`~loadgen.locustfiles.recording.Recorder`
(exact latencies, error kinds) in the process that made it.

The timeline, on the wall clock of the master (or local process)::

    go ── warm-up ── [window start ─── duration ─── window end) ── tail ── stop, collect

The window opens on the first whole second after the warm-up (so locust's per-second counts
line up with it). Requests whose start is in the window count; load goes on for ``TAIL_S``
after it so that requests started just before its end can finish. A master tells each worker
its window on the worker's own clock (the offset is measured when the worker answers the setup;
zero on the same host), collects every worker's report at the end (workers flush locust's own
stats first, then send ours; a worker that died or went missing by locust's heartbeats is
waited for no longer) and writes one result file for fwbench. Locust's CSV and HTML outputs,
covering the whole run (warm-up included), go beside it when an output folder is given.

Protocol and report formats: :mod:`loadgen.locustfiles.protocol`.
"""

# ruff: noqa: E402
# gevent must patch the standard library before anything imports socket, ssl or threading;
# locust would do it on import, but this module's own imports come first.
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import gevent
import locust
import psutil
from locust import FastHttpUser, User
from locust import runners as locust_runners
from locust.env import Environment
from locust.event import EventHook
from locust.exception import RPCError
from locust.html import get_html_report
from locust.rpc.protocol import Message
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter, stats_history
from locust.util.load_locustfile import load_locustfile

from loadgen.checks import KINDS, Kind
from loadgen.config import parse_cpus
from loadgen.locustfiles import locustfile_path
from loadgen.locustfiles.common import settings
from loadgen.locustfiles.protocol import (
    COLLECT,
    EXIT_LOCUSTFILE,
    EXIT_NO_MASTER,
    EXIT_REFUSED,
    HELLO,
    PROGRESS,
    RESULT,
    RESULT_SCHEMA,
    SETUP,
    WINDOW,
    count_in_window,
    event_line,
    window,
)
from loadgen.locustfiles.recording import ProcessReport, Recorder
from loadgen.safety import check_host

TAIL_S = 0.5
"""Load goes on this long after the window closes, for requests started in it to finish."""
SETUP_S = 10.0
"""How long a master waits for its workers to answer the setup."""
COLLECT_S = 10.0
"""How long a master waits for the workers' reports. A dead worker is not waited for: on this
host its PID is gone at once; elsewhere locust's missed heartbeats mark it missing (~4 s)."""
PROGRESS_S = 1.0
SELF_STOP_S = 30.0
"""A worker with no word from its master this long after its window stops its users."""
MASTER_HEARTBEAT_TIMEOUT_S = 10
"""A worker whose master went silent this long quits (locust's default: 60 s)."""
HOSTNAME = socket.gethostname()

log = logging.getLogger("fwbench.locust")


class LocustfileError(Exception):
    """The locustfile cannot be used (missing, failing on import, or without a User class)."""


def listen(hook: EventHook, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)  # type: ignore[no-untyped-call]  # locust's EventHook is untyped


def emit(event: str, **data: Any) -> None:
    print(event_line(event, **data), flush=True)


def load_users(scenario: str, locustfile: str | None) -> tuple[list[type[User]], str]:
    """Import the locustfile (the scenario's, unless one is given); its runnable User classes."""
    if locustfile:
        path = os.path.abspath(locustfile)
    else:
        try:
            path = str(locustfile_path(scenario))
        except ValueError as exc:
            raise LocustfileError(str(exc)) from None
    if not os.path.isfile(path):
        raise LocustfileError(f"no locustfile at {path}")
    try:
        user_classes, _shapes = load_locustfile(path)
    except BaseException as exc:  # an import may raise anything, SystemExit included
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        raise LocustfileError(f"{path} failed to import: {last}") from None
    if not user_classes:
        raise LocustfileError(f"{path} defines no runnable User class")
    return list(user_classes.values()), path


def _kind(text: str | None) -> Kind | None:
    for kind in KINDS:
        if text == kind:
            return kind
    return None


def apply_settings(
    users: list[type[User]], url: str, path: str, kind: str | None, check_every: int, timeout: float
) -> None:
    """What the scenario's users need before they start; ``url`` is the approved host."""
    settings.path = path
    settings.kind = _kind(kind)
    settings.check_every = max(1, int(check_every))
    settings.approved_host = url
    for cls in users:
        if issubclass(cls, FastHttpUser):
            cls.network_timeout = timeout
            cls.connection_timeout = timeout


def base_url(host: str, port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return f"http://{name}:{port}"


def spawn_rate(users: int, rate: float) -> float:
    """Locust's spawn rate; 0 asks for all users at once."""
    return rate if rate > 0 else float(max(users, 1))


def make_env(users: list[type[User]], path: str, url: str | None) -> Environment:
    return Environment(
        user_classes=users, host=url, events=locust.events, stop_timeout=0.0, locustfile=path
    )


def schedule_cpu(recorder: Recorder, start: float, end: float) -> None:
    now = time.time()
    gevent.spawn_later(max(0.0, start - now), recorder.mark_start)
    gevent.spawn_later(max(0.0, end - now), recorder.mark_end)


def follow(
    until: float, completed: Callable[[], int], stop: Callable[[], bool] = lambda: False
) -> None:
    """Wait until ``until`` (wall clock), reporting progress every second."""
    next_tick = time.time() + PROGRESS_S
    while (now := time.time()) < until:
        gevent.sleep(max(0.0, min(next_tick, until) - now))
        if time.time() >= next_tick:
            emit("progress", completed=completed())
            next_tick += PROGRESS_S
        if stop():
            return


class Outputs:
    """Locust's own CSV files and HTML report, kept beside the run for users who know them."""

    def __init__(self, env: Environment, out_dir: str | None) -> None:
        self.env = env
        self.out_dir = out_dir
        self.prefix = os.path.join(out_dir, "locust") if out_dir else ""
        self.writer: StatsCSVFileWriter | None = None
        self.greenlets: list[gevent.Greenlet] = []
        if env.runner is not None:
            self.greenlets.append(gevent.spawn(stats_history, env.runner))
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            self.writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, self.prefix, True)
            self.greenlets.append(gevent.spawn(self.writer.stats_writer))

    def finish(self) -> tuple[list[str], str | None]:
        """Stop the writers and write the final files; (CSV paths, HTML path)."""
        gevent.killall(self.greenlets, block=True, timeout=5)
        if self.writer is None or not self.out_dir:
            return [], None
        self.writer.close_files()
        summary = StatsCSV(self.env, PERCENTILES_TO_REPORT)
        finals: list[tuple[str, Callable[[Any], None]]] = [
            ("_stats.csv", summary.requests_csv),
            ("_failures.csv", summary.failures_csv),
            ("_exceptions.csv", summary.exceptions_csv),
        ]
        for suffix, write in finals:
            with open(self.prefix + suffix, "w", newline="", encoding="utf-8") as fh:
                write(csv.writer(fh))
        html = os.path.join(self.out_dir, "locust.html")
        try:
            text = get_html_report(self.env, show_download_link=False)  # type: ignore[no-untyped-call]
        except Exception:  # the report is a courtesy: never lose the run for it
            log.exception("locust's HTML report failed")
            html_path = None
        else:
            with open(html, "w", encoding="utf-8") as fh:
                fh.write(text)
            html_path = html
        names = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv")
        return [self.prefix + n for n in names], html_path


def write_result(
    args: argparse.Namespace,
    env: Environment,
    outputs: Outputs,
    reports: list[ProcessReport],
    *,
    mode: str,
    start: float,
    end: float,
    master_cpu_s: float,
    workers_started: int,
) -> None:
    csvs, html = outputs.finish()
    total = env.stats.total
    offset = time.monotonic() - time.time()
    result = {
        "schema": RESULT_SCHEMA,
        "mode": mode,
        "window_start": start,
        "window_end": end,
        "window_start_monotonic": start + offset,
        "window_end_monotonic": end + offset,
        "reports": [r.to_dict() for r in reports],
        "master_cpu_s": master_cpu_s,
        "workers_started": workers_started,
        "workers_finished": len(reports) if mode == "distributed" else 0,
        "locust_requests": round(count_in_window(total.num_reqs_per_sec, start, end)),
        "locust_failures": round(count_in_window(total.num_fail_per_sec, start, end)),
        "locust_requests_total": int(total.num_requests),
        "csv": csvs,
        "html": html,
    }
    tmp = args.result + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, sort_keys=True)
    os.replace(tmp, args.result)
    emit("done", result=args.result)


# --------------------------------------------------------------------------------------------
# local: one process


def run_local(args: argparse.Namespace, users: list[type[User]], path: str) -> int:
    refused = check_host(args.host, args.allow_host)
    if refused:
        emit("error", stage="safety", reason=refused)
        return EXIT_REFUSED
    url = base_url(args.host, args.port)
    apply_settings(users, url, args.path, args.kind, args.check_every, args.timeout)
    env = make_env(users, path, url)
    recorder = Recorder()
    listen(env.events.request, recorder.on_request)
    runner = env.create_local_runner()
    outputs = Outputs(env, args.out_dir)
    emit("ready", role="local", pid=os.getpid())
    start, end = window(time.time(), args.warmup, args.duration)
    recorder.set_window(start, end)
    schedule_cpu(recorder, start, end)
    runner.start(args.users, spawn_rate(args.users, args.spawn_rate))
    emit("started", window_start=start, window_end=end)
    follow(end + TAIL_S, lambda: recorder.completed)
    runner.stop()
    report = recorder.report("local", runner.client_id, HOSTNAME, os.getpid(), True)
    write_result(
        args,
        env,
        outputs,
        [report],
        mode="local",
        start=start,
        end=end,
        master_cpu_s=0.0,
        workers_started=0,
    )
    runner.quit()
    return 0


# --------------------------------------------------------------------------------------------
# master: directs workers


class Conductor:
    """The master's side of the custom messages: setup, windows, progress and reports."""

    def __init__(
        self, env: Environment, runner: MasterRunner, args: argparse.Namespace, path: str
    ) -> None:
        self.env = env
        self.runner = runner
        self.args = args
        self.phase = "connect"
        self.setup_data = {
            "locustfile": os.path.basename(path),
            "host": args.host,
            "url": base_url(args.host, args.port),
            "path": args.path,
            "kind": args.kind,
            "check_every": args.check_every,
            "timeout": args.timeout,
        }
        self.sent_setup: dict[str, float] = {}
        self.hellos: dict[str, dict[str, Any]] = {}
        self.offsets: dict[str, float] = {}
        self.windowed: set[str] = set()
        self.progress: dict[str, int] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.window: tuple[float, float] | None = None
        self.cpu = Recorder()
        runner.register_message(HELLO, self._on_hello)
        runner.register_message(PROGRESS, self._on_progress)
        runner.register_message(RESULT, self._on_result)
        listen(env.events.worker_connect, self._on_connect)

    # -- message handlers (in locust's receiving greenlet: quick, no blocking) ----------------

    def _on_connect(self, client_id: str, **_: Any) -> None:
        if self.phase in ("setup", "run") and client_id not in self.sent_setup:
            gevent.spawn(self._send_setup, client_id)  # a late worker joins the run

    def _on_hello(self, environment: Environment, msg: Message, **_: Any) -> None:
        now = time.time()
        cid = str(msg.node_id)
        data = dict(msg.data)
        sent = self.sent_setup.get(cid, now)
        same_host = data.get("hostname") == HOSTNAME
        self.offsets[cid] = 0.0 if same_host else float(data.get("time", now)) - (sent + now) / 2
        self.hellos[cid] = data
        if data.get("ok"):
            log.info(
                "worker %s:%s ready (clock offset %.3f s)",
                data.get("hostname"),
                data.get("pid"),
                self.offsets[cid],
            )
            if self.window is not None:
                gevent.spawn(self._send_window, cid)
        else:
            log.error(
                "worker %s:%s refused: %s",
                data.get("hostname"),
                data.get("pid"),
                data.get("reason"),
            )

    def _on_progress(self, environment: Environment, msg: Message, **_: Any) -> None:
        self.progress[str(msg.node_id)] = int(msg.data.get("completed", 0))

    def _on_result(self, environment: Environment, msg: Message, **_: Any) -> None:
        self.results[str(msg.node_id)] = dict(msg.data)

    # -- sends ----------------------------------------------------------------------------------

    def _send_setup(self, cid: str) -> None:
        self.sent_setup[cid] = time.time()
        self.runner.send_message(SETUP, self.setup_data, client_id=cid)

    def _send_window(self, cid: str) -> None:
        if self.window is None or cid in self.windowed:
            return
        start, end = self.window
        off = self.offsets.get(cid, 0.0)
        self.windowed.add(cid)
        self.runner.send_message(WINDOW, {"start": start + off, "end": end + off}, client_id=cid)

    # -- the steps ------------------------------------------------------------------------------

    def wait_workers(self) -> str | None:
        need = self.args.expect_workers
        deadline = time.monotonic() + self.args.worker_wait
        while self.runner.worker_count < need:
            if time.monotonic() >= deadline:
                return (
                    f"{self.runner.worker_count} of {need} workers connected "
                    f"after {self.args.worker_wait:g} s"
                )
            gevent.sleep(0.05)
        emit("workers", connected=self.runner.worker_count, expected=need)
        return None

    def setup(self) -> str | None:
        self.phase = "setup"
        for cid in list(self.runner.clients):
            self._send_setup(cid)
        deadline = time.monotonic() + SETUP_S
        while any(cid not in self.hellos for cid in self.sent_setup):
            if time.monotonic() >= deadline:
                return (
                    f"{len(self.hellos)} of {len(self.sent_setup)} workers answered the "
                    f"setup within {SETUP_S:g} s"
                )
            gevent.sleep(0.02)
        for data in self.hellos.values():
            if not data.get("ok"):
                return (
                    f"worker {data.get('hostname')} (pid {data.get('pid')}) refused the run: "
                    f"{data.get('reason')}"
                )
        return None

    def go(self) -> tuple[float, float]:
        start, end = window(time.time(), self.args.warmup, self.args.duration)
        self.window = (start, end)
        self.phase = "run"
        for cid, data in list(self.hellos.items()):
            if data.get("ok"):
                self._send_window(cid)
        self.cpu.set_window(start, end)
        schedule_cpu(self.cpu, start, end)
        rate = spawn_rate(self.args.users, self.args.spawn_rate)
        gevent.spawn(self.runner.start, self.args.users, rate)
        return start, end

    def alive(self, cid: str) -> bool:
        """Connected and not missing; a worker on this host must also still have its PID."""
        node = self.runner.clients.get(cid)
        if node is None or node.state == STATE_MISSING:
            return False
        hello = self.hellos.get(cid, {})
        if hello.get("hostname") == HOSTNAME and "pid" in hello:
            return _pid_alive(int(hello["pid"]))  # known at once, not after missed heartbeats
        return True

    def all_gone(self) -> bool:
        return self.runner.worker_count == 0

    def completed(self) -> int:
        return sum(self.progress.values())

    def collect(self) -> None:
        self.phase = "collect"
        asked = [cid for cid in self.windowed if self.alive(cid)]
        for cid in asked:
            self.runner.send_message(COLLECT, {}, client_id=cid)
        deadline = time.monotonic() + COLLECT_S
        while time.monotonic() < deadline:
            if all(cid in self.results or not self.alive(cid) for cid in asked):
                break
            gevent.sleep(0.02)
        lost = sorted(set(self.windowed) - set(self.results))
        if lost:
            log.warning("%d worker(s) did not report: %s", len(lost), ", ".join(lost))

    def reports(self) -> list[ProcessReport]:
        return [ProcessReport.from_dict(self.results[cid]) for cid in sorted(self.results)]


def _pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run_master(args: argparse.Namespace, users: list[type[User]], path: str) -> int:
    refused = check_host(args.host, args.allow_host)
    if refused:
        emit("error", stage="safety", reason=refused)
        return EXIT_REFUSED
    url = base_url(args.host, args.port)
    apply_settings(users, url, args.path, args.kind, args.check_every, args.timeout)
    env = make_env(users, path, url)
    try:
        runner = env.create_master_runner(args.bind_host, args.bind_port)
    except (SystemExit, RPCError) as exc:  # locust exits when the port is taken
        reason = f"cannot listen on {args.bind_host}:{args.bind_port} for workers ({exc})"
        emit("error", stage="master", reason=reason)
        return EXIT_REFUSED
    conductor = Conductor(env, runner, args, path)
    outputs = Outputs(env, args.out_dir)
    emit("ready", role="master", port=runner.server.port, pid=os.getpid())
    problem = conductor.wait_workers() or conductor.setup()
    if problem:
        emit("error", stage="workers", reason=problem)
        runner.quit()
        return EXIT_REFUSED
    start, end = conductor.go()
    emit("started", window_start=start, window_end=end)
    follow(end + TAIL_S, conductor.completed, conductor.all_gone)
    conductor.collect()
    runner.quit()
    write_result(
        args,
        env,
        outputs,
        conductor.reports(),
        mode="distributed",
        start=start,
        end=end,
        master_cpu_s=conductor.cpu.cpu_s,
        workers_started=len(conductor.windowed),
    )
    return 0


# --------------------------------------------------------------------------------------------
# worker: runs users for a master


class WorkerAgent:
    """The worker's side of the custom messages."""

    def __init__(
        self,
        env: Environment,
        runner: WorkerRunner,
        recorder: Recorder,
        args: argparse.Namespace,
        users: list[type[User]],
        path: str,
    ) -> None:
        self.env = env
        self.runner = runner
        self.recorder = recorder
        self.users = users
        self.locustfile = os.path.basename(path)
        self.allowed = tuple(args.allow_host)
        self.local = bool(args.local)
        self.exit_code = 0
        self.collected = False
        runner.register_message(SETUP, self._on_setup)
        runner.register_message(WINDOW, self._on_window)
        runner.register_message(COLLECT, self._on_collect)
        listen(env.events.test_start, self._on_test_start)
        gevent.spawn(self._progress)

    def _refusal(self, data: dict[str, Any]) -> str | None:
        theirs = data.get("locustfile")
        if theirs != self.locustfile:
            return f"this worker runs {self.locustfile}, the master {theirs}"
        return check_host(str(data.get("host", "")), self.allowed)

    def _on_setup(self, environment: Environment, msg: Message, **_: Any) -> None:
        data = dict(msg.data)
        reason = self._refusal(data)
        reply = {
            "ok": reason is None,
            "reason": reason or "",
            "time": time.time(),
            "hostname": HOSTNAME,
            "pid": os.getpid(),
            "local": self.local,
        }
        self.runner.send_message(HELLO, reply)
        if reason is not None:
            log.error("refusing the run: %s", reason)
            self.exit_code = EXIT_REFUSED
            gevent.spawn_later(0.5, self.leave)
            return
        apply_settings(
            self.users,
            str(data["url"]),
            str(data["path"]),
            data.get("kind"),
            int(data["check_every"]),
            float(data["timeout"]),
        )

    def _on_test_start(self, environment: Environment, **_: Any) -> None:
        if environment.host != settings.approved_host:
            log.error("asked for load on %s, which was not approved: leaving", environment.host)
            self.exit_code = EXIT_REFUSED
            gevent.spawn(self.leave)

    def _on_window(self, environment: Environment, msg: Message, **_: Any) -> None:
        start, end = float(msg.data["start"]), float(msg.data["end"])
        self.recorder.set_window(start, end)
        schedule_cpu(self.recorder, start, end)
        gevent.spawn_later(max(0.0, end + TAIL_S + SELF_STOP_S - time.time()), self._self_stop)

    def _on_collect(self, environment: Environment, msg: Message, **_: Any) -> None:
        gevent.spawn(self._collect)  # stopping users blocks: not in the receiving greenlet

    def _collect(self) -> None:
        if self.collected:
            return
        self.collected = True
        self.runner.stop()
        # Locust's own stats report, now, so that the master's stats hold every request
        # before our report arrives (messages from one worker arrive in order).
        flush = getattr(self.runner, "_send_stats", None)
        if callable(flush):
            flush()
        report = self.recorder.report(
            "worker", self.runner.client_id, HOSTNAME, os.getpid(), self.local
        )
        self.runner.send_message(RESULT, report.to_dict())

    def _self_stop(self) -> None:
        if not self.collected:
            log.error("no word from the master %g s after the window: stopping", SELF_STOP_S)
            self.runner.stop()
            self.exit_code = EXIT_REFUSED
            self.leave()

    def _progress(self) -> None:
        while True:
            gevent.sleep(PROGRESS_S)
            if settings.approved_host is None or self.collected:
                continue
            with contextlib.suppress(RPCError):
                self.runner.send_message(PROGRESS, {"completed": self.recorder.completed})

    def leave(self) -> None:
        """Tell the master we are going, and stop."""
        self.env.events.quitting.fire(environment=self.env, reverse=True)  # type: ignore[no-untyped-call]
        self.runner.quit()


def run_worker(args: argparse.Namespace, users: list[type[User]], path: str) -> int:
    locust_runners.MASTER_HEARTBEAT_TIMEOUT = MASTER_HEARTBEAT_TIMEOUT_S
    locust_runners.CONNECT_RETRY_COUNT = max(
        1, math.ceil(args.connect_timeout / locust_runners.CONNECT_TIMEOUT)
    )
    env = make_env(users, path, None)
    recorder = Recorder()
    listen(env.events.request, recorder.on_request)
    try:
        runner = env.create_worker_runner(args.master_host, args.master_port)
    except ConnectionError:
        log.error(
            "no master answered at %s:%s within %g s",
            args.master_host,
            args.master_port,
            args.connect_timeout,
        )
        return EXIT_NO_MASTER
    agent = WorkerAgent(env, runner, recorder, args, users, path)
    log.info("connected to the master at %s:%s", args.master_host, args.master_port)
    try:
        runner.greenlet.join()
    except KeyboardInterrupt:
        agent.leave()
        return 130
    return agent.exit_code


# --------------------------------------------------------------------------------------------


def _watch_parent(ppid: int) -> None:
    """A managed process never outlives fwbench: exit when the parent is gone."""
    while True:
        if os.getppid() != ppid:
            os._exit(4)
        gevent.sleep(0.5)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadgen.locust_driver")
    sub = p.add_subparsers(dest="role", required=True)
    for role in ("local", "master", "worker"):
        s = sub.add_parser(role)
        s.add_argument("--scenario", default="hello")
        s.add_argument("--locustfile", help="a locustfile to use instead of the scenario's")
        s.add_argument("--cpus", type=parse_cpus, default=(), help="pin to these CPUs")
        s.add_argument("--allow-host", action="append", default=[], help="besides loopback")
        s.add_argument("--managed", action="store_true", help="started by fwbench")
        s.add_argument("--log-level", default="INFO")
        if role == "worker":
            s.add_argument("--master-host", required=True)
            s.add_argument("--master-port", type=int, required=True)
            s.add_argument("--local", action="store_true", help="on fwbench's machine")
            s.add_argument("--connect-timeout", type=float, default=60.0)
            continue
        s.add_argument("--host", required=True)
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--path", default="/hello/")
        s.add_argument("--kind", choices=("", *KINDS), default="")
        s.add_argument("--check-every", type=int, default=100)
        s.add_argument("--timeout", type=float, default=10.0)
        s.add_argument("--users", type=int, default=64)
        s.add_argument("--spawn-rate", type=float, default=0.0)
        s.add_argument("--warmup", type=float, default=2.0)
        s.add_argument("--duration", type=float, default=10.0)
        s.add_argument("--out-dir", help="locust's CSV and HTML go here")
        s.add_argument("--result", required=True, help="where the result (JSON) goes")
        if role == "master":
            s.add_argument("--bind-host", default="127.0.0.1")
            s.add_argument("--bind-port", type=int, default=0)
            s.add_argument("--expect-workers", type=int, default=1)
            s.add_argument("--worker-wait", type=float, default=30.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.managed:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # fwbench stops us, by PID
        gevent.spawn(_watch_parent, os.getppid())
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s {args.role}[%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    try:
        users, path = load_users(args.scenario, args.locustfile)
    except LocustfileError as exc:
        log.error("%s", exc)
        if args.role != "worker":
            emit("error", stage="locustfile", reason=str(exc))
        return EXIT_LOCUSTFILE
    roles = {"local": run_local, "master": run_master, "worker": run_worker}
    try:
        return roles[args.role](args, users, path)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    # Not sys.exit: zmq's context would wait forever for messages to a peer that is gone.
    os._exit(code)
