"""The raw load client: the measuring instrument, a thin asyncio transport on uvloop.

    from loadgen.rawclient import LoadSpec, run_load
    result = run_load(LoadSpec(host="127.0.0.1", port=8000, connections=64, duration=10))

A run (:func:`run_load`) opens ``connections`` keep-alive connections, split over ``procs``
worker processes, each pinned to its CPU and running its own uvloop event loop, and returns
what was measured in its window as one :class:`~loadgen.records.LoadResult`. Ctrl-C ends it
with :class:`LoadInterrupted` (a KeyboardInterrupt) carrying what was measured until then.

The package is cut along its seams:

- :mod:`~loadgen.rawclient.spec`: :class:`LoadSpec`, what to run, checked when built (the
  checks it shares with the locust client live in :mod:`loadgen.loadspec`).
- :mod:`~loadgen.rawclient.hotloop`: the work of one process (the theory of operation: the
  timeline, the closed and open loops, the hot path, pacing and errors). Tuned code.
- :mod:`~loadgen.rawclient.fanout`: one process or several: the run split into parts, worker
  processes started, fed and stopped, their reports merged.
- ``python -m loadgen.rawclient --worker`` (:mod:`~loadgen.rawclient.__main__`) is a worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from loadgen.rawclient.fanout import (
    _merge,
    _merge_measured,
    _resolve,
    _run_in_process,
    _run_in_processes,
    _split,
)
from loadgen.rawclient.hotloop import _Interrupted
from loadgen.rawclient.spec import LoadSpec
from loadgen.records import LoadResult

__all__ = ["LoadInterrupted", "LoadResult", "LoadSpec", "run_load"]


class LoadInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a run before its window did: what was measured until then.

    A KeyboardInterrupt, so callers that stop on Ctrl-C still do. ``result`` is the window so
    far (its ``duration_s`` is the part measured), or None when the run was interrupted before
    its window began (in the warm-up); ``elapsed_s`` is the time since the run was asked for.
    """

    def __init__(self, result: LoadResult | None, elapsed_s: float) -> None:
        super().__init__()
        self.result = result
        self.elapsed_s = elapsed_s


def run_load(spec: LoadSpec, progress: Callable[[int], None] | None = None) -> LoadResult:
    """Run ``spec`` and return what was measured; blocks for warm-up + duration (+ start-up).

    ``progress`` is called from this thread about once a second with the number of answers
    completed so far (warm-up included). Ctrl-C stops the worker processes and raises
    :class:`LoadInterrupted` with the results so far.
    """
    started = time.monotonic()
    address = _resolve(spec.host, spec.port)
    parts = _split(spec, address, spec.request())
    try:
        if spec.procs == 1:
            reports = [_run_in_process(parts[0], progress)]
        else:
            reports = _run_in_processes(parts, progress)
    except _Interrupted as exc:
        partial = _merge_measured(spec, exc.reports)
        raise LoadInterrupted(partial, time.monotonic() - started) from None
    return _merge(spec, reports)
