"""Locust's side of fwbench: ``python -m loadgen.locust.driver {local,master,worker} ...``.

Locust is used as a library, through its Environment, runners and events. It monkey-patches
the process with gevent on import, so it only ever runs in the processes of this module, never
in fwbench's own (see :mod:`loadgen.locust.client`, which starts them).

Theory of operation
-------------------
Roles: ``local`` runs the users in this one process (locust's LocalRunner,
:mod:`~loadgen.locust.local`); ``master`` runs no users but directs workers (MasterRunner,
:mod:`~loadgen.locust.master`); ``worker`` runs users for a master (WorkerRunner,
:mod:`~loadgen.locust.worker`), started by fwbench on this machine or by
``fwbench locust-worker`` on another.

Before any load, the locustfile is imported (an error is reported as such, nothing starts) and
the target host must pass :func:`loadgen.safety.check_host`: the master checks its own, and a
worker checks the host the master gives it and refuses the run otherwise. Every request then
goes through locust's ``request`` event into a :class:`~loadgen.locust.recording.Recorder`
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
covering the whole run (warm-up included), go beside it when an output folder is given
(:mod:`~loadgen.locust.outputs`).

Protocol and report formats: :mod:`loadgen.locust.protocol`.
"""

# ruff: noqa: E402
# gevent must patch the standard library before anything imports socket, ssl or threading;
# locust would do it on import, but this module's own imports come first.
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable

import gevent
from locust import User
from locust.util.load_locustfile import load_locustfile

from loadgen.checks import KINDS
from loadgen.config import parse_cpus
from loadgen.locust.local import run_local
from loadgen.locust.master import run_master
from loadgen.locust.protocol import EXIT_LOCUSTFILE
from loadgen.locust.shared import emit
from loadgen.locust.worker import run_worker
from loadgen.locustfiles import locustfile_path

log = logging.getLogger("fwbench.locust")

ROLES: dict[str, Callable[[argparse.Namespace, list[type[User]], str], int]] = {
    "local": run_local,
    "master": run_master,
    "worker": run_worker,
}


class LocustfileError(Exception):
    """The locustfile cannot be used (missing, failing on import, or without a User class)."""


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


def _watch_parent(ppid: int) -> None:
    """A managed process never outlives fwbench: exit when the parent is gone."""
    while True:
        if os.getppid() != ppid:
            os._exit(4)
        gevent.sleep(0.5)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadgen.locust.driver")
    sub = p.add_subparsers(dest="role", required=True)
    for role in ROLES:
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
    try:
        return ROLES[args.role](args, users, path)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    # Not sys.exit: zmq's context would wait forever for messages to a peer that is gone.
    os._exit(code)
