"""Series names: one target measured several ways is several series, each named for its way.

A target folder (``flask``) is measured on its committed lock, by its first Python, with the
first worker count of ``[server] workers``: that series is named like the folder. Every other
way is its own series everywhere (records, report, history, alerts), named with suffixes in
this order::

    flask@latest        the latest channel (``@pre``: pre-releases)
    flask@py3.13        another interpreter the target declares (target.toml python = [...])
    flask@w4            another worker count of the sweep ([server] workers = [1, 2, 4])
    flask@latest@py3.13@w4

Pure: names in, names out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PY = re.compile(r"^py(3\.\d{1,2})$")
_WORKERS = re.compile(r"^w([1-9]\d*)$")


@dataclass(frozen=True)
class SeriesName:
    """The parts of a series name; ``python`` "" and ``workers`` 0 mean the target's default."""

    base: str
    channel: str = "pinned"
    python: str = ""
    workers: int = 0

    def __str__(self) -> str:
        parts = [self.base]
        if self.channel != "pinned":
            parts.append(self.channel)
        if self.python:
            parts.append(f"py{self.python}")
        if self.workers:
            parts.append(f"w{self.workers}")
        return "@".join(parts)

    @property
    def without_workers(self) -> str:
        """The name of the same series at the default worker count (a sweep's group)."""
        return str(SeriesName(self.base, self.channel, self.python))


def parse_series(name: str) -> SeriesName:
    """``flask@latest@w4`` → SeriesName("flask", "latest", "", 4); unknown suffixes stay in
    ``base`` (a name is never refused here)."""
    base, *suffixes = name.split("@")
    channel, python, workers = "pinned", "", 0
    rest: list[str] = []
    for s in suffixes:
        if s in ("latest", "pre") and not (python or workers or rest):
            channel = s
        elif (m := _PY.match(s)) and not (workers or rest):
            python = m.group(1)
        elif (m := _WORKERS.match(s)) and not rest:
            workers = int(m.group(1))
        else:
            rest.append(s)
    if rest:
        return SeriesName(name)
    return SeriesName(base, channel, python, workers)
