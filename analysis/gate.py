"""The two regression gates as pure functions: numbers in, findings out.

- **Within one run** (:func:`within_run`): a baseline and a candidate measured interleaved in
  the same run. Per (pair, load, connections, metric) a Welch's t-test on the trials; the
  p-values of all tests of the run are corrected together (Holm, or Benjamini-Hochberg); a
  test is a regression when the corrected p-value is below ``alpha`` *and* the median got
  worse by at least ``min_drop_pct``. The simulations in the design notes give this rule at
  most 0.35 % false positives with 3 % trial noise, where Welch at p < 0.05 alone gives 5 %.
- **Over the history** (:func:`history_gate`; per series :func:`open_changes`): E-Divisive
  change points (see :mod:`analysis.changepoint`) on one value per night; a change is a
  regression when it goes the wrong way and the new level has held for ``nights_held`` nights.
  Waiting for a few nights is what keeps one bad night from alerting (see docs/regressions.md
  for the measured rates).

Metrics: ``rps`` (higher is better) and ``p50`` latency (lower is better) alert; ``p99`` is
measured and reported, never alerted: it is too noisy night to night.

The **cost** metric (instructions per request under callgrind, ``cost.jsonl``) is exact and
repeatable, so it has a rule of its own, with its own threshold ``check.cost_min_change_pct``
(T, default 1 %): T is the rise that must be caught. A rise is a regression from the level
T - 2 x noise, where the noise is the A/A spread measured with the figures (the windows'
spread of each side, and, over the history, the night-to-night moves); a threshold below
4 x noise is refused (the level would not stand twice the noise clear of both zero and T),
with a message naming the spread (:func:`cost_noise_problem`). Within a run it compares the
candidate's windows with the baseline's (:func:`within_cost`); over the history it looks for
E-Divisive change points in one value per night (:func:`history_cost_gate`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from analysis.changepoint import ChangePoint, change_points
from analysis.explain import Explanation
from analysis.stats import holm, welch
from loadgen.config import Check, Pair
from loadgen.records import CostRecord, TrialRecord

if TYPE_CHECKING:  # the history store's point and key types (no sqlite needed here)
    from analysis.history import CostPoint, NightPoint, SeriesKey

Gate = Literal["within", "history"]
Correction = Literal["holm", "bh"]

METRICS = ("rps", "p50", "p99")
COST = "cost"
ALERTED = frozenset({"rps", "p50", COST})
HIGHER_IS_BETTER = {"rps": True, "p50": False, "p99": False, COST: False}
LABELS = {
    "rps": "requests/s",
    "p50": "p50 latency (ms)",
    "p99": "p99 latency (ms)",
    COST: "instructions/request",
}
COST_LOAD = "cost"
"""The ``load`` of a cost finding: one keep-alive connection, counted under callgrind."""
NOISE_FACTOR = 4.0
"""The cost threshold must be at least this many times the measured A/A spread."""

SAME_CHANGE_NIGHTS = 4
"""Two change points of one series this close (in nights) are the same change: as nights are
added, E-Divisive may move a change point by a night or two, and that must not alert again."""


@dataclass(frozen=True)
class Finding:
    """One comparison's outcome; ``regression`` says whether it passes the gate's rule."""

    gate: Gate
    target: str  # the candidate (within a run) or the target (history)
    baseline: str  # the baseline target (within a run); "" for the history gate
    load: str
    connections: int
    metric: str
    before: float  # baseline median, or the mean of the nights before the change
    after: float
    change_pct: float  # (after / before - 1) × 100, signed
    worse_pct: float  # how much worse, in percent: > 0 is worse whatever the metric
    pvalue: float  # within: corrected across the run's tests; history: the t-test's
    pvalue_raw: float
    n_before: int  # trials (within) or nights (history)
    n_after: int
    change_date: str  # YYYY-MM-DD: the run's date, or the first night at the new level
    change_run_id: str
    fingerprint: str
    regression: bool
    alerting: bool  # False for p99: reported, never alerted
    acknowledged: str = ""  # the reason from check.acknowledge when silenced
    # history: what differs between the nights either side of the change (analysis.explain)
    explanation: Explanation | None = None

    @property
    def series(self) -> str:
        return f"{self.target}/{self.load}/c{self.connections}"

    @property
    def unit(self) -> str:
        if self.metric == COST:
            return "windows" if self.gate == "within" else "nights"
        return "trials" if self.gate == "within" else "nights"

    @property
    def alerts(self) -> bool:
        """A regression on an alerted metric that nobody acknowledged."""
        return self.regression and self.alerting and not self.acknowledged

    @property
    def key(self) -> str:
        """What identifies this alert for de-duplication (see :mod:`analysis.alerts`)."""
        if self.gate == "within":
            who = f"{self.baseline}->{self.series}"
            return f"within|{self.change_run_id}|{who}|{self.metric}"
        return f"history|{self.fingerprint}|{self.series}|{self.metric}|{self.change_run_id}"

    @classmethod
    def of(
        cls,
        gate: Gate,
        *,
        target: str,
        baseline: str,
        load: str,
        connections: int,
        metric: str,
        before: float,
        after: float,
        pvalue: float,
        pvalue_raw: float,
        n_before: int,
        n_after: int,
        change_date: str,
        change_run_id: str,
        fingerprint: str,
        regression: bool,
    ) -> Finding:
        """A finding with its change, how much worse, and whether its metric alerts."""
        return cls(
            gate=gate,
            target=target,
            baseline=baseline,
            load=load,
            connections=connections,
            metric=metric,
            before=before,
            after=after,
            change_pct=(after / before - 1.0) * 100.0 if before else 0.0,
            worse_pct=worse_pct(before, after, metric),
            pvalue=pvalue,
            pvalue_raw=pvalue_raw,
            n_before=n_before,
            n_after=n_after,
            change_date=change_date,
            change_run_id=change_run_id,
            fingerprint=fingerprint,
            regression=regression,
            alerting=metric in ALERTED,
        )

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON; an explained one gains ``packages``, ``explained`` and the
        rest of :meth:`analysis.explain.Explanation.to_dict`."""
        d = asdict(replace(self, explanation=None))
        del d["explanation"]
        d["series"] = self.series
        d["unit"] = self.unit
        if self.explanation is not None:
            d.update(self.explanation.to_dict())
        return d


def worse_pct(before: float, after: float, metric: str) -> float:
    """How much worse ``after`` is than ``before`` in percent (negative: better)."""
    if before == 0:
        return 0.0
    change = (after / before - 1.0) * 100.0
    return -change if HIGHER_IS_BETTER[metric] else change


# --- within one run --------------------------------------------------------------------------


@dataclass(frozen=True)
class WithinParams:
    alpha: float = 0.01
    min_drop_pct: float = 3.0
    correction: Correction = "holm"
    min_trials: int = 7

    @classmethod
    def from_check(cls, c: Check) -> WithinParams:
        return cls(c.alpha, c.min_drop_pct, c.correction, c.min_trials)


@dataclass(frozen=True)
class PairData:
    """The trials of one pair at one load setting: metric -> values of each side."""

    baseline: str
    candidate: str
    load: str
    connections: int
    base: Mapping[str, Sequence[float]] = field(default_factory=dict)
    cand: Mapping[str, Sequence[float]] = field(default_factory=dict)


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (``None`` stays ``None``), same order as given."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    running = 1.0
    for rank in range(m - 1, -1, -1):
        p, i = known[rank]
        running = min(running, p * m / (rank + 1))
        out[i] = min(1.0, running)
    return out


def correct(pvalues: Sequence[float | None], how: Correction) -> list[float | None]:
    return holm(pvalues) if how == "holm" else benjamini_hochberg(pvalues)


def within_run(
    pairs: Sequence[PairData],
    params: WithinParams,
    *,
    run_id: str,
    date: str,
    fingerprint: str,
) -> tuple[list[Finding], list[str]]:
    """Findings for every pair, load and metric, plus the problems (too few trials).

    The correction runs over every alerted test of the run (p99 is left out: it never alerts).
    """
    problems: list[str] = []
    rows: list[tuple[PairData, str, float, float, float, int, int]] = []
    for pd_ in pairs:
        where = f"{pd_.candidate} vs {pd_.baseline} ({pd_.load}, c{pd_.connections})"
        for metric in METRICS:
            b = _finite(pd_.base.get(metric, ()))
            c = _finite(pd_.cand.get(metric, ()))
            if len(b) < params.min_trials or len(c) < params.min_trials:
                if metric == "rps":
                    problems.append(
                        f"{where}: {len(b)} baseline and {len(c)} candidate trials, "
                        f"needs {params.min_trials} each"
                    )
                continue
            w = welch(b, c)
            p = w.p if w is not None else 1.0
            rows.append((pd_, metric, float(np.median(b)), float(np.median(c)), p, len(b), len(c)))
    family = [r[4] if r[1] in ALERTED else None for r in rows]
    adjusted = correct(family, params.correction)
    findings = []
    for (pd_, metric, mb, mc, p, nb, nc), adj in zip(rows, adjusted, strict=True):
        p_adj = p if adj is None else adj
        regression = p_adj < params.alpha and worse_pct(mb, mc, metric) >= params.min_drop_pct
        findings.append(
            Finding.of(
                "within",
                target=pd_.candidate,
                baseline=pd_.baseline,
                load=pd_.load,
                connections=pd_.connections,
                metric=metric,
                before=mb,
                after=mc,
                pvalue=p_adj,
                pvalue_raw=p,
                n_before=nb,
                n_after=nc,
                change_date=date,
                change_run_id=run_id,
                fingerprint=fingerprint,
                regression=regression,
            )
        )
    return findings, problems


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _value(r: TrialRecord, metric: str) -> float | None:
    if metric == "rps":
        return r.rps
    lat = r.latency_ms
    return None if lat is None else float(getattr(lat, metric))


def pair_data(
    records: Sequence[TrialRecord], pairs: Sequence[Pair]
) -> tuple[list[PairData], list[str]]:
    """Good trials of each pair, per (load, connections); problems for targets not in the run."""
    present = {r.target for r in records}
    settings = sorted({(r.load, r.connections) for r in records})
    out: list[PairData] = []
    problems: list[str] = []
    for pair in pairs:
        missing = [t for t in (pair.baseline, pair.candidate) if t not in present]
        if missing:
            problems.append(
                f"pair {pair.baseline}:{pair.candidate}: {', '.join(missing)} not in this run"
            )
            continue
        for load, conns in settings:
            sides: list[dict[str, list[float]]] = []
            for target in (pair.baseline, pair.candidate):
                rows = [
                    r for r in records
                    if r.target == target and r.load == load and r.connections == conns
                    and r.status == "ok"
                ]  # fmt: skip
                sides.append(
                    {m: [v for r in rows if (v := _value(r, m)) is not None] for m in METRICS}
                )
            out.append(PairData(pair.baseline, pair.candidate, load, conns, sides[0], sides[1]))
    return out, problems


# --- over the history ------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryParams:
    max_pvalue: float = 0.001
    window: int = 50
    nights_held: int = 3
    min_drop_pct: float = 3.0  # smallest change (mean before vs after) that alerts

    @classmethod
    def from_check(cls, c: Check) -> HistoryParams:
        return cls(
            max_pvalue=c.cp_max_pvalue,
            window=c.cp_window,
            nights_held=c.nights_held,
            min_drop_pct=c.min_drop_pct,
        )

    @property
    def min_nights(self) -> int:
        """Fewer nights than this in a series: too few to look for a change that held."""
        return self.nights_held + 3


@dataclass(frozen=True)
class Change:
    """A change point that went the wrong way and has held for ``nights`` nights."""

    cp: ChangePoint
    nights: int  # nights at the new level so far (up to the next change point)
    worse_pct: float

    @property
    def index(self) -> int:
        return self.cp.index


def open_changes(
    values: Sequence[float] | np.ndarray[Any, np.dtype[np.float64]],
    params: HistoryParams,
    *,
    higher_is_better: bool = True,
) -> list[Change]:
    """Change points of one nightly series that went the wrong way and have held.

    The wrong way: worse by at least ``min_drop_pct`` (the same minimum as the within-run
    gate; on a quiet machine E-Divisive finds 1 % shifts that nobody needs to hear about).
    Held means: the new level has lasted ``nights_held`` nights (up to the next change point
    or tonight), and each of its last ``nights_held`` nights is worse than the mean before
    the change. The second half keeps a cluster of bad nights inside a normal stretch from
    alerting (on one seeded set of 300 flat histories with 5 % outlier nights it cut false
    alerts from 13 % to 9 % and cost no detection; see docs/regressions.md). Only change
    points within the last
    ``window`` nights count: an older change nobody was told about is history, not news.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < params.min_nights:
        return []
    cps = change_points(x, window=params.window, max_pvalue=params.max_pvalue)
    out = []
    for k, cp in enumerate(cps):
        end = cps[k + 1].index if k + 1 < len(cps) else x.size
        nights = end - cp.index
        change = cp.change_pct
        worse = -change if higher_is_better else change
        if worse < params.min_drop_pct or nights < params.nights_held:
            continue
        if cp.index < x.size - params.window:
            continue
        last = x[end - params.nights_held : end]
        held = last < cp.mean_before if higher_is_better else last > cp.mean_before
        if not bool(np.all(held)):
            continue
        out.append(Change(cp, nights, worse))
    return out


def is_known(index: int, known: Sequence[int], nights: int = SAME_CHANGE_NIGHTS) -> bool:
    """Whether a change at ``index`` is one already alerted (within ``nights`` of one)."""
    return any(abs(index - k) <= nights for k in known)


def _history_finding(
    cp: ChangePoint,
    night: str,
    run_id: str,
    fingerprint: str,
    target: str,
    load: str,
    connections: int,
    metric: str,
) -> Finding:
    """A change point that held, as a finding of the history gate (first night at its level)."""
    return Finding.of(
        "history",
        target=target,
        baseline="",
        load=load,
        connections=connections,
        metric=metric,
        before=cp.mean_before,
        after=cp.mean_after,
        pvalue=cp.pvalue,
        pvalue_raw=cp.pvalue,
        n_before=cp.n_before,
        n_after=cp.n_after,
        change_date=night,
        change_run_id=run_id,
        fingerprint=fingerprint,
        regression=True,
    )


@dataclass(frozen=True)
class HistoryOutcome:
    """What the history gate found over one machine's series."""

    findings: tuple[Finding, ...]
    problems: tuple[str, ...]
    positions: Mapping[str, Mapping[str, int]]  # series -> run id -> index in the series


def history_gate(
    all_series: Mapping[SeriesKey, Sequence[NightPoint]], fingerprint: str, params: HistoryParams
) -> HistoryOutcome:
    """Findings of the history gate over every series of one machine (oldest night first)."""
    if not all_series:
        return HistoryOutcome((), (f"history: no run of machine {fingerprint} stored yet",), {})
    findings: list[Finding] = []
    positions: dict[str, dict[str, int]] = {}
    longest = 0
    checked = 0
    for (target, load, conns), points in all_series.items():
        longest = max(longest, len(points))
        positions[f"{target}/{load}/c{conns}"] = {p.run_id: i for i, p in enumerate(points)}
        for metric in METRICS:
            pts = [p for p in points if p.value(metric) is not None]
            if len(pts) < params.min_nights:
                continue
            checked += 1
            values = [float(v) for p in pts if (v := p.value(metric)) is not None]
            for ch in open_changes(values, params, higher_is_better=HIGHER_IS_BETTER[metric]):
                first = pts[ch.cp.index]
                findings.append(
                    _history_finding(
                        ch.cp, first.night, first.run_id, fingerprint, target, load, conns, metric
                    )
                )
    problems: tuple[str, ...] = ()
    if not checked:
        problems = (
            f"history: not enough nights on machine {fingerprint}: the longest series has "
            f"{longest}, the history gate needs {params.min_nights}",
        )
    return HistoryOutcome(tuple(findings), problems, positions)


# --- cost: instructions per request ------------------------------------------------------------


def cost_level(threshold_pct: float, noise_pct: float) -> float:
    """The rise (in %) from which a cost change is a regression: T - 2 x noise."""
    return threshold_pct - 2.0 * noise_pct


def cost_noise_problem(threshold_pct: float, noise_pct: float, where: str) -> str | None:
    """A message when the threshold is below what the measured A/A spread can tell apart."""
    need = NOISE_FACTOR * noise_pct
    if threshold_pct >= need:
        return None
    return (
        f"{where}: check.cost_min_change_pct = {threshold_pct:g} % is refused: the A/A spread "
        f"measured here is {noise_pct:.3f} %, so the cost gate needs a threshold of at least "
        f"{need:.3f} % ({NOISE_FACTOR:g} x the spread); raise the threshold, or count longer "
        "windows (fwbench cost --requests) for a smaller spread"
    )


def _spread(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    mid = float(np.median(values))
    return (max(values) - min(values)) / mid * 100.0 if mid else 0.0


def within_cost(
    records: Sequence[CostRecord],
    pairs: Sequence[Pair],
    threshold_pct: float,
    *,
    run_id: str,
    date: str,
    fingerprint: str,
) -> tuple[list[Finding], list[str]]:
    """The cost gate within one run: each pair's candidate against its baseline.

    A run without cost records gives nothing (the pass did not run); a pair with a side not
    counted is a problem. Each side's figure is the median of its windows (pooled over its
    records when the target was counted more than once); the noise is the largest spread of
    one record's windows and of the records' medians of one target.
    """
    if not records:
        return [], []
    findings: list[Finding] = []
    problems: list[str] = []
    for pair in pairs:
        sides: list[tuple[list[float], float]] = []
        for target in (pair.baseline, pair.candidate):
            recs = [r for r in records if r.target == target and r.status == "ok"]
            if not recs:
                why = next((r.failure for r in records if r.target == target), "not in the pass")
                problems.append(f"cost {pair.baseline}:{pair.candidate}: {target}: {why}")
                break
            windows = [w for r in recs for w in r.windows]
            medians = [float(np.median(r.windows)) for r in recs]
            noise = max([_spread(list(r.windows)) for r in recs] + [_spread(medians)])
            sides.append((windows, noise))
        if len(sides) < 2:
            continue
        (b, nb), (c, nc) = sides
        noise = max(nb, nc)
        where = f"cost {pair.candidate} vs {pair.baseline}"
        refused = cost_noise_problem(threshold_pct, noise, where)
        if refused:
            problems.append(refused)
            continue
        before, after = float(np.median(b)), float(np.median(c))
        rise = worse_pct(before, after, COST)
        findings.append(
            Finding.of(
                "within",
                target=pair.candidate,
                baseline=pair.baseline,
                load=COST_LOAD,
                connections=1,
                metric=COST,
                before=before,
                after=after,
                pvalue=0.0,  # exact counts: no test, the rule is the level against the noise
                pvalue_raw=0.0,
                n_before=len(b),
                n_after=len(c),
                change_date=date,
                change_run_id=run_id,
                fingerprint=fingerprint,
                regression=rise >= cost_level(threshold_pct, noise),
            )
        )
    return findings, problems


def history_noise(values: Sequence[float], spreads: Sequence[float]) -> float:
    """The A/A noise of a nightly cost series: the largest windows' spread of one night, or
    three times the median night-to-night move (a step moves it once: the median ignores it)."""
    moves = [abs(b - a) for a, b in itertools.pairwise(values)]
    mid = float(np.median(values)) if len(values) else 0.0
    night = 3.0 * float(np.median(moves)) / mid * 100.0 if moves and mid else 0.0
    return max([night, *spreads])


def history_cost_gate(
    all_series: Mapping[str, Sequence[CostPoint]],
    fingerprint: str,
    params: HistoryParams,
    threshold_pct: float,
) -> tuple[list[Finding], list[str]]:
    """The history gate on each target's nightly instructions per request."""
    findings: list[Finding] = []
    problems: list[str] = []
    for target, points in all_series.items():
        if len(points) < params.min_nights:
            continue
        values = [p.cost for p in points]
        noise = history_noise(values, [p.spread_pct for p in points])
        refused = cost_noise_problem(threshold_pct, noise, f"history cost {target}")
        if refused:
            problems.append(refused)
            continue
        level = max(cost_level(threshold_pct, noise), 0.0)
        use = HistoryParams(params.max_pvalue, params.window, params.nights_held, level)
        for ch in open_changes(values, use, higher_is_better=False):
            first = points[ch.cp.index]
            findings.append(
                _history_finding(
                    ch.cp, first.night, first.run_id, fingerprint, target, COST_LOAD, 1, COST
                )
            )
    return findings, problems
