"""Compare two runs target by target: requests/s and p99, "1.12x faster" or "not significant".

For each (target, load setting) ranked in both runs, Welch's t-test over the trials' figures
says whether the change is real; the p-values are Holm-corrected across the targets of one
metric (30 targets at 5 % each would otherwise give a false alarm most mornings). Ratios are
read the pyperf way: always ≥ 1, with "faster" or "slower" saying which way. For p99, lower is
faster. Runs whose machine fingerprints differ are refused unless forced; forced, the output
opens and closes with a warning.

When both runs had a cost pass, each target counted in both gets a line of its own: the ratio
of instructions per request, with the windows' spread of each side ("1.8 % more instructions
per request"); a change no larger than that spread reads "same within the spread".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from analysis import fmt
from analysis.exporters import md
from analysis.stats import Welch, holm, median, welch
from analysis.summary import CostRow, Group, Setting, Summary, fingerprint_differences
from loadgen.records import COST_LIMITS
from loadgen.table import render_table

ALPHA = 0.05
STATE_WORDS = {
    "client_saturated": "client saturated",
    "failed": "failed",
    "not_measured": "not measured",
    "not_applicable": "not applicable",
}
_ABSENT = ("not_measured", "not_applicable")  # nothing to compare on either side


@dataclass(frozen=True)
class MetricChange:
    a: tuple[float, ...]  # per-trial values in run A
    b: tuple[float, ...]
    median_a: float | None
    median_b: float | None
    test: Welch | None
    p_adjusted: float | None
    verdict: str  # "1.12x faster" | "1.05x slower" | "not significant" | "too few trials"


@dataclass(frozen=True)
class Change:
    target: str
    setting: Setting
    rps: MetricChange | None
    p99: MetricChange | None
    note: str  # why it was not compared ("" when it was)


@dataclass(frozen=True)
class CostChange:
    """Instructions per request of one target in A and B (medians of the windows)."""

    target: str
    a: float
    b: float
    spread_a: float  # % of the windows' median
    spread_b: float

    @property
    def change_pct(self) -> float:
        return (self.b / self.a - 1.0) * 100.0 if self.a else 0.0

    @property
    def words(self) -> str:
        noise = max(self.spread_a, self.spread_b)
        spread = f"spread {self.spread_a:.2f} % / {self.spread_b:.2f} %"
        if abs(self.change_pct) <= noise:
            return f"same within the spread ({spread})"
        way = "more" if self.change_pct > 0 else "fewer"
        return f"{abs(self.change_pct):.1f} % {way} instructions per request ({spread})"


def cost_changes(a: Sequence[CostRow], b: Sequence[CostRow]) -> list[CostChange]:
    by_b = {c.target: c for c in b if c.ok}
    out = []
    for ca in a:
        cb = by_b.get(ca.target)
        if not ca.ok or cb is None:
            continue
        out.append(
            CostChange(
                ca.target,
                ca.instructions_per_request or 0.0,
                cb.instructions_per_request or 0.0,
                ca.spread_pct or 0.0,
                cb.spread_pct or 0.0,
            )
        )
    return sorted(out, key=lambda c: c.target)


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    fingerprint_a: str
    fingerprint_b: str
    differences: tuple[tuple[str, Any, Any], ...]  # fingerprint keys that differ
    changes: tuple[Change, ...]
    alpha: float
    costs: tuple[CostChange, ...] = ()

    @property
    def same_machine(self) -> bool:
        return not self.differences


def verdict(
    median_a: float | None,
    median_b: float | None,
    p: float | None,
    alpha: float,
    *,
    higher_is_better: bool,
) -> str:
    """pyperf's wording: "1.12x faster", "1.12x slower" or "not significant"."""
    if p is None or median_a is None or median_b is None:
        return "too few trials"
    if p >= alpha or median_a == median_b:
        return "not significant"
    if median_a <= 0 or median_b <= 0:
        return "not significant"
    better = median_b > median_a if higher_is_better else median_b < median_a
    ratio = max(median_a, median_b) / min(median_a, median_b)
    return f"{ratio:.2f}x {'faster' if better else 'slower'}"


def _trial_values(s: Summary, g: Group, column: str) -> tuple[float, ...]:
    rows = s.ok_trials(g).sort_values(["run_id", "trial"])
    return tuple(float(v) for v in rows[column].dropna())


def _not_compared(ga: Group | None, gb: Group | None) -> str:
    if ga is None:
        return "only in B"
    if gb is None:
        return "only in A"
    parts = []
    for side, g in (("A", ga), ("B", gb)):
        if not g.ranked:
            parts.append(f"{STATE_WORDS.get(g.state, g.state)} in {side}")
    return "not compared: " + ", ".join(parts)


def compare(a: Summary, b: Summary, *, alpha: float = ALPHA, correct: bool = True) -> Comparison:
    keys: dict[tuple[Setting, str], None] = {}
    for g in (*a.groups, *b.groups):
        keys[(g.setting, g.target)] = None
    pending: list[tuple[Setting, str, Group | None, Group | None]] = []
    for setting, target in keys:
        pending.append((setting, target, a.group(target, setting), b.group(target, setting)))
    pending.sort(key=lambda x: (a.settings.index(x[0]) if x[0] in a.settings else 99, x[1]))

    raw: list[tuple[Setting, str, str, list[tuple[tuple[float, ...], tuple[float, ...]]]]] = []
    for setting, target, ga, gb in pending:
        if ga is None or gb is None or not (ga.ranked and gb.ranked):
            if (ga is None or ga.state in _ABSENT) and (gb is None or gb.state in _ABSENT):
                continue
            raw.append((setting, target, _not_compared(ga, gb), []))
            continue
        pairs = [
            (_trial_values(a, ga, "rps"), _trial_values(b, gb, "rps")),
            (_trial_values(a, ga, "p99_ms"), _trial_values(b, gb, "p99_ms")),
        ]
        raw.append((setting, target, "", pairs))

    tests: list[list[Welch | None]] = [[], []]
    for _, _, note, pairs in raw:
        if note:
            continue
        for k in (0, 1):
            tests[k].append(welch(*pairs[k]))
    adjusted: list[list[float | None]] = []
    for k in (0, 1):
        ps = [t.p if t else None for t in tests[k]]
        adjusted.append(holm(ps) if correct else ps)

    changes: list[Change] = []
    n = 0
    for setting, target, note, pairs in raw:
        if note:
            changes.append(Change(target, setting, None, None, note))
            continue
        metrics: list[MetricChange] = []
        for k, higher in ((0, True), (1, False)):
            va, vb = pairs[k]
            ma, mb = median(va), median(vb)
            p = adjusted[k][n]
            metrics.append(
                MetricChange(
                    va,
                    vb,
                    ma,
                    mb,
                    tests[k][n],
                    p,
                    verdict(ma, mb, p, alpha, higher_is_better=higher),
                )
            )
        n += 1
        changes.append(Change(target, setting, metrics[0], metrics[1], ""))
    ra, rb = a.runs[0], b.runs[0]
    return Comparison(
        run_a=a.run_id,
        run_b=b.run_id,
        fingerprint_a=str(ra.machine.get("fingerprint", "")),
        fingerprint_b=str(rb.machine.get("fingerprint", "")),
        differences=tuple(fingerprint_differences(ra.machine, rb.machine)),
        changes=tuple(changes),
        alpha=alpha,
        costs=tuple(cost_changes(a.costs, b.costs)),
    )


def machine_warning(c: Comparison) -> str:
    diffs = "; ".join(f"{k}: {va!r} vs {vb!r}" for k, va, vb in c.differences)
    return (
        f"WARNING: the machine fingerprints differ ({c.fingerprint_a} vs {c.fingerprint_b}: "
        f"{diffs}). These runs were not measured on the same machine set-up; the changes below "
        "may be the machine's, not the code's."
    )


def _cells(c: Change) -> list[str]:
    if c.rps is None or c.p99 is None:
        return [fmt.DASH, fmt.DASH, c.note, fmt.DASH, fmt.DASH, ""]
    return [
        fmt.rps(c.rps.median_a),
        fmt.rps(c.rps.median_b),
        c.rps.verdict + _p(c.rps),
        fmt.ms(c.p99.median_a),
        fmt.ms(c.p99.median_b),
        c.p99.verdict + _p(c.p99),
    ]


def _p(m: MetricChange) -> str:
    if m.p_adjusted is None:
        return ""
    return " (p<0.001)" if m.p_adjusted < 0.001 else f" (p={m.p_adjusted:.3f})"


def _rows(c: Comparison) -> tuple[list[str], list[list[str]]]:
    many = len({ch.setting for ch in c.changes}) > 1
    headers = [
        "target",
        *(["setting"] if many else []),
        "req/s A",
        "req/s B",
        "req/s change",
        "p99 ms A",
        "p99 ms B",
        "p99 change",
    ]
    rows = []
    for ch in c.changes:
        setting = [f"{ch.setting.load} c{ch.setting.connections}"] if many else []
        rows.append([ch.target, *setting, *_cells(ch)])
    return headers, rows


def footer(c: Comparison, tests: int) -> str:
    return (
        f"Welch's t-test over trials, two-sided, alpha {c.alpha:g}; p-values Holm-corrected "
        f"across {tests} targets per metric. Ratios are medians of B over A (or A over B), "
        "always ≥ 1; for p99, lower is faster. Runs measured on different days drift by a few "
        "per cent: a within-run comparison is stronger."
    )


COST_HEADERS = ["target", "instructions/request A", "B", "change"]


def _cost_rows(c: Comparison) -> list[list[str]]:
    return [[x.target, f"{x.a:,.0f}", f"{x.b:,.0f}", x.words] for x in c.costs]


def render_text(c: Comparison) -> str:
    lines = []
    if c.differences:
        lines += [machine_warning(c), ""]
    lines.append(f"A = {c.run_a}   B = {c.run_b}")
    lines.append("")
    headers, rows = _rows(c)
    if rows or not c.costs:
        lines.append(render_table(headers, rows))
        lines.append("")
        lines.append(footer(c, sum(1 for ch in c.changes if ch.rps is not None)))
    if c.costs:
        lines += ["", "Cost per request (callgrind)", ""]
        lines.append(render_table(COST_HEADERS, _cost_rows(c)))
        lines += ["", COST_LIMITS]
    if c.differences:
        lines += ["", machine_warning(c)]
    return "\n".join(lines) + "\n"


def render_markdown(c: Comparison) -> str:
    lines = []
    if c.differences:
        lines += [f"> **{md(machine_warning(c))}**", ""]
    lines += [f"## fwbench compare: {md(c.run_a)} → {md(c.run_b)}", ""]
    headers, rows = _rows(c)
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join(":--" if i == 0 else "--:" for i in range(len(headers))) + "|")
    lines += ["| " + " | ".join(md(x) for x in row) + " |" for row in rows]
    lines += ["", md(footer(c, sum(1 for ch in c.changes if ch.rps is not None))), ""]
    if c.costs:
        lines += ["### Cost per request (callgrind)", ""]
        lines.append("| " + " | ".join(COST_HEADERS) + " |")
        lines.append("|:--|--:|--:|:--|")
        lines += ["| " + " | ".join(md(x) for x in row) + " |" for row in _cost_rows(c)]
        lines += ["", md(COST_LIMITS), ""]
    return "\n".join(lines)


def significant(changes: Sequence[Change]) -> list[Change]:
    """The changes with a significant difference in requests/s or p99."""
    out = []
    for ch in changes:
        verdicts = [m.verdict for m in (ch.rps, ch.p99) if m is not None]
        if any(v.endswith(("faster", "slower")) for v in verdicts):
            out.append(ch)
    return out
