"""The shared helpers for child processes (loadgen.procs) and the shared load-settings checks.

The processes here are small ``sleep`` and ``python -c`` children, stopped within a second or
two (marked ``child_process``); nothing listens but a socket of this process.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadgen.loadspec import common_problems
from loadgen.procs import (
    free_port,
    group_alive,
    last_line,
    log_tail,
    pin_preexec,
    pinned,
    port_holder,
    stop_group,
    stop_processes,
)
from loadgen.rawclient import LoadSpec

IGNORE_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)

# --------------------------------------------------------------------------------------------
# The shared checks of load settings


def _settings(**changes: object) -> dict[str, object]:
    good: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 8000,
        "clients": 4,
        "duration": 1.0,
        "warmup": 0.0,
        "timeout": 10.0,
        "kind": None,
        "check_every": 1,
        "cpus": (0,),
    }
    return good | changes


def test_common_problems_accepts_good_settings() -> None:
    assert common_problems(**_settings()) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"host": ""}, "host is empty"),
        ({"port": 0}, "port 0 is out of range"),
        ({"port": 65536}, "port 65536 is out of range"),
        ({"clients": 0}, "connections must be at least 1"),
        ({"duration": 0.0}, "duration"),
        ({"duration": math.nan}, "duration"),
        ({"duration": math.inf}, "duration"),
        ({"warmup": -1.0}, "warmup"),
        ({"warmup": math.nan}, "warmup"),
        ({"warmup": math.inf}, "warmup"),
        ({"timeout": 0.0}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"kind": "xml"}, "kind must be one of"),
        ({"check_every": 0}, "check_every must be at least 1"),
        ({"cpus": (0, -1)}, "cpus must not be negative"),
    ],
)
def test_common_problems_names_each_bad_value(changes: dict[str, object], phrase: str) -> None:
    problems = common_problems(**_settings(**changes))  # type: ignore[arg-type]
    assert len(problems) == 1 and phrase in problems[0]


def test_common_problems_calls_clients_by_their_name() -> None:
    problems = common_problems(**_settings(clients=0), clients_name="users")  # type: ignore[arg-type]
    assert problems == ["users must be at least 1"]


@pytest.mark.parametrize("field", ["duration", "warmup"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_load_spec_refuses_durations_that_are_not_finite(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"invalid LoadSpec: {field}"):
        LoadSpec(host="127.0.0.1", port=8000, **{field: value})  # type: ignore[arg-type]


def test_load_spec_keeps_its_own_checks() -> None:
    with pytest.raises(ValueError, match="3 procs need at least as many connections"):
        LoadSpec(host="127.0.0.1", port=8000, connections=2, procs=3)
    with pytest.raises(ValueError, match="rate must be a finite number of requests/s"):
        LoadSpec(host="127.0.0.1", port=8000, rate=math.nan)


# --------------------------------------------------------------------------------------------
# Ports


def test_free_port_can_be_bound_and_a_held_one_is_named() -> None:
    port = free_port()
    assert port_holder("127.0.0.1", port) is None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        held = port_holder("127.0.0.1", port)
    assert held is not None and held.startswith(f"port {port} is already")


# --------------------------------------------------------------------------------------------
# Pinning


def test_pinned_restores_the_cpu_set() -> None:
    before = os.sched_getaffinity(0)
    cpu = min(before)
    with pinned((cpu,)):
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before
    with pinned(()):
        assert os.sched_getaffinity(0) == before


@pytest.mark.child_process
def test_pin_preexec_pins_the_child_only() -> None:
    before = os.sched_getaffinity(0)
    cpu = max(before)
    assert pin_preexec(()) is None
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        preexec_fn=pin_preexec((cpu,)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"[{cpu}]"
    assert os.sched_getaffinity(0) == before


# --------------------------------------------------------------------------------------------
# Stopping


@pytest.mark.child_process
def test_stop_group_stops_the_whole_group_with_sigterm() -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True)
    deadline = time.monotonic() + 10.0  # both sleeps started: the whole tree is what is stopped
    while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    report = stop_group(proc, grace=5.0)
    assert report.signal == "SIGTERM" and report.left == ()
    assert report.exit_code is not None
    assert not group_alive(proc.pid)


@pytest.mark.child_process
def test_stop_group_kills_what_ignores_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", IGNORE_TERM], stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    report = stop_group(proc, {proc.pid}, grace=0.3)
    proc.stdout.close()
    assert report.signal == "SIGKILL" and report.left == ()
    assert report.exit_code == -9
    assert not group_alive(proc.pid)


@pytest.mark.child_process
def test_stop_processes_terms_kills_and_closes_pipes() -> None:
    polite = subprocess.Popen(["sleep", "60"], stdin=subprocess.PIPE)
    stubborn = subprocess.Popen(
        [sys.executable, "-c", IGNORE_TERM], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    stop_processes([polite, stubborn], grace=0.3)
    assert polite.returncode == -15 and stubborn.returncode == -9
    for proc in (polite, stubborn):
        assert proc.stdin is not None and proc.stdin.closed
    assert stubborn.stdout.closed


# --------------------------------------------------------------------------------------------
# Logs


def test_log_tail_and_last_line(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "\n  \n")
    assert log_tail(log, 3) == "line 99\n\n  "
    assert log_tail(tmp_path / "missing.log") == ""
    assert last_line(log_tail(log, 3)) == "line 99"
    assert last_line("") == ""
