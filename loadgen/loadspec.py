"""The checks every load client's settings share, written once.

The raw client's ``LoadSpec`` and the locust client's ``LocustSpec`` each validate their own
settings in ``__post_init__``; the settings they have in common (where to send load, for how
long, how many clients, what to check, which CPUs) are checked here, so both refuse the same
bad values with the same words. Each spec adds its own checks (rate and procs for the raw
client; path, spawn rate and workers for locust) and raises one ``ValueError`` listing them all.

Durations must be finite: ``nan`` compares false with everything and ``inf`` would never end,
so both are refused here rather than found later as a hung or empty run. They must also stay
within :data:`~loadgen.config.MAX_SECONDS` (a week), as bench.toml's do: a finite but huge
timeout overflows the nanosecond clock arithmetic of the client.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from loadgen.checks import KINDS
from loadgen.config import MAX_SECONDS, MIN_RATE

__all__ = ["MAX_SECONDS", "MIN_RATE", "common_problems"]


def common_problems(
    *,
    host: str,
    port: int,
    clients: int,
    duration: float,
    warmup: float,
    timeout: float,
    kind: str | None,
    check_every: int,
    cpus: Iterable[int],
    clients_name: str = "connections",
) -> list[str]:
    """What is wrong with these shared load settings, one phrase each (empty when all good).

    ``clients`` is the number of concurrent clients, called ``clients_name`` in the messages
    ("connections" for the raw client, "users" for locust).
    """
    problems: list[str] = []
    if not host:
        problems.append("host is empty")
    if not 0 < port < 65536:
        problems.append(f"port {port} is out of range")
    if clients < 1:
        problems.append(f"{clients_name} must be at least 1")
    if not (duration > 0 and math.isfinite(duration)):
        problems.append("duration must be a positive finite number")
    if not (warmup >= 0 and math.isfinite(warmup)):
        problems.append("warmup must be a finite number, not negative")
    if not (timeout > 0 and math.isfinite(timeout)):
        problems.append("timeout must be a positive finite number")
    for name, value in (("duration", duration), ("warmup", warmup), ("timeout", timeout)):
        if math.isfinite(value) and value > MAX_SECONDS:
            problems.append(f"{name} must be at most {MAX_SECONDS:g} s (a week)")
    if kind is not None and kind not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)} or None")
    if check_every < 1:
        problems.append("check_every must be at least 1")
    if any(cpu < 0 for cpu in cpus):
        problems.append("cpus must not be negative")
    return problems
