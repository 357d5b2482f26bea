"""``fwbench new-target NAME --from TEMPLATE``: a new target folder, copied from a working one.

Copies ``targets/TEMPLATE`` to ``targets/NAME`` (the app, its template, ``target.toml``,
``requirements.in``), re-resolves the lock from ``requirements.in`` with uv (``fwbench lock``'s
engine, the config's package sources), checks the new folder loads, and prints what to edit
next: the framework's packages in ``requirements.in`` (then ``fwbench lock NAME``), the app,
``target.toml``'s metadata, and ``fwbench verify NAME``. Nothing is written when NAME exists or
is not a valid target name; a folder whose lock cannot be resolved is removed again.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys

from commands.common import config_from
from loadgen.envs import EnvError
from loadgen.locks import relock
from loadgen.targets import TargetError, load_target

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "*.sqlite", "*.log")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the new target's folder name (lowercase a-z, 0-9, '-')")
    p.add_argument("--from", dest="template", required=True, help="the target to copy")
    p.add_argument(
        "--no-lock", action="store_true", help="copy the template's lock as it is (no uv)"
    )


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    root = cfg.path("targets_dir")
    name, template = args.name, args.template
    if not _NAME.match(name):
        print(f"fwbench new-target: {name!r} is not lowercase a-z, 0-9 and '-'", file=sys.stderr)
        return 2
    src, dest = root / template, root / name
    if not (src / "target.toml").is_file():
        print(f"fwbench new-target: no target {template!r} in {root}", file=sys.stderr)
        return 2
    if dest.exists():
        print(f"fwbench new-target: {dest} exists; nothing written", file=sys.stderr)
        return 2
    shutil.copytree(src, dest, ignore=_SKIP)
    try:
        target = load_target(dest)
        if not args.no_lock:
            r = relock(target, cfg)
            (dest / "requirements.txt").write_text(r.lock_text, encoding="utf-8")
    except (EnvError, TargetError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        detail = getattr(exc, "detail", "")
        print(f"fwbench new-target: {exc}" + (f"\n{detail[-2000:]}" if detail else ""),
              file=sys.stderr)  # fmt: skip
        return 2
    print(f"created {dest} from {template} ({target.framework} on {target.server})")
    print("next:")
    print(f"  1. {dest / 'requirements.in'}: the framework's and server's packages, == pinned;")
    print(f"     then `fwbench lock {name}` writes the full lock")
    print(f"  2. {dest / 'target.toml'}: framework, framework_package, server, command, notes")
    print("  3. the app (and its template for an HTML framework): GET /hello/ as docs/targets.md")
    print(f"  4. `fwbench verify {name}`: it must say ok before the target is measured")
    return 0
