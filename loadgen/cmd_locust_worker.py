"""``fwbench locust-worker --master HOST``: lend this machine's CPUs to a locust master.

The master is an ``fwbench run --client locust`` on another machine that expects external
workers; it listens on locust's port (5557 unless told otherwise). The worker joins it, runs
the users the master gives it, reports its own measurements at the end, and (unless ``--once``)
joins the next master on the same address, trial after trial, until Ctrl-C.

Locust runs in a child process (``python -m loadgen.locust_driver worker``), never in this one.
Load safety: the worker loads only the host the master names, and only when that host passes
:func:`loadgen.safety.check_host` here: loopback, [network] allow_hosts of this machine's
bench.toml, or a ``--allow-host`` flag.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from loadgen.config import ConfigError, parse_cpus
from loadgen.locustfiles import SCENARIOS
from loadgen.locustfiles.protocol import DEFAULT_MASTER_PORT, EXIT_NO_MASTER


def add_flags(p: argparse.ArgumentParser) -> None:
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


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "locust-worker", help="join a locust master (fwbench run --client locust) as a worker"
    )
    add_flags(p)


def worker_argv(args: argparse.Namespace, allowed: tuple[str, ...]) -> list[str]:
    cpus = parse_cpus(args.cpus) if args.cpus else ()
    argv = [
        sys.executable, "-m", "loadgen.locust_driver", "worker",
        "--master-host", args.master,
        "--master-port", str(args.master_port),
        "--scenario", args.scenario,
        "--connect-timeout", str(args.connect_timeout),
    ]  # fmt: skip
    if args.locustfile:
        argv += ["--locustfile", os.path.abspath(args.locustfile)]
    if cpus:
        argv += ["--cpus", ",".join(str(c) for c in cpus)]
    for host in allowed:
        argv += ["--allow-host", host]
    return argv


def run(args: argparse.Namespace) -> int:
    from loadgen.cli import config_from

    cfg = config_from(args)
    try:
        argv = worker_argv(args, (*cfg.network.allow_hosts, *args.allow_host))
    except ValueError as exc:
        raise ConfigError("--cpus", str(exc), source="flag") from None
    while True:
        code = _join(argv)
        if args.once or code not in (0, EXIT_NO_MASTER):
            return code
        print("fwbench: locust-worker: waiting for the next master", file=sys.stderr, flush=True)


def _join(argv: list[str]) -> int:
    """One worker process, to its end; Ctrl-C reaches it too and it tells the master."""
    from loadgen.locust_client import child_env

    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, env=child_env())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    """``python -m loadgen.cmd_locust_worker``: the same command without the fwbench CLI."""
    p = argparse.ArgumentParser(prog="fwbench locust-worker", description=__doc__.splitlines()[0])
    p.add_argument("--config", metavar="FILE", help="bench.toml to use (default ./bench.toml)")
    add_flags(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"fwbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
