"""``fwbench calibrate``: the raw client against wrk on a fast reference server.

The tool lives with the other tools that measure the tool: :mod:`benchmarks.calibrate`.
"""

from __future__ import annotations

import argparse

from benchmarks import calibrate


def add_arguments(p: argparse.ArgumentParser) -> None:
    calibrate.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return calibrate.run(args)
