"""The sampler's samples format (``samples/<trial>.jsonl``), its one reader and its one CPU rate.

Format history (``schema`` field of the header line):
- ``fwbench.samples/1``: first version.

A samples file is written by :mod:`loadgen.sampler` while a trial runs: a header line naming the
format (``{"schema": "fwbench.samples/1", "target_pid": ..., "interval": ..., ...}``), then one
:class:`Sample` per line, in the order taken, each flushed as it is written. A sampler killed
mid-write leaves at most one torn last line; :func:`read_samples` skips it.

Each sample holds two roles, ``target`` (the server's process tree) and ``client`` (the load
client's processes), and a third, ``database`` (a PostgreSQL server's postmaster and backends),
when the trial had one (an addition to version 1: absent, or null, in other files). CPU-seconds
and context switches are cumulative and never go backwards: a process that ends keeps its last
reading in its role's totals. Per-interval CPU % comes from :func:`cpu_pct_series`, the one
formula the sampler's summary and the report both use.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from loadgen.records.jsonl import RecordError, check_version, json_objects

SCHEMA = "fwbench.samples/1"  # the header line of a samples file
KNOWN_SCHEMAS = frozenset({SCHEMA})

Role = Literal["target", "client", "database"]
ROLES: tuple[Role, ...] = ("target", "client")
"""The roles every sample has (``database`` is optional: see :attr:`Sample.database`)."""


@dataclass(frozen=True)
class RoleSample:
    """One role's processes at one instant; CPU and context switches are cumulative."""

    procs: int
    cpu_user_s: float
    cpu_system_s: float
    rss_bytes: int
    uss_bytes: int | None  # None when USS was not read on this sample
    threads: int
    ctx_switches: int  # voluntary + involuntary


@dataclass(frozen=True)
class Sample:
    t: float  # time.time() when the sample was taken
    mono: float  # time.monotonic() at the same moment
    target: RoleSample
    client: RoleSample
    sys_busy_s: float  # /proc/stat: CPU-seconds busy on all CPUs since boot
    sys_total_s: float  # /proc/stat: CPU-seconds on all CPUs since boot (busy + idle + iowait)
    sampler_cpu_s: float  # the sampler's own user + system CPU-seconds since it started
    database: RoleSample | None = None  # a PostgreSQL server's processes, when sampled

    def for_role(self, role: Role) -> RoleSample:
        if role == "database":
            return self.database or _NOBODY
        return self.target if role == "target" else self.client

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["database"] is None:
            del d["database"]  # files without a database read as before
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Sample:
        data = dict(d)
        data["target"] = RoleSample(**data["target"])
        data["client"] = RoleSample(**data["client"])
        if data.get("database") is not None:
            data["database"] = RoleSample(**data["database"])
        return cls(**data)


_NOBODY = RoleSample(0, 0.0, 0.0, 0, None, 0, 0)
"""A role with no process (``database`` in a trial without a PostgreSQL server)."""


def read_samples(path: Path) -> list[Sample]:
    """The samples of a samples file, in the order taken (the header line is checked, skipped).

    A line that is not JSON (a torn last line) is skipped. Raises :class:`RecordError`, naming
    the file, for a format version this code does not know and for a line of the wrong shape.
    """
    out: list[Sample] = []
    for n, raw in json_objects(path):
        if "schema" in raw:
            try:
                check_version("samples format", raw["schema"], KNOWN_SCHEMAS)
            except RecordError as exc:
                raise RecordError(f"{path}:{n}: {exc}") from None
            continue
        try:
            out.append(Sample.from_dict(raw))
        except KeyError as exc:
            raise RecordError(f"{path}:{n}: not a sample (no {exc})") from None
        except TypeError as exc:
            raise RecordError(f"{path}:{n}: not a sample ({exc})") from None
    return out


def cpu_pct_series(
    samples: Sequence[Sample], role: Role, first: int = 0, last: int | None = None
) -> list[float | None]:
    """``role``'s CPU, % of one core, over the sampling interval of each sample: one value per
    sample, None outside ``(first, last]`` (the whole series by default; the first sample has no
    interval before it).

    The rate of an interval is the difference of the cumulative user + system CPU-seconds at its
    two ends over the difference of their times. Too short an interval is joined to a
    neighbour (see :func:`_rate_points`): every sample inside a joined interval gets its rate.
    Samples are taken in the order given (as written).
    """
    out: list[float | None] = [None] * len(samples)
    last = len(samples) - 1 if last is None else last
    if len(samples) < 2 or last <= first:
        return out
    ts = [s.t for s in samples]
    cpu = [(r := s.for_role(role)).cpu_user_s + r.cpu_system_s for s in samples]
    for i, j in itertools.pairwise(_rate_points(ts, first, last)):
        dt = ts[j] - ts[i]
        rate = max(0.0, (cpu[j] - cpu[i]) / dt * 100) if dt > 0 else None
        out[i + 1 : j + 1] = [rate] * (j - i)
    return out


def _rate_points(ts: Sequence[float], first: int, last: int) -> list[int]:
    """Sample indices from ``first`` to ``last`` whose gaps are long enough to give a rate.

    A gap shorter than half the median interval (the last sample, taken as soon as the sampler
    is stopped, often comes a few ms after a tick) cannot resolve a rate in 10 ms clock ticks:
    such a sample is joined to the interval before it.
    """
    gaps = sorted(b - a for a, b in itertools.pairwise(ts))
    shortest = gaps[len(gaps) // 2] / 2
    points = [first]
    for i in range(first + 1, last + 1):
        if ts[i] - ts[points[-1]] >= shortest:
            points.append(i)
        elif i == last and len(points) > 1:
            points[-1] = i  # the end stays: the interval before it grows
    if len(points) == 1:
        points.append(last)  # the window is inside one short interval: its rate, however rough
    return points
