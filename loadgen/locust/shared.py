"""What the three roles of a locust process share: settings, environment, events, the clock.

Imports locust (and so gevent): only for the processes of :mod:`loadgen.locust.driver`, which
patches the standard library before importing this.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import locust
from locust import FastHttpUser, User
from locust.env import Environment
from locust.event import EventHook

from loadgen.checks import KINDS, Kind
from loadgen.locust.protocol import event_line
from loadgen.locust.recording import Recorder
from loadgen.locustfiles.common import settings
from loadgen.safety import check_host

TAIL_S = 0.5
"""Load goes on this long after the window closes, for requests started in it to finish."""
PROGRESS_S = 1.0
HOSTNAME = socket.gethostname()


def listen(hook: EventHook, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)  # type: ignore[no-untyped-call]  # locust's EventHook is untyped


def emit(event: str, **data: Any) -> None:
    """An event for fwbench, on stdout (:func:`loadgen.locust.protocol.parse_event` reads it)."""
    print(event_line(event, **data), flush=True)


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


def approved_env(
    args: argparse.Namespace, users: list[type[User]], path: str
) -> Environment | None:
    """The environment of a local process or a master, set up for the target of ``args``;
    None (an ``error`` event sent) when the target's host may not be loaded."""
    refused = check_host(args.host, args.allow_host)
    if refused:
        emit("error", stage="safety", reason=refused)
        return None
    url = base_url(args.host, args.port)
    apply_settings(users, url, args.path, args.kind, args.check_every, args.timeout)
    return make_env(users, path, url)


def recording(env: Environment) -> Recorder:
    """A recorder of every request this process makes."""
    recorder = Recorder()
    listen(env.events.request, recorder.on_request)
    return recorder


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
