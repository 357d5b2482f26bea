"""The report of ``fwbench calibrate``: medians per connection count (and streams, for HTTP/2),
raw/reference ratios (the reference: wrk for HTTP/1.1, h2load for h2c), text."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.calibrate_trials import OPEN_LOOP_TOLERANCE, Trial
from loadgen.table import render_table


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(
    trials: Sequence[Trial],
    counts: Sequence[int],
    streams: Sequence[int] = (1,),
    reference: str = "wrk",
) -> list[dict[str, Any]]:
    rows = []
    for n in counts:
        for m in streams:
            rows.append(_summary_row(trials, n, m, reference))
    return rows


def _summary_row(trials: Sequence[Trial], n: int, m: int, reference: str) -> dict[str, Any]:
    row: dict[str, Any] = {"connections": n, "streams": m}
    group = [t for t in trials if t.connections == n and t.streams == m]
    for client in ("raw", reference):
        mine = [t for t in group if t.client == client]
        if not mine:
            continue
        row[client] = {
            "rps": median([t.rps for t in mine]),
            "p50_ms": median([t.p50_ms for t in mine]),
            "p99_ms": median([t.p99_ms for t in mine]),
            "cpu_us_per_request": median([t.cpu_us_per_request for t in mine]),
            "cpu_pct": median([t.cpu_pct for t in mine]),
            "rps_per_cpu": median([t.requests / t.cpu_s if t.cpu_s else 0.0 for t in mine]),
            "rounds": len(mine),
        }
    if "raw" in row and reference in row:
        raw, ref = row["raw"], row[reference]
        row["rps_ratio"] = raw["rps"] / ref["rps"] if ref["rps"] else None
        row["cpu_ratio"] = (
            raw["cpu_us_per_request"] / ref["cpu_us_per_request"]
            if ref["cpu_us_per_request"]
            else None
        )
        # Ratios within each round (raw and the reference ran back to back), then their median.
        ratios = [
            r.rps / w.rps
            for r in group
            for w in group
            if r.client == "raw" and w.client == reference and r.round == w.round and w.rps
        ]
        row["rps_ratio_paired"] = median(ratios)
        row["rps_ratio_range"] = [min(ratios), max(ratios)] if ratios else None
    return row


def _conns(row: dict[str, Any], h2: bool) -> str:
    """Connections, or connections x streams (HTTP/2)."""
    return f"{row['connections']}x{row.get('streams', 1)}" if h2 else f"{row['connections']}"


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
    ref = report.get("reference", "wrk")
    trial_rows = [
        [
            _conns(t, ref != "wrk"),
            t["client"],
            t["round"],
            f"{t['rps']:.0f}",
            _f(t["p50_ms"], ".3f"),
            _f(t["p99_ms"], ".3f"),
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
    if any(t["client"] == "h2load" for t in report["trials"]):
        out.append("(h2load prints no percentiles: its p50 column is its mean request time)")
    out += ["", "medians"]
    rows = []
    for row in report["summary"]:
        raw = row.get("raw", {})
        other = row.get(ref, {})
        rng = row.get("rps_ratio_range")
        rows.append(
            [
                _conns(row, ref != "wrk"),
                _f(raw.get("rps"), ".0f"),
                _f(other.get("rps"), ".0f"),
                _f(row.get("rps_ratio"), ".3f"),
                _f(row.get("rps_ratio_paired"), ".3f")
                + (f" [{rng[0]:.2f}-{rng[1]:.2f}]" if rng else ""),
                f"{_f(raw.get('p50_ms'), '.3f')}/{_f(raw.get('p99_ms'), '.3f')}",
                f"{_f(other.get('p50_ms'), '.3f')}/{_f(other.get('p99_ms'), '.3f')}",
                _f(raw.get("rps_per_cpu"), ".0f"),
                _f(other.get("rps_per_cpu"), ".0f"),
                _f(raw.get("cpu_us_per_request"), ".2f"),
                _f(other.get("cpu_us_per_request"), ".2f"),
                _f(row.get("cpu_ratio"), ".3f"),
            ]
        )
    out.append(
        render_table(
            [
                "conns" if ref == "wrk" else "conns x streams",
                "raw req/s",
                f"{ref} req/s",
                f"raw/{ref}",
                "paired [range]",
                "raw p50/p99 ms",
                f"{ref} p50/p99 ms",
                "raw req/CPU-s",
                f"{ref} req/CPU-s",
                "raw us/req",
                f"{ref} us/req",
                f"CPU raw/{ref}",
            ],
            rows,
        )
    )
    ol = report.get("open_loop")
    if ol:
        out += [
            "",
            f"open loop: asked {ol['rate']:.0f} req/s at {_conns(ol, ref != 'wrk')} connections "
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
