"""``fwbench``: parse the command line, run one command.

Exit status: 0 success, 1 a target or check failed, 2 bad input (config, flags), 130 interrupted:
by Ctrl-C or by SIGTERM, which is handled exactly as Ctrl-C (:func:`sigterm_as_ctrl_c`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

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


class _Stopped:
    """Whether a SIGTERM came (for the last word on stderr)."""

    by_sigterm = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _Stopped.by_sigterm = True
    ctrl_c = signal.getsignal(signal.SIGINT)
    if callable(ctrl_c) and ctrl_c is not signal.default_int_handler:
        # Someone takes Ctrl-C its own way right now (the raw client's event loop ends its
        # window, then raises): hand this stop to it, as a Ctrl-C.
        signal.raise_signal(signal.SIGINT)
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a timer, systemd, ``kill``) stops fwbench exactly as Ctrl-C does, in any phase.

    KeyboardInterrupt is raised in the main thread, so every ``finally`` that stops a server, the
    sampler or a client runs, and finished trials are kept. The front door owns this policy:
    loadgen, used as a library, leaves signals to its caller (a process killed without cleanup
    still leaves nothing running: :mod:`loadgen.reaper`). Outside the main thread, nothing is
    installed (Python allows signal handlers only there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: Sequence[str] | None = None) -> int:
    _Stopped.by_sigterm = False
    with sigterm_as_ctrl_c():
        try:
            code = _run(argv)
        except KeyboardInterrupt:
            code = 130
            if not _Stopped.by_sigterm:
                print("fwbench: interrupted", file=sys.stderr)
    if code == 130 and _Stopped.by_sigterm:
        print("fwbench: stopped by SIGTERM (handled as Ctrl-C)", file=sys.stderr)
    return code


def _run(argv: Sequence[str] | None) -> int:
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
    return code


if __name__ == "__main__":
    sys.exit(main())
