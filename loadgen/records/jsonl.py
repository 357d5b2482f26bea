"""The one reader of JSON-lines files (``trials.jsonl``, ``samples/*.jsonl``).

Writers append one whole line at a time, so a writer killed mid-write leaves at most one torn
line, the last one: that line is skipped, with a warning on stderr. Any other line that is not
a JSON object is damage, not a torn write: it is refused with :class:`RecordError` naming the
file and the line, never dropped in silence.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class RecordError(ValueError):
    """A record, header or samples file this fwbench cannot read: the message names it."""


def check_version(what: str, schema: object, known: frozenset[str]) -> None:
    """Refuse a ``schema`` (a record's version) this fwbench does not read, naming the ones it
    does; ``what`` names the version ("run version", "samples format", ...)."""
    if schema not in known:
        raise RecordError(
            f"{what} {schema!r} is not one this fwbench reads "
            f"(knows {', '.join(sorted(known))}); use the fwbench that wrote it"
        )


def append_json_line(path: Path, obj: Mapping[str, Any]) -> None:
    """Append ``obj`` as one whole line and make it durable (flushed, fsynced) before returning:
    a writer killed later never tears a line it has already written."""
    line = json.dumps(obj, sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``path``."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    last = max((n for n, line in enumerate(lines, 1) if line.strip()), default=0)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            if n == last:
                print(
                    f"fwbench: {path}:{n}: skipped a torn last line (a writer stopped mid-line)",
                    file=sys.stderr,
                )
                return
            raise RecordError(f"{path}:{n}: not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise RecordError(f"{path}:{n}: expected a JSON object, not {type(value).__name__}")
        yield n, value


def read_typed(path: Path, from_dict: Callable[[dict[str, Any]], T]) -> Iterator[T]:
    """The records of a JSON-lines file, each made by ``from_dict``; a torn last line is
    skipped (:func:`json_objects`), a record this fwbench cannot read is refused, named by
    ``file:line``."""
    for n, obj in json_objects(path):
        try:
            yield from_dict(obj)
        except (RecordError, KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"{path}:{n}: {exc}") from None
