"""The ``worker`` role: users run here for a master (locust's WorkerRunner).

Started by fwbench on this machine, or by ``fwbench locust-worker`` on another. The worker
checks the host the master names (:func:`loadgen.safety.check_host`, on this machine's rules)
and refuses the run otherwise; it counts the requests started in the window the master gives
it (on this worker's clock), flushes locust's own stats before sending its report at the end,
and stops by itself when the master goes silent.

Imports locust: only for the processes of :mod:`loadgen.locust.driver`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import time
from typing import Any

import gevent
from locust import User
from locust import runners as locust_runners
from locust.env import Environment
from locust.exception import RPCError
from locust.rpc.protocol import Message
from locust.runners import WorkerRunner

from loadgen.locust.protocol import (
    COLLECT,
    EXIT_NO_MASTER,
    EXIT_REFUSED,
    HELLO,
    PROGRESS,
    RESULT,
    SETUP,
    WINDOW,
)
from loadgen.locust.recording import Recorder
from loadgen.locust.shared import (
    HOSTNAME,
    PROGRESS_S,
    TAIL_S,
    apply_settings,
    listen,
    make_env,
    recording,
    schedule_cpu,
)
from loadgen.locustfiles.common import settings
from loadgen.safety import check_host

SELF_STOP_S = 30.0
"""A worker with no word from its master this long after its window stops its users."""
MASTER_HEARTBEAT_TIMEOUT_S = 10
"""A worker whose master went silent this long quits (locust's default: 60 s)."""

log = logging.getLogger("fwbench.locust")


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
    recorder = recording(env)
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
