"""The ``local`` role: the users run in this one process (locust's LocalRunner).

Imports locust: only for the processes of :mod:`loadgen.locust.driver`.
"""

from __future__ import annotations

import argparse
import os
import time

from locust import User

from loadgen.locust.outputs import Outputs, write_result
from loadgen.locust.protocol import EXIT_REFUSED, window
from loadgen.locust.shared import (
    HOSTNAME,
    TAIL_S,
    approved_env,
    emit,
    follow,
    recording,
    schedule_cpu,
    spawn_rate,
)


def run_local(args: argparse.Namespace, users: list[type[User]], path: str) -> int:
    env = approved_env(args, users, path)
    if env is None:
        return EXIT_REFUSED
    recorder = recording(env)
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
        args.result,
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
