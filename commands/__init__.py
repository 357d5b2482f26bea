"""The front door: the ``fwbench`` command and one module per subcommand.

This is the only layer that joins the two wings: :mod:`loadgen` (targets, environments,
servers, load, the run's records) and :mod:`analysis` (reports, history, gates), plus
:mod:`benchmarks` (the tools that measure the tool). See docs/architecture.md.

The registry below names every command, its module and its one-line help. ``fwbench --help``
reads only the registry; a command's module is imported when that command runs, and imports
its heavy dependencies (pandas, matplotlib, locust) inside its functions, as asv's do.

Every command module has ``add_arguments(parser)`` and ``run(args) -> int``; the work itself
is a plain function over a :class:`~loadgen.config.Config` (``bench``, ``nightly``...), callable
without argparse.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("targets", "commands.targets", "list the targets and their metadata"),
    Command("envs", "commands.envs", "build the targets' environments (cached by input hash)"),
    Command(
        "lock",
        "commands.lock",
        "re-resolve targets' locks from requirements.in (--upgrade: newest; --check)",
    ),
    Command(
        "new-target",
        "commands.new_target",
        "a new target folder copied from a working one (then edit, lock, verify)",
    ),
    Command("verify", "commands.verify", "check that targets build, serve and answer right"),
    Command("run", "commands.run", "run the load matrix and write a run directory"),
    Command("bench", "commands.bench", "build, verify, measure and report (what make bench runs)"),
    Command("report", "commands.report", "write the HTML, Markdown and JSON report of a run"),
    Command("compare", "commands.compare", "compare two runs target by target (Welch's test)"),
    Command(
        "cost",
        "commands.cost",
        "instructions per request of each target under callgrind (exact, repeatable)",
    ),
    Command(
        "bisect",
        "commands.bisect",
        "name the changed package that reproduces a drop between two runs or two locks",
    ),
    Command("check", "commands.check", "regression gates: within a run and over the history"),
    Command(
        "nightly",
        "commands.nightly",
        "build, verify, run the nightly profile, store, report, check, alert",
    ),
    Command("load", "commands.load", "send load to one URL with the raw client (like wrk)"),
    Command(
        "calibrate",
        "commands.calibrate",
        "measure the raw client against wrk on a reference server",
    ),
    Command(
        "locust-worker",
        "commands.locust_worker",
        "join a locust master (fwbench run --client locust) as a worker",
    ),
)

BY_NAME = {c.name: c for c in COMMANDS}
