"""``fwbench bisect TARGET --good RUN_A --bad RUN_B [--json]`` (or ``--good-lock/--bad-lock``):
which changed package reproduces a drop.

The package sets of both sides are read (:mod:`loadgen.bisect`), the changed set taken, and
candidate environments built: good plus one change at a time (paired with the change it needs
when it does not install alone; halves of the set first when more than six changed). Good,
bad and every candidate are measured interleaved in one run (``check.bisect_trials`` trials
each, 7 by default), and each is compared with good by the within-run gate (Welch's test on
requests/s, corrected across the round with ``check.correction``). A **culprit** is a
candidate whose drop against good is significant (corrected p < ``check.alpha``) and at least
half of the bad side's drop. The record is ``bisect.json`` in the bisect's folder
(``<reports_dir>/bisect/<id>/``, its rounds are run folders inside it).

``fwbench nightly`` with ``[check] auto_bisect = true`` calls :func:`nightly_bisects` after its
check: one bisect per new history alert whose series' packages changed on the change night,
within ``check.bisect_budget`` seconds in all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from analysis.gate import Finding, PairData, WithinParams, within_run
from commands.common import config_from, discover_targets
from loadgen.bisect import (
    VARIANTS_DIR,
    BisectError,
    Group,
    Planned,
    Side,
    bisect_config,
    complete,
    plan_groups,
    resolve_variant,
    round_seconds,
    run_folder,
    side_from_lock,
    side_from_run,
    side_target,
    variant_target,
)
from loadgen.config import Config, ConfigError
from loadgen.records import read_records
from loadgen.records.bisect import (
    NIGHTLY_BISECT_FILE,
    BisectRecord,
    Culprit,
    Measured,
    append_bisect,
)
from loadgen.records.packages import PackageChange, diff_packages, split_series
from loadgen.runner import Runner, new_run_id, now_iso
from loadgen.table import render_table
from loadgen.targets import Target

CULPRIT_SHARE = 0.5  # a culprit's drop is at least this share of the bad side's


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="the target (or series, e.g. flask@latest) that got slower")
    p.add_argument("--good", metavar="RUN", help="the run before the drop (folder or run id)")
    p.add_argument("--bad", metavar="RUN", help="the run with the drop (folder or run id)")
    p.add_argument("--good-lock", metavar="FILE", type=Path, help="the good side as a lock file")
    p.add_argument("--bad-lock", metavar="FILE", type=Path, help="the bad side as a lock file")
    p.add_argument("--trials", type=int, help="trials per environment (check.bisect_trials)")
    p.add_argument("--duration", type=float, help="seconds of load per trial")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per trial")
    p.add_argument("--connections", type=int, help="connections (default: [run]'s first)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument(
        "--profile",
        action="store_true",
        help="then profile good and bad with py-spy ([profile]) and draw their differential "
        "flame graph (which functions gained or lost samples per request)",
    )


# --- the decision (pure) ----------------------------------------------------------------------


def verdict_of(m: Measured, bad: Measured | None, alpha: float, *, group: bool) -> str:
    """What one candidate's figures say, against good and against the bad side."""
    if m.change_pct is None or m.p_value is None:
        return "not measured"
    if m.p_value >= alpha:
        return "no effect"
    if m.change_pct >= 0:
        return "faster"
    if bad is None or bad.verdict != "reproduced" or bad.change_pct is None:
        return "slower"
    if -m.change_pct >= CULPRIT_SHARE * -bad.change_pct:
        return "reproduces" if group else "culprit"
    return "partial"


def bad_verdict(m: Measured, alpha: float) -> str:
    if m.change_pct is None or m.p_value is None:
        return "not measured"
    return "reproduced" if m.p_value < alpha and m.change_pct < 0 else "not reproduced"


def decide(
    bad: Measured, candidates: Sequence[Measured], alpha: float, *, group: bool = False
) -> tuple[Measured, list[Measured]]:
    """The verdicts of the bad side and of every candidate."""
    bad = replace(bad, verdict=bad_verdict(bad, alpha))
    return bad, [replace(c, verdict=verdict_of(c, bad, alpha, group=group)) for c in candidates]


def culprits_of(candidates: Sequence[Measured]) -> tuple[Culprit, ...]:
    out = []
    for c in candidates:
        if c.verdict == "culprit" and c.change_pct is not None and c.p_value is not None:
            out += [
                Culprit(ch.name, ch.before, ch.after, c.change_pct, c.p_value, c.label)
                for ch in c.changes
            ]
    return tuple(out)


def effects(
    rps: Mapping[str, Sequence[float]], base: str, others: Sequence[str], params: WithinParams
) -> dict[str, Finding]:
    """Each of ``others`` against ``base`` by the within-run gate, requests/s only (one family:
    the round's tests, corrected together)."""
    pairs = [
        PairData(base, o, "bisect", 0, {"rps": list(rps.get(base, ()))}, {"rps": list(rps[o])})
        for o in others
        if o in rps
    ]
    findings, _problems = within_run(pairs, params, run_id="", date="", fingerprint="")
    return {f.target: f for f in findings if f.metric == "rps"}


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Bisector:
    cfg: Config  # the round config (bisect_config)
    target: Target  # the real target (its folder and metadata)
    good: Side
    bad: Side
    folder: Path
    out: TextIO

    def __post_init__(self) -> None:
        self._resolved: dict[frozenset[str], tuple[Path | None, str]] = {}

    def installable(self, group: Group) -> str:
        return self._resolve(group)[1]

    def _resolve(self, group: Group) -> tuple[Path | None, str]:
        key = frozenset(c.name for c in group)
        if key not in self._resolved:
            names = sorted(key)
            name = "+" + "+".join(names) if len(names) <= 3 else "group-" + _short_hash(names)
            self._resolved[key] = resolve_variant(
                self.target, self.good, group, self.folder / VARIANTS_DIR, name, self.cfg
            )
        return self._resolved[key]

    def round(self, n: int, planned: Sequence[Planned]) -> tuple[Measured, list[Measured]]:
        """Good, bad and the installable candidates, interleaved in one run; each vs good."""
        variants = self.folder / VARIANTS_DIR
        good_t = side_target(self.target, self.good, variants, "good")
        bad_t = side_target(self.target, self.bad, variants, "bad")
        todo = [p for p in planned if p.installable]
        cand_ts = []
        for p in todo:
            lock = self._resolve(p.changes)[0]
            assert lock is not None
            cand_ts.append(variant_target(self.target, lock, p.label))
        run_dir = self.folder / f"round-{n}"
        runner = Runner(self.cfg, [good_t, bad_t, *cand_ts], run_dir=run_dir)
        runner.prepare(self.out)
        runner.run(self.out)
        rps: dict[str, list[float]] = {}
        for r in read_records(runner.trials_path):
            if r.status == "ok":
                rps.setdefault(r.target, []).append(r.rps)
        check = self.cfg.check
        params = WithinParams(
            check.alpha, 0.0, check.correction, min(check.min_trials, self.cfg.run.trials)
        )
        names = [bad_t.name, *(t.name for t in cand_ts)]
        found = effects(rps, good_t.name, names, params)

        def measured(name: str, label: str, changes: Group, detail: str = "") -> Measured:
            f = found.get(name)
            return Measured(
                label=label,
                changes=changes,
                round=n,
                change_pct=f.change_pct if f else None,
                p_value=f.pvalue if f else None,
                trials=len(rps.get(name, ())),
                verdict="",
                detail=detail,
            )

        changed = diff_packages(self.good.packages, self.bad.packages)
        bad = measured(bad_t.name, "bad", changed)
        cands = []
        by_label = {t.channel: t.name for t in cand_ts}
        for p in planned:
            if p.installable:
                cands.append(measured(by_label[p.label], p.label, p.changes, p.detail))
            else:
                cands.append(Measured(p.label, p.changes, n, None, None, 0, "", p.detail))
        return bad, cands


def _short_hash(names: Sequence[str]) -> str:
    return hashlib.sha256("+".join(names).encode()).hexdigest()[:8]


def bisect(
    cfg: Config,
    target: Target,
    good: Side,
    bad: Side,
    *,
    folder: Path | None = None,
    out: TextIO | None = None,
    make: type[Bisector] | None = None,
) -> BisectRecord:
    """Bisect ``good`` → ``bad`` for ``target`` with ``cfg`` (a :func:`bisect_config`).
    ``make``: the :class:`Bisector` class that resolves and measures (tests give a stand-in)."""
    out = out or sys.stderr
    started, t0 = now_iso(), time.monotonic()
    folder = folder or cfg.path("reports_dir") / "bisect" / new_run_id()
    folder.mkdir(parents=True, exist_ok=True)
    changed = diff_packages(good.packages, bad.packages)
    ld = cfg.run.load[0]
    load = {"duration": ld.duration, "warmup": ld.warmup, "connections": ld.connections[0]}
    if not changed:
        raise BisectError("the two sides hold the same packages: nothing to bisect")
    b = (make or Bisector)(cfg, target, good, bad, folder, out)
    pool: tuple[PackageChange, ...] = changed
    measured: list[Measured] = []
    bad_side: Measured | None = None
    note = ""
    culprits: tuple[Culprit, ...] = ()
    n = 0
    while True:
        n += 1
        groups = plan_groups(pool)
        halves = any(len(g) > 1 for g in groups)
        planned = complete(groups, pool, b.installable)
        print(
            f"bisect round {n}: {len(planned)} candidate(s) over {len(pool)} change(s)",
            file=out,
            flush=True,
        )
        bad_m, cands = b.round(n, planned)
        bad_side, cands = decide(bad_m, cands, cfg.check.alpha, group=halves)
        measured += cands
        if bad_side.verdict != "reproduced":
            note = f"the drop did not reproduce in round {n} (bad vs good: {bad_side.verdict})"
            break
        if not halves:
            culprits = culprits_of(cands)
            if not culprits:
                note = "no single package reproduces the drop"
            break
        hits = sorted(
            (c for c in cands if c.verdict == "reproduces"), key=lambda c: c.change_pct or 0.0
        )
        if not hits:
            note = "neither half reproduces the drop alone (it needs changes from both)"
            break
        if len(hits) > 1:
            print(f"bisect: both halves reproduce; following {hits[0].label}", file=out)
        pool = hits[0].changes
    rec = BisectRecord(
        target=target.name,
        good=good.label,
        bad=bad.label,
        changed=changed,
        bad_side=bad_side,
        candidates=tuple(measured),
        culprits=culprits,
        trials=cfg.run.trials,
        wall_s=round(time.monotonic() - t0, 1),
        run_dir=str(folder),
        started_at=started,
        load=load,
        note=note,
    )
    rec.write(folder)
    return rec


# --- output -----------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f} %"


def _p(v: float | None) -> str:
    return "-" if v is None else f"{v:.2g}"


def _row(m: Measured) -> list[str]:
    verdict = m.verdict + (f" ({m.detail})" if m.detail else "")
    figures = [_pct(m.change_pct), _p(m.p_value), verdict]
    if m.label == "bad":
        return [f"(bad: all {len(m.changes)} changes)", "-", "-", *figures]
    if len(m.changes) == 1:
        c = m.changes[0]
        return [c.name, c.before or "(absent)", c.after or "(removed)", *figures]
    if m.label.startswith("+"):  # a pair: the package and the one it needs
        names = " + ".join(c.name for c in m.changes)
        goods = " / ".join(c.before or "-" for c in m.changes)
        bads = " / ".join(c.after or "-" for c in m.changes)
        return [names, goods, bads, *figures]
    return [f"{m.label} ({len(m.changes)} packages)", "-", "-", *figures]


def render(rec: BisectRecord) -> str:
    rows = [_row(m) for m in [*(x for x in [rec.bad_side] if x is not None), *rec.candidates]]
    table = render_table(["package", "good", "bad", "change", "p-value", "verdict"], rows)
    head = (
        f"bisect {rec.target}: {rec.good} → {rec.bad}, {len(rec.changed)} package(s) changed, "
        f"{rec.trials} trials per environment, {rec.wall_s:.0f} s"
    )
    if rec.culprits:
        found = "; ".join(
            f"{c.name} {c.good or '(new)'} → {c.bad or '(removed)'}: {c.change_pct:+.1f} % "
            f"(p = {c.p_value:.2g})"
            for c in rec.culprits
        )
        tail = f"culprit: {found}"
    else:
        tail = f"no culprit: {rec.note}"
    lines = [head, table, tail]
    if rec.flame_diff:
        lines.append("functions with the largest change (self samples per 1,000 requests):")
        lines += [
            f"  {r.get('function')}: {r.get('good')} → {r.get('bad')}" for r in rec.flame_top[:5]
        ]
        lines.append(f"differential flame graph: {Path(rec.run_dir) / rec.flame_diff}")
    return "\n".join([*lines, rec.run_dir])


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    runs = args.good or args.bad
    locks = args.good_lock or args.bad_lock
    if bool(runs) == bool(locks) or (runs and not (args.good and args.bad)):
        print(
            "fwbench bisect: give --good RUN and --bad RUN, or --good-lock and --bad-lock",
            file=sys.stderr,
        )
        return 2
    if locks and not (args.good_lock and args.bad_lock):
        print("fwbench bisect: give both --good-lock and --bad-lock", file=sys.stderr)
        return 2
    base = split_series(args.target)[0]
    target = discover_targets(cfg, [base])[0]
    try:
        if runs:
            reports = cfg.path("reports_dir")
            good = side_from_run(run_folder(reports, args.good), args.target)
            bad = side_from_run(run_folder(reports, args.bad), args.target)
        else:
            good, bad = side_from_lock(args.good_lock), side_from_lock(args.bad_lock)
        trials = args.trials or cfg.check.bisect_trials
        if trials < 2:
            raise ConfigError("--trials", "must be at least 2 (7 or more to gate)", "flag")
        rcfg = round_config(cfg, trials, args.duration, args.warmup, args.connections)
        rec = bisect(rcfg, target, good, bad)
        if args.profile:
            rec = profile_sides(rcfg, target, good, bad, rec, sys.stderr)
    except BisectError as exc:
        print(f"fwbench bisect: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rec.to_dict(), indent=2) if args.json else render(rec))
    return 0


def profile_sides(
    cfg: Config, target: Target, good: Side, bad: Side, rec: BisectRecord, out: TextIO
) -> BisectRecord:
    """A profiled trial of good and of bad (``[profile]``, py-spy, never ranked nor gated) in
    the bisect's ``profile/`` run folder, and ``flame-diff.html``: bad's flame graph per 1,000
    requests coloured by its change against good, with the table of the largest changes."""
    from analysis.flame import diff, diff_tree
    from analysis.flamegraph import diff_page
    from loadgen.records import run_profiles
    from loadgen.records.profile import parse_collapsed

    folder = Path(rec.run_dir)
    variants = folder / VARIANTS_DIR
    sides = [side_target(target, good, variants, "good"), side_target(target, bad, variants, "bad")]
    runner = Runner(cfg, sides, run_dir=folder / "profile")
    runner.prepare(out)
    runner.profile(out)
    runner.mark_finished()
    got = {r.target: r for r in run_profiles(runner.run_dir) if r.status == "ok" and r.requests}
    g, b = got.get(sides[0].name), got.get(sides[1].name)
    if g is None or b is None:
        print("bisect: no profile of both sides; no differential flame graph", file=out)
        return rec
    stacks = [
        parse_collapsed((runner.run_dir / r.stacks).read_text(encoding="utf-8")) for r in (g, b)
    ]
    rows = diff(stacks[0], stacks[1], g.requests, b.requests)
    meta = (
        f"{target.name}: bad ({rec.bad}) against good ({rec.good}); samples per 1,000 requests: "
        f"good {g.samples:,} samples over {g.requests:,} requests, "
        f"bad {b.samples:,} over {b.requests:,}"
    )
    page = folder / "flame-diff.html"
    tree = diff_tree(stacks[0], stacks[1], g.requests, b.requests)
    title = f"{target.name}: where bad spends more"
    page.write_text(diff_page(title, tree, rows, meta=meta), encoding="utf-8")
    top = tuple(
        {"function": r.function, "good": round(r.good, 2), "bad": round(r.bad, 2)}
        for r in rows[:10]
    )
    rec = replace(rec, flame_diff=page.name, flame_top=top)
    rec.write(folder)
    return rec


def round_config(
    cfg: Config,
    trials: int,
    duration: float | None = None,
    warmup: float | None = None,
    connections: int | None = None,
    load_name: str = "",
) -> Config:
    """The config of a bisect's rounds: ``[run]``'s load setting named ``load_name`` (else its
    first), at ``connections`` (else its first count)."""
    loads = [ld for ld in cfg.run.load if ld.name == load_name] or list(cfg.run.load)
    ld = loads[0]
    conns = connections or ld.connections[0]
    return bisect_config(
        cfg, trials=trials, load=ld, connections=conns, duration=duration, warmup=warmup
    )


# --- nightly ---------------------------------------------------------------------------------


def nightly_bisects(
    cfg: Config,
    findings: Sequence[Finding],
    new_keys: frozenset[str],
    out_dir: Path,
    say: Callable[[str], None],
) -> list[BisectRecord]:
    """One bisect per new history alert whose series' packages changed between the night
    before the change and the change night; ``check.bisect_budget`` seconds in all (a bisect
    that would not fit is skipped, saying so). Records go to ``out_dir/bisect.jsonl``."""
    from analysis.history import History

    deadline = time.monotonic() + cfg.check.bisect_budget
    done: list[BisectRecord] = []
    alerts = [f for f in findings if f.gate == "history" and f.alerts and f.key in new_keys]
    with History(cfg.path("history")) as history:
        before: dict[str, str] = {}
        for f in alerts:
            points = history.series(f.fingerprint).get((f.target, f.load, f.connections), [])
            ids = [p.run_id for p in points]
            if f.change_run_id in ids and ids.index(f.change_run_id) > 0:
                before[f.key] = ids[ids.index(f.change_run_id) - 1]
    seen: set[tuple[str, str, str]] = set()
    for f in alerts:
        prev = before.get(f.key)
        if prev is None:
            say(f"bisect {f.series}: no night before the change in the history")
            continue
        if (f.target, prev, f.change_run_id) in seen:
            continue
        seen.add((f.target, prev, f.change_run_id))
        try:
            reports = cfg.path("reports_dir")
            good = side_from_run(run_folder(reports, prev), f.target)
            bad = side_from_run(run_folder(reports, f.change_run_id), f.target)
        except BisectError as exc:
            say(f"bisect {f.series}: {exc}")
            continue
        changed = diff_packages(good.packages, bad.packages)
        if not changed:
            say(f"bisect {f.series}: no package changed on the change night; not bisected")
            continue
        rcfg = round_config(
            cfg, cfg.check.bisect_trials, connections=f.connections, load_name=f.load
        )
        need = round_seconds(rcfg, 2 + min(len(changed), 6))
        left = deadline - time.monotonic()
        if need > left:
            say(f"bisect {f.series}: skipped, needs ~{need:.0f} s, {max(left, 0):.0f} s left")
            continue
        target = discover_targets(cfg, [split_series(f.target)[0]])[0]
        say(f"bisect {f.series}: {len(changed)} package(s) changed, {prev} → {f.change_run_id}")
        try:
            rec = bisect(rcfg, target, good, bad)
        except BisectError as exc:
            say(f"bisect {f.series}: {exc}")
            continue
        append_bisect(out_dir / NIGHTLY_BISECT_FILE, rec)
        done.append(rec)
        say(f"bisect {f.series}: " + (summary(rec)))
    return done


def summary(rec: BisectRecord) -> str:
    if not rec.culprits:
        return f"no culprit ({rec.note})"
    return "culprit " + ", ".join(
        f"{c.name} {c.good or '(new)'} → {c.bad or '(removed)'} ({c.change_pct:+.1f} %, "
        f"p = {c.p_value:.2g})"
        for c in rec.culprits
    )
