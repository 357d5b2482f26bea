"""Placeholder: being written (issue 15). Replaced by the real hot loop before it lands."""

from __future__ import annotations

from collections.abc import Callable

from loadgen.rawclient.hotloop import _Part, _Report


def _work(part: _Part, thread_cpu: bool, publish: Callable[[int], None] | None) -> _Report:
    raise NotImplementedError("h2loop is not written yet")
