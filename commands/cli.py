"""``fwbench``: parse the command line, run one command.

Exit status: 0 success, 1 a target or check failed, 2 bad input (config, flags), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from commands import BY_NAME, COMMANDS
from loadgen.config import ConfigError


def _top_parser() -> argparse.ArgumentParser:
    width = max(len(c.name) for c in COMMANDS)
    listing = "\n".join(f"  {c.name:<{width}}  {c.help}" for c in COMMANDS)
    parser = argparse.ArgumentParser(
        prog="fwbench",
        description="Load-test and compare Python web frameworks.",
        epilog=f"commands:\n{listing}\n\n'fwbench COMMAND --help' tells more of each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="bench.toml to use (default ./bench.toml)")
    parser.add_argument("command", metavar="COMMAND", choices=list(BY_NAME), help="see below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def command_parser(name: str) -> tuple[argparse.ArgumentParser, object]:
    """The parser of one command (its module imported now) and the module."""
    cmd = BY_NAME[name]
    module = importlib.import_module(cmd.module)
    parser = argparse.ArgumentParser(prog=f"fwbench {name}", description=cmd.help)
    parser.add_argument(
        "--config", metavar="FILE", default=None, help="bench.toml to use (default ./bench.toml)"
    )
    module.add_arguments(parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    top = _top_parser().parse_args(argv)
    parser, module = command_parser(top.command)
    args = parser.parse_args(top.args)
    if args.config is None:
        args.config = top.config
    try:
        code: int = module.run(args)  # type: ignore[attr-defined]
    except ConfigError as exc:
        print(f"fwbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fwbench: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
