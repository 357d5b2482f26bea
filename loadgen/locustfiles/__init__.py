"""fwbench's locustfiles, one per scenario, and the base user they share.

Scenarios (``loadgen/locustfiles/<scenario>.py``, each a plain locustfile on FastHttpUser):

- ``hello``: every request GETs the hello path, no wait: the comparison's test.
- ``browse``: a weighted mix a user of a real app would make (the hello route, the same route
  with a query string, a page that does not exist and must answer 404), with think time.

Nothing in this package's ``__init__`` imports locust (locust monkey-patches the process with
gevent on import, so it runs only in the processes of :mod:`loadgen.locust.driver`); the
locustfiles and :mod:`~loadgen.locustfiles.common` do. The code that runs them is in
:mod:`loadgen.locust`.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

SCENARIOS: tuple[str, ...] = ("hello", "browse")


def locustfile_path(scenario: str) -> Path:
    """The locustfile of a scenario; ValueError naming the known ones for an unknown name."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    return HERE / f"{scenario}.py"
