"""``fwbench bisect``'s engine: the two package sets, the candidate environments, their locks.

A bisect compares a **good** package set with a **bad** one (each from a run folder's
``locks/<series>.txt``, else from its verdicts' installed packages in ``run.json``, or from a
lock file) and builds **candidates**: good with one changed package moved to its bad version
(added, or removed). When that one change cannot be installed consistently (the variant lock
does not resolve: the new version needs another changed package), it is paired with the first
other change that makes it resolve. When more than :data:`MAX_SINGLES` packages changed, the
plan is a binary search: two candidates holding half of the changed set each, and the caller
recurses into the half that reproduces the drop.

Every candidate is a target derived from the real one with ``lock=`` (built from that lock,
named ``<target>@<label>``: ``flask@good``, ``flask@bad``, ``flask@+werkzeug``,
``flask@half-a``), so the runner measures them all interleaved in one run. Deciding which
candidate reproduces the drop is the caller's (commands/bisect.py, with the within-run gate).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen.config import Config, LoadSetting, to_dict
from loadgen.envs import EnvError
from loadgen.locks import LOCKS_DIR, channel_target, compile_lock, lock_file
from loadgen.records import RecordError, read_header
from loadgen.records.packages import PackageChange, norm_name, package_map, parse_lock
from loadgen.targets import Target

MAX_SINGLES = 6  # more changed packages than this: binary search over halves first
VARIANTS_DIR = "variants"  # in a bisect's folder: <label>.in and <label>.txt

Group = tuple[PackageChange, ...]


class BisectError(RuntimeError):
    """A side cannot be read, or a bisect cannot be planned: the message says why."""


@dataclass(frozen=True)
class Side:
    """One package set: where it came from, the lock text it is built from, its pins."""

    label: str  # a run id or a lock file's path
    lock_text: str
    packages: Mapping[str, str]


def side_from_lock(path: Path) -> Side:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BisectError(f"cannot read lock {path}: {exc}") from None
    pins = parse_lock(text)
    if not pins:
        raise BisectError(f"{path}: no name==version pins")
    return Side(str(path), text, pins)


def side_from_run(run_dir: Path, series: str) -> Side:
    """The package set ``series`` was measured with in ``run_dir``: its kept lock, else the
    packages its verdict found installed (written as a flat lock)."""
    kept = lock_file(run_dir / LOCKS_DIR, series)
    if kept.is_file():
        side = side_from_lock(kept)
        return Side(run_dir.name, side.lock_text, side.packages)
    try:
        header = read_header(run_dir)
    except (RecordError, OSError) as exc:
        raise BisectError(
            f"{run_dir}: no lock for {series} and no readable run.json ({exc})"
        ) from None
    for v in header.verdicts:
        if v.get("target") == series and v.get("packages"):
            pins = package_map(v["packages"])
            return Side(run_dir.name, flat_lock(pins), pins)
    raise BisectError(f"{run_dir}: neither locks/{series}.txt nor installed packages of {series}")


def flat_lock(pins: Mapping[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def run_folder(reports_dir: Path, run: str) -> Path:
    """A run given as a folder, or as a run id under ``<reports_dir>/runs/``."""
    p = Path(run)
    if p.is_dir():
        return p
    q = reports_dir / "runs" / run
    if q.is_dir():
        return q
    raise BisectError(f"no run folder {run} (nor {q})")


# --- planning ---------------------------------------------------------------------------------


def plan_groups(changes: Sequence[PackageChange], max_singles: int = MAX_SINGLES) -> list[Group]:
    """One candidate per change; more than ``max_singles`` changes: the two halves (by name)."""
    ordered = sorted(changes, key=lambda c: c.name)
    if len(ordered) <= max_singles:
        return [(c,) for c in ordered]
    mid = (len(ordered) + 1) // 2
    return [tuple(ordered[:mid]), tuple(ordered[mid:])]


@dataclass(frozen=True)
class Planned:
    """A candidate as planned: its changes (with the partner it needs, if any), its label."""

    changes: Group
    label: str
    installable: bool = True
    detail: str = ""  # why it cannot be installed, or which package it was paired with

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.changes)


def label_for(group: Group, index: int, halves: bool) -> str:
    if halves:
        return f"half-{'ab'[index]}" if index < 2 else f"part-{index + 1}"
    return "+" + "+".join(c.name for c in group)


def complete(
    groups: Sequence[Group],
    changes: Sequence[PackageChange],
    installable: Callable[[Group], str],
) -> list[Planned]:
    """Each group as a candidate that can be installed: ``installable(group)`` returns "" when
    its variant resolves, else uv's reason. A single change that does not resolve is paired
    with the first other change that makes it resolve; a group that still does not is kept,
    marked not installable, with the reason. Candidates holding the same packages are one."""
    halves = len(groups) == 2 and any(len(g) > 1 for g in groups)
    out: list[Planned] = []
    seen: set[frozenset[str]] = set()
    for i, group in enumerate(groups):
        why = installable(group)
        planned = Planned(group, label_for(group, i, halves))
        if why:
            planned = Planned(group, planned.label, False, why)
            names = {c.name for c in group}
            for other in sorted(changes, key=lambda c: c.name):
                if other.name in names:
                    continue
                both = tuple(sorted((*group, other), key=lambda c: c.name))
                if not installable(both):
                    label = planned.label if halves else label_for(both, i, False)
                    planned = Planned(both, label, True, f"needs {other.text()}")
                    break
        key = frozenset(planned.names)
        if key in seen:
            continue
        seen.add(key)
        out.append(planned)
    return out


def variant_pins(good: Mapping[str, str], group: Group) -> dict[str, str]:
    """Good's pins with the group's changes applied (a removed package left out)."""
    pins = {norm_name(k): v for k, v in good.items()}
    for c in group:
        if c.after:
            pins[c.name] = c.after
        else:
            pins.pop(c.name, None)
    return pins


_KEPT_OPTIONS = re.compile(r"^\s*(-e|--editable|--index-url|--extra-index-url|--find-links)\b")


def variant_requirements(good_text: str, pins: Mapping[str, str]) -> str:
    """A requirements file of exact pins, keeping good's editable and source lines."""
    kept = [line for line in good_text.splitlines() if _KEPT_OPTIONS.match(line)]
    return "".join(f"{line}\n" for line in kept) + flat_lock(pins)


def resolve_variant(
    target: Target, good: Side, group: Group, folder: Path, name: str, cfg: Config
) -> tuple[Path | None, str]:
    """The variant's lock, resolved by uv from exact pins (new dependencies added), in
    ``folder/<name>.txt``; (None, uv's reason) when the pins cannot be installed together."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / f"{name}.in"
    src.write_text(variant_requirements(good.lock_text, variant_pins(good.packages, group)))
    out = folder / f"{name}.txt"
    out.unlink(missing_ok=True)
    try:
        compile_lock(src, out, python_version=target.python, cfg=cfg, cwd=target.dir)
    except EnvError as exc:
        lines = [ln for ln in (exc.detail or str(exc)).splitlines() if ln.strip()]
        return None, (lines[-1].strip() if lines else str(exc))
    return out, ""


def side_target(target: Target, side: Side, folder: Path, label: str) -> Target:
    """The target built from ``side``'s lock (copied into ``folder``), named ``<t>@<label>``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{label}.txt"
    path.write_text(side.lock_text, encoding="utf-8")
    return channel_target(target, label, path)


def variant_target(target: Target, lock: Path, label: str) -> Target:
    return channel_target(target, label, lock)


def bisect_config(
    cfg: Config,
    *,
    trials: int,
    load: LoadSetting,
    connections: int,
    duration: float | None = None,
    warmup: float | None = None,
) -> Config:
    """The config one bisect round runs with: ``trials`` per environment, one load setting at
    one connection count, the pinned channel only (the candidates are their own series)."""
    ld = to_dict(load)
    ld["connections"] = [connections]
    if duration is not None:
        ld["duration"] = duration
    if warmup is not None:
        ld["warmup"] = warmup
    return cfg.override(
        **{
            "run.trials": trials,
            "run.load": [ld],
            "run.channels": ["pinned"],
            "run.cost": False,
        }
    )


def round_seconds(cfg: Config, environments: int) -> float:
    """A round's measuring time, roughly: every trial's load plus a server start and stop."""
    ld = cfg.run.load[0]
    per = ld.duration + ld.warmup + 3.0
    return environments * (cfg.run.trials * per + 5.0)
