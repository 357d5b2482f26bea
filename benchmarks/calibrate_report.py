"""The report of ``fwbench calibrate``: medians per connection count, raw/wrk ratios, text."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.calibrate_trials import OPEN_LOOP_TOLERANCE, Trial
from loadgen.table import render_table


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(trials: Sequence[Trial], counts: Sequence[int]) -> list[dict[str, Any]]:
    rows = []
    for n in counts:
        row: dict[str, Any] = {"connections": n}
        for client in ("raw", "wrk"):
            mine = [t for t in trials if t.client == client and t.connections == n]
            if not mine:
                continue
            row[client] = {
                "rps": median([t.rps for t in mine]),
                "p50_ms": median([t.p50_ms for t in mine]),
                "p99_ms": median([t.p99_ms for t in mine]),
                "cpu_us_per_request": median([t.cpu_us_per_request for t in mine]),
                "cpu_pct": median([t.cpu_pct for t in mine]),
                "rounds": len(mine),
            }
        if "raw" in row and "wrk" in row:
            raw, wrk = row["raw"], row["wrk"]
            row["rps_ratio"] = raw["rps"] / wrk["rps"] if wrk["rps"] else None
            row["cpu_ratio"] = (
                raw["cpu_us_per_request"] / wrk["cpu_us_per_request"]
                if wrk["cpu_us_per_request"]
                else None
            )
            # Ratios within each round (raw and wrk ran back to back), then their median.
            pairs = [
                (r, w)
                for r in trials
                for w in trials
                if r.client == "raw"
                and w.client == "wrk"
                and r.connections == n == w.connections
                and r.round == w.round
            ]
            row["rps_ratio_paired"] = median([r.rps / w.rps for r, w in pairs if w.rps])
            row["rps_ratio_range"] = (
                [
                    min(r.rps / w.rps for r, w in pairs if w.rps),
                    max(r.rps / w.rps for r, w in pairs if w.rps),
                ]
                if pairs
                else None
            )
        rows.append(row)
    return rows


def _f(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, spec)


def render(report: dict[str, Any]) -> str:
    out = [
        f"reference server: {report['server']} on CPU {report['server_cpus']}; "
        f"clients on CPU {report['client_cpu']}; {report['duration']:g} s windows "
        f"(raw: {report['warmup']:g} s warm-up first), {report['repeat']} interleaved rounds",
        "",
        "trials",
    ]
    trial_rows = [
        [
            t["connections"],
            t["client"],
            t["round"],
            f"{t['rps']:.0f}",
            f"{t['p50_ms']:.3f}",
            f"{t['p99_ms']:.3f}",
            f"{t['cpu_us_per_request']:.2f}",
            f"{t['cpu_s'] / t['seconds'] * 100 if t['seconds'] else 0:.0f}",
            f"{t['other_cpu_pct']:.0f}",
            t["errors"],
        ]
        for t in report["trials"]
    ]
    out.append(
        render_table(
            [
                "conns",
                "client",
                "round",
                "req/s",
                "p50 ms",
                "p99 ms",
                "CPU us/req",
                "CPU %",
                "others' CPU %",
                "errors",
            ],
            trial_rows,
        )
    )
    out += ["", "medians"]
    rows = []
    for row in report["summary"]:
        raw = row.get("raw", {})
        wrk = row.get("wrk", {})
        rng = row.get("rps_ratio_range")
        rows.append(
            [
                row["connections"],
                _f(raw.get("rps"), ".0f"),
                _f(wrk.get("rps"), ".0f"),
                _f(row.get("rps_ratio"), ".3f"),
                _f(row.get("rps_ratio_paired"), ".3f")
                + (f" [{rng[0]:.2f}-{rng[1]:.2f}]" if rng else ""),
                f"{_f(raw.get('p50_ms'), '.3f')}/{_f(raw.get('p99_ms'), '.3f')}",
                f"{_f(wrk.get('p50_ms'), '.3f')}/{_f(wrk.get('p99_ms'), '.3f')}",
                _f(raw.get("cpu_us_per_request"), ".2f"),
                _f(wrk.get("cpu_us_per_request"), ".2f"),
                _f(row.get("cpu_ratio"), ".3f"),
            ]
        )
    out.append(
        render_table(
            [
                "conns",
                "raw req/s",
                "wrk req/s",
                "raw/wrk",
                "paired [range]",
                "raw p50/p99 ms",
                "wrk p50/p99 ms",
                "raw us/req",
                "wrk us/req",
                "CPU raw/wrk",
            ],
            rows,
        )
    )
    ol = report.get("open_loop")
    if ol:
        out += [
            "",
            f"open loop: asked {ol['rate']:.0f} req/s at {ol['connections']} connections "
            f"(half the closed-loop median): achieved {ol['achieved']:.0f} req/s "
            f"({ol['error_pct']:+.2f} %, within {OPEN_LOOP_TOLERANCE:.0%}: "
            f"{'yes' if ol['within'] else 'NO'}); late sends {ol['late']}; errors {ol['errors']}",
            f"  corrected p50/p99/max {ol['p50_ms']:.3f}/{ol['p99_ms']:.3f}/{ol['max_ms']:.3f} ms; "
            f"uncorrected {ol['p50_u_ms']:.3f}/{ol['p99_u_ms']:.3f}/{ol['max_u_ms']:.3f} ms; "
            f"client CPU {ol['cpu_pct']:.0f} %",
        ]
    out.append(
        f"unrelated processes took a median {report['others_cpu_pct_median']:.0f} % of one CPU "
        "during the trials (0 on a quiet machine)"
    )
    for note in report["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)
