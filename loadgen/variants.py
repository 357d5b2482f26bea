"""The ways a run measures each target: channels × interpreters × worker counts.

A target folder is measured on each channel of ``run.channels`` (``pinned``: its committed lock;
``latest``/``pre``: its ``requirements.in`` resolved now, :mod:`loadgen.locks`), by each
interpreter its ``target.toml`` declares (``python = ["3.11", "3.13"]``), with each worker
count of ``[server] workers``. Every combination is its own series, named as
:mod:`loadgen.records.series` says (``flask``, ``flask@latest``, ``flask@py3.13``,
``flask@w2``...), measured next to the others in the run's interleaved order. Every series' lock
is kept in the run folder's ``locks/<series>.txt`` (the committed lock copied for ``pinned``),
so any night can be rebuilt exactly and bisected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from loadgen.config import Config
from loadgen.envs import BuildOutcome, EnvError
from loadgen.locks import lock_file, resolve_channel
from loadgen.records.series import SeriesName
from loadgen.targets import Target


@dataclass(frozen=True)
class Expansion:
    targets: tuple[Target, ...]
    failed: dict[str, BuildOutcome] = field(default_factory=dict)  # series whose lock failed


def expand(
    targets: list[Target],
    cfg: Config,
    locks: Path,
    say: Callable[[str], None] = lambda _: None,
) -> Expansion:
    """Every series of ``targets`` for this config, its lock resolved or copied into ``locks``.

    A resolution that fails is that series' build failure (in ``failed``): the run goes on."""
    out: list[Target] = []
    failed: dict[str, BuildOutcome] = {}
    counts = cfg.server.workers
    for t in targets:
        pythons = t.pythons or (t.python,)
        for ch in cfg.run.channels:
            for py in pythons:
                name = SeriesName(t.name, ch, "" if py == pythons[0] else py)
                tp = replace(t, python=py, pythons=(py,))
                lock = lock_file(locks, str(name))
                if ch == "pinned":
                    _copy_lock(tp, lock)
                    built = replace(tp, name=str(name))
                else:
                    say(f"resolve {name} (uv) ...")
                    try:
                        resolve_channel(tp, ch, locks, cfg, series=str(name))
                    except EnvError as exc:
                        failed[str(name)] = BuildOutcome(str(name), None, str(exc), exc.detail)
                        say(f"resolve {name}: FAILED: {exc}")
                    built = replace(tp, name=str(name), channel=ch, lock=lock)
                for w in counts:
                    series = replace(name, workers=0 if w == counts[0] else w)
                    out.append(replace(built, name=str(series), workers=w))
                    if str(name) in failed and str(series) != str(name):
                        failed[str(series)] = failed[str(name)]
    return Expansion(tuple(out), failed)


def _copy_lock(t: Target, dest: Path) -> None:
    if t.requirements.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(t.requirements.read_bytes())
