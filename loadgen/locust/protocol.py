"""What fwbench's locust processes say to each other and to fwbench (pure: no locust import).

Driver to fwbench: the master (or the one local process) writes events on its stdout, one a
line, ``@fwbench {"event": ...}``; anything else on stdout (a locustfile's prints) is ignored.
Events, in order: ``ready`` (the locustfile imported, the runner is up; ``port`` for a master),
``workers`` (all expected workers connected), ``started`` (the window, wall clock),
``progress`` (requests completed so far, about once a second), then ``done`` (the result file
is written) or, at any point, ``error`` with a ``stage`` and a ``reason``.

Master and workers talk through locust's own channel with custom messages
(``runner.register_message`` / ``send_message``), named by the constants below: the master
sends ``SETUP`` (scenario, host, path, checks) to every worker, each answers ``HELLO`` (accepted
or refused, its clock), the master sends each its ``WINDOW`` (shifted by that worker's clock
offset), workers send ``PROGRESS`` every second, and at the end the master sends ``COLLECT``
and each worker answers ``RESULT`` with its :class:`~loadgen.locust.recording.ProcessReport`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

EVENT_PREFIX = "@fwbench "
RESULT_SCHEMA = "fwbench.locust-run/1"

SETUP = "fwbench_setup"
HELLO = "fwbench_hello"
WINDOW = "fwbench_window"
PROGRESS = "fwbench_progress"
COLLECT = "fwbench_collect"
RESULT = "fwbench_result"

SETUP_S = 10.0
"""How long a master waits for its workers to answer the setup."""

DEFAULT_MASTER_PORT = 5557
"""Locust's own default port for workers to reach the master."""

EXIT_LOCUSTFILE = 2
"""Driver exit code: the locustfile does not import (nothing was started)."""
EXIT_REFUSED = 3
"""Driver exit code: the run was refused or could not start (host, workers, port)."""
EXIT_NO_MASTER = 5
"""Driver exit code: a worker found no master within its connect timeout."""


def event_line(event: str, **data: Any) -> str:
    return EVENT_PREFIX + json.dumps({"event": event, **data}, sort_keys=True)


def parse_event(line: str) -> dict[str, Any] | None:
    """The event of one stdout line, or None for any other line."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        data = json.loads(line[len(EVENT_PREFIX) :])
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("event"), str) else None


def window(go: float, warmup: float, duration: float) -> tuple[float, float]:
    """The measured window for a load started at ``go`` (wall clock).

    It opens on the first whole second after the warm-up, so that locust's own per-second
    counts (``num_reqs_per_sec``, keyed by whole seconds) line up with it.
    """
    start = float(math.ceil(go + warmup))
    return start, start + duration


def count_in_window(per_second: Mapping[int, int], start: float, end: float) -> float:
    """Locust's per-second counts summed over ``[start, end)``; partial seconds pro rata."""
    total = 0.0
    for second, count in per_second.items():
        overlap = min(second + 1.0, end) - max(float(second), start)
        if overlap > 0:
            total += count * overlap
    return total
