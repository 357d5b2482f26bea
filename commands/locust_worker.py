"""``fwbench locust-worker --master HOST``: lend this machine's CPUs to a locust master.

The master is an ``fwbench run --client locust`` on another machine that expects external
workers; it listens on locust's port (5557 unless told otherwise). The worker joins it, runs
the users the master gives it, reports its own measurements at the end, and (unless ``--once``)
joins the next master on the same address, trial after trial, until Ctrl-C.

Locust runs in a child process (``python -m loadgen.locust.driver worker``), never in this one;
the work is :func:`loadgen.locust.external.lend`.

Load safety: the worker loads only the host the master names, and only when that host passes
:func:`loadgen.safety.check_host` here: loopback, [network] allow_hosts of this machine's
bench.toml, or a ``--allow-host`` flag.
"""

from __future__ import annotations

import argparse
import sys

from commands.common import config_from
from loadgen.config import ConfigError, parse_cpus
from loadgen.locust.external import ExternalWorker, lend
from loadgen.locust.protocol import DEFAULT_MASTER_PORT
from loadgen.locustfiles import SCENARIOS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--master", required=True, metavar="HOST", help="the master's host or address")
    p.add_argument(
        "--master-port", type=int, default=DEFAULT_MASTER_PORT, metavar="PORT",
        help=f"the master's port (default {DEFAULT_MASTER_PORT})",
    )  # fmt: skip
    p.add_argument("--scenario", default="hello", choices=SCENARIOS, help="as the master's")
    p.add_argument("--locustfile", help="a locustfile instead of the scenario's (as the master's)")
    p.add_argument("--cpus", help="pin the worker to these CPUs, e.g. 2 or 2-3")
    p.add_argument(
        "--allow-host", action="append", default=[], metavar="HOST",
        help="a host the master may have this worker load, besides loopback and bench.toml's",
    )  # fmt: skip
    p.add_argument(
        "--connect-timeout", type=float, default=60.0, metavar="S",
        help="how long to wait for a master each time (default 60)",
    )  # fmt: skip
    p.add_argument("--once", action="store_true", help="join one run, then exit")


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    try:
        cpus = parse_cpus(args.cpus) if args.cpus else ()
    except ValueError as exc:
        raise ConfigError("--cpus", str(exc), source="flag") from None
    worker = ExternalWorker(
        master=args.master,
        master_port=args.master_port,
        scenario=args.scenario,
        locustfile=args.locustfile,
        cpus=cpus,
        connect_timeout=args.connect_timeout,
        allow_hosts=(*cfg.network.allow_hosts, *args.allow_host),
    )
    return lend(worker, once=args.once, waiting=_waiting)


def _waiting() -> None:
    print("fwbench: locust-worker: waiting for the next master", file=sys.stderr, flush=True)
