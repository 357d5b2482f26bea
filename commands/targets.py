"""``fwbench targets [--json]``: list the targets and their metadata."""

from __future__ import annotations

import argparse
import json

from commands.common import config_from, discover_targets
from loadgen.table import render_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    targets = discover_targets(cfg, ["all"])
    if args.json:
        print(json.dumps([t.to_dict() for t in targets], indent=2))
        return 0
    rows = [
        [
            t.name,
            t.framework,
            t.server + (f" ({t.server_worker})" if t.server_worker else ""),
            t.kind,
            t.python,
            t.hello_path,
            "yes" if t.keepalive else "no",
        ]
        for t in targets
    ]
    print(
        render_table(
            ["target", "framework", "server", "kind", "python", "path", "keep-alive"], rows
        )
    )
    return 0
