"""The ``master`` role: no users here; workers run them (locust's MasterRunner).

The master sets up every worker (``SETUP``, answered by ``HELLO`` with the worker's clock),
tells each its window on the worker's own clock (``WINDOW``), follows their progress, collects
their reports at the end (``COLLECT``, answered by ``RESULT``) and writes one result file. A
worker that died or went missing by locust's heartbeats is waited for no longer.

Imports locust: only for the processes of :mod:`loadgen.locust.driver`.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Any

import gevent
import psutil
from locust import User
from locust.env import Environment
from locust.exception import RPCError
from locust.rpc.protocol import Message
from locust.runners import STATE_MISSING, MasterRunner

from loadgen.locust.outputs import Outputs, write_result
from loadgen.locust.protocol import (
    COLLECT,
    EXIT_REFUSED,
    HELLO,
    PROGRESS,
    RESULT,
    SETUP,
    SETUP_S,
    WINDOW,
    window,
)
from loadgen.locust.recording import ProcessReport, Recorder
from loadgen.locust.shared import (
    HOSTNAME,
    TAIL_S,
    approved_env,
    base_url,
    emit,
    follow,
    listen,
    schedule_cpu,
    spawn_rate,
)

COLLECT_S = 10.0
"""How long a master waits for the workers' reports. A dead worker is not waited for: on this
host its PID is gone at once; elsewhere locust's missed heartbeats mark it missing (~4 s)."""

log = logging.getLogger("fwbench.locust")


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
    env = approved_env(args, users, path)
    if env is None:
        return EXIT_REFUSED
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
        args.result,
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
