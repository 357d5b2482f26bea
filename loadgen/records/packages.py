"""Package sets: what a target's environment held, and what changed between two of them.

Pure: no uv, no files but the lock text handed in (and :func:`run_locks`, the reader of a run
folder's ``locks/``). A package set is a mapping from the
normalised distribution name (PEP 503: lowercase, runs of ``-_.`` as one ``-``) to its version.
It comes from a lock (``requirements.txt``: ``name==version`` lines) or from what an
environment reports as installed (the verifier's ``packages``).

Channels: a target is measured on its committed lock (``pinned``), or on its
``requirements.in`` re-resolved at run time to the newest releases (``latest``), or to the
newest pre-releases too (``pre``). A target on a channel other than ``pinned`` is its own
series everywhere, named ``<target>@<channel>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loadgen.records.series import SeriesName, parse_series

Channel = Literal["pinned", "latest", "pre"]
CHANNELS: tuple[Channel, ...] = ("pinned", "latest", "pre")

LOCKS_DIR = "locks"
"""In a run folder: ``<series>.txt``, the lock each series was built from."""

_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def norm_name(name: str) -> str:
    """PEP 503's normalised name: ``Flask_SQLAlchemy`` and ``flask-sqlalchemy`` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def series_name(target: str, channel: str) -> str:
    """``flask`` on the pinned channel, ``flask@latest`` on the latest one."""
    return str(SeriesName(target, channel))


def split_series(series: str) -> tuple[str, str]:
    """``flask@latest`` → (``flask``, ``latest``); a plain name is on the pinned channel
    (other suffixes, ``@py3.13`` and ``@w4``: :func:`loadgen.records.series.parse_series`)."""
    parts = parse_series(series)
    return parts.base, parts.channel


def parse_lock(text: str) -> dict[str, str]:
    """The ``name==version`` pins of a lock; comments, options and ``-e`` lines are skipped."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = _LINE.match(line)
        if m:
            pins[norm_name(m.group(1))] = m.group(3)
    return pins


def package_map(pairs: Iterable[tuple[str, str]] | Iterable[Mapping[str, str]]) -> dict[str, str]:
    """A package set from (name, version) pairs or ``{"name", "version"}`` tables."""
    out: dict[str, str] = {}
    for p in pairs:
        if isinstance(p, Mapping):
            name, version = str(p.get("name") or ""), str(p.get("version") or "")
        else:
            name, version = str(p[0]), str(p[1])
        if name:
            out[norm_name(name)] = version
    return out


@dataclass(frozen=True)
class PackageChange:
    """One package whose version differs; ``before`` or ``after`` is "" when absent."""

    name: str
    before: str
    after: str

    @property
    def kind(self) -> str:
        if not self.before:
            return "added"
        if not self.after:
            return "removed"
        return "changed"

    def text(self) -> str:
        """``werkzeug 3.1.3 → 3.1.9``, ``blinker (new) 1.9.0``, ``six 1.17.0 (removed)``."""
        if not self.before:
            return f"{self.name} (new) {self.after}"
        if not self.after:
            return f"{self.name} {self.before} (removed)"
        return f"{self.name} {self.before} → {self.after}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> PackageChange:
        return cls(str(d.get("name") or ""), str(d.get("before") or ""), str(d.get("after") or ""))


def diff_packages(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[PackageChange, ...]:
    """Every package whose version differs between two sets, by name."""
    b = {norm_name(k): v for k, v in before.items()}
    a = {norm_name(k): v for k, v in after.items()}
    return tuple(
        PackageChange(name, b.get(name, ""), a.get(name, ""))
        for name in sorted(b.keys() | a.keys())
        if b.get(name, "") != a.get(name, "")
    )


def run_locks(run_dir: Path) -> dict[str, str]:
    """Series -> lock text, from ``run_dir/locks/<series>.txt`` ({} without that folder)."""
    folder = run_dir / LOCKS_DIR
    if not folder.is_dir():
        return {}
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))}
