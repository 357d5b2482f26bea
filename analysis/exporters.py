"""The text exporters: a JSON summary for tools and a Markdown summary for a CI job page.

Both are deterministic for a given run: no clock reads, a seeded bootstrap, sorted keys and
rounded floats, so the tests compare them with committed expected files byte for byte.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from analysis import fmt
from analysis.matrix import MATRIX_NOTE, MATRIX_TITLE, ScenarioMatrix, scenario_matrix
from analysis.protocols import (
    PROTOCOL_NAMES,
    PROTOCOL_RANK_HEADERS,
    PROTOCOLS_NOTE,
    PROTOCOLS_TITLE,
    VERSUS_HEADERS,
    WS_HEADERS,
    ProtocolReport,
    protocol_report,
    ranking_rows,
    versus_rows,
    ws_rows,
)
from analysis.stats import CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from analysis.summary import CostRow, Footprint, Group, Ranking, Summary
from analysis.views import Row
from loadgen.records import COST_LIMITS, FINGERPRINT_KEYS

REPORT_SCHEMA = "fwbench.report/1"

METHOD_NOTE = (
    f"Requests/s: median of the trials, with a {CONFIDENCE * 100:.0f} % percentile-bootstrap "
    f"interval ({DEFAULT_RESAMPLES:,} resamples, seed {DEFAULT_SEED}); with 5 trials or fewer the "
    "interval is the range of the trials. CV: standard deviation over mean of the trials. "
    "Latency: percentiles of the trials' HDR histograms merged. A tie: the intervals overlap, "
    "so the order between those rows is not sure. Only targets that passed verification, with "
    "every trial ok and a client that kept up, are ranked."
)


# --- JSON -----------------------------------------------------------------------------------


def _round(v: float | None, digits: int) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), digits)


def group_dict(g: Group) -> dict[str, Any]:
    lat = None
    if g.latency_ms is not None:
        lat = {k: _round(v, 3) for k, v in g.latency_ms.items()}
    return {
        "target": g.target,
        "framework": g.framework,
        "framework_version": g.framework_version,
        "server": g.server,
        "server_version": g.server_version,
        "python": g.python,
        "kind": g.kind,
        "keepalive": g.keepalive,
        "state": g.state,
        "reason": g.reason,
        "trials": g.trials,
        "ok_trials": g.ok_trials,
        "saturated_trials": g.saturated_trials,
        "failed_trials": g.failed_trials,
        "rps_trials": [_round(x, 2) for x in g.rps],
        "rps_median": _round(g.rps_median, 2),
        "rps_ci": None if g.rps_ci is None else [_round(x, 2) for x in g.rps_ci],
        "rps_cv": _round(g.rps_cv, 5),
        "latency_ms": lat,
        "latency_count": g.latency_count,
        "cpu_s_per_1k": _round(g.cpu_s_per_1k, 6),
        "rss_peak_bytes": g.rss_peak_bytes,
        "requests": g.requests,
        "errors": dict(g.errors),
        "error_total": g.error_total,
    }


def ranking_dict(r: Ranking) -> dict[str, Any]:
    ranked = []
    for row in r.ranked:
        d = {"rank": row.rank, **group_dict(row.group)}
        d["vs_fastest"] = _round(row.vs_fastest, 4)
        d["ties_with"] = list(row.ties)
        ranked.append(d)
    return {
        "setting": r.setting.to_dict(),
        "label": r.setting.label(),
        "ranked": ranked,
        "not_ranked": [group_dict(g) for g in r.others],
    }


def footprint_dict(f: Footprint) -> dict[str, Any]:
    return {
        "target": f.target,
        "framework": f.framework,
        "framework_version": f.framework_version,
        "server": f.server,
        "server_version": f.server_version,
        "python": f.python,
        "verified": f.ok,
        "startup_s": _round(f.startup_s, 3),
        "idle_rss_bytes": f.idle_rss_bytes,
        "package_count": f.package_count,
        "env_size_bytes": f.env_size_bytes,
        "keepalive": f.keepalive,
        "failures": f.failures,
        "warnings": f.warnings,
    }


def summary_dict(s: Summary) -> dict[str, Any]:
    machine = {k: s.machine.get(k) for k in (*FINGERPRINT_KEYS, "fingerprint", "python")}
    machine["suite_commit"] = s.machine.get("suite_commit")
    return {
        "schema": REPORT_SCHEMA,
        "run_id": s.run_id,
        "runs": [
            {
                "run_id": r.run_id,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "interrupted": r.incomplete,
                "fingerprint": r.machine.get("fingerprint"),
            }
            for r in s.runs
        ],
        "machine": machine,
        "rankings": [ranking_dict(r) for r in s.rankings],
        "footprint": [footprint_dict(f) for f in s.footprints],
        "warnings": list(s.warnings),
        "method": METHOD_NOTE,
    }


def cost_dict(c: CostRow) -> dict[str, Any]:
    return {
        "target": c.target,
        "status": c.status,
        "failure": c.failure,
        "instructions_per_request": _round(c.instructions_per_request, 1),
        "spread_pct": _round(c.spread_pct, 4),
        "windows": c.windows,
        "requests_per_window": c.requests_per_window,
        "processes": c.processes,
        "rps": _round(c.rps, 1),
        "rps_setting": c.rps_setting,
    }


def render_json(s: Summary) -> str:
    d = summary_dict(s)
    if s.costs:  # only runs with a cost pass: the others' summaries stay as they were
        d["cost"] = {"targets": [cost_dict(c) for c in s.costs], "limits": COST_LIMITS}
    if s.channels:  # only runs with a channel series (<target>@latest): the others unchanged
        d["channels"] = [c.to_dict() for c in s.channels]
    if s.scaling:  # only runs with a worker sweep
        d["scaling"] = [sc.to_dict() for sc in s.scaling]
    if s.by_server:  # only runs with a framework on several servers
        d["by_server"] = [r.to_dict() for r in s.by_server]
    if s.by_python:
        d["by_python"] = [r.to_dict() for r in s.by_python]
    if s.maintenance:
        d["maintenance"] = dict(sorted(s.maintenance.items()))
    matrix = scenario_matrix(s)
    if matrix is not None:  # only runs with a scenario beyond hello
        d["scenario_matrix"] = matrix.to_dict()
    proto = protocol_report(s)
    if proto is not None:  # only runs with an HTTP/2 or a WebSocket setting
        d["protocols"] = proto.to_dict()
    return json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- Markdown -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~])")


def md(text: object) -> str:
    """Text made inert for Markdown (GitHub's job summaries render HTML, so that too)."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return " ".join(s.split())  # no newlines inside a table cell


def _table(headers: list[str], align: str, rows: list[list[str]]) -> list[str]:
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def not_ranked_rps(g: Group) -> str:
    """What a not-ranked row shows for requests/s: never a bare figure."""
    if g.state == "client_saturated" and g.rps_median is not None:
        return f"≥ {fmt.rps(g.rps_median)} (client's limit)"
    return fmt.DASH


def _ranking_md(r: Ranking) -> list[str]:
    out = [f"## {md(r.setting.label())}", ""]
    if r.ranked:
        rows = []
        for row in r.ranked:
            g = row.group
            lat = g.latency_ms or {}
            rows.append(
                [
                    str(row.rank),
                    md(g.target),
                    md(fmt.version(g.framework, g.framework_version)),
                    md(fmt.version(g.server, g.server_version)),
                    fmt.rps(g.rps_median),
                    fmt.ci(g.rps_ci),
                    fmt.pct(g.rps_cv),
                    fmt.ratio(row.vs_fastest),
                    fmt.ms(lat.get("p50")),
                    fmt.ms(lat.get("p99")),
                    fmt.num(g.cpu_s_per_1k),
                    fmt.mib(g.rss_peak_bytes),
                    md(fmt.errors(g.errors)),
                    row.tie_text,
                ]
            )
        headers = [
            "#",
            "target",
            "framework",
            "server",
            "req/s (median)",
            "95 % CI",
            "CV",
            "vs fastest",
            "p50 ms",
            "p99 ms",
            "CPU-s / 1k req",
            "peak RSS MiB",
            "errors",
            "tie",
        ]
        out += _table(headers, "rlllrlrrrrrrll", rows)
    else:
        out.append("No target could be ranked under this setting.")
    if r.others:
        out += ["", "**Not ranked**", ""]
        rows = [[md(g.target), not_ranked_rps(g), md(g.reason)] for g in r.others]
        out += _table(["target", "req/s", "why"], "lrl", rows)
    out.append("")
    return out


def _footprint_md(fps: tuple[Footprint, ...]) -> list[str]:
    if not fps:
        return []
    rows = [
        [
            md(f.target),
            "yes" if f.ok else "no",
            fmt.seconds(f.startup_s),
            fmt.mib(f.idle_rss_bytes),
            fmt.count(f.package_count),
            fmt.mib(f.env_size_bytes),
            {True: "yes", False: "no", None: "?"}[f.keepalive],
        ]
        for f in fps
    ]
    headers = [
        "target",
        "verified",
        "start-up s",
        "idle RSS MiB",
        "packages",
        "env MiB",
        "keep-alive",
    ]
    return ["## Footprint", "", *_table(headers, "llrrrrl", rows), ""]


def cost_cells(c: CostRow) -> list[str]:
    """target, instructions/request, spread, windows, processes, requests/s: as text."""
    if not c.ok:
        return [c.target, fmt.DASH, fmt.DASH, fmt.DASH, fmt.DASH, fmt.rps(c.rps)]
    procs = f"{c.processes}"
    if c.processes > 1 and c.main_share_pct is not None:
        procs += f" (main {c.main_share_pct:.1f} %)"
    return [
        c.target,
        f"{c.instructions_per_request:,.0f}",
        f"{c.spread_pct or 0.0:.2f} %",
        f"{c.windows} x {c.requests_per_window:,}",
        procs,
        fmt.rps(c.rps),
    ]


COST_HEADERS = [
    "target",
    "instructions/request",
    "spread",
    "windows",
    "processes",
    "requests/s",
]


def _cost_md(costs: tuple[CostRow, ...]) -> list[str]:
    rows = [[md(x) for x in cost_cells(c)] for c in costs if c.ok]
    setting = next((c.rps_setting for c in costs if c.rps_setting), "")
    lines = ["## Cost per request (callgrind)", ""]
    lines += _table(COST_HEADERS, "lrrrrr", rows) if rows else ["No target was counted."]
    lines.append("")
    if setting:
        lines += [f"Requests/s: median of the trials under {md(setting)}.", ""]
    failed = [c for c in costs if not c.ok]
    if failed:
        lines += ["Not counted:", ""]
        lines += [f"- {md(c.target)}: {md(c.failure)}" for c in failed]
        lines.append("")
    lines += [f"Limits: {md(COST_LIMITS)}", ""]
    return lines


CHANNEL_TITLE = "Packages that differ from the pinned lock"
CHANNEL_HEADERS = ["series", "package", "pinned", "latest"]


def channel_rows(s: Summary) -> list[list[str]]:
    """(series, package, pinned version, the channel's version) for every package that differs;
    "" for a package one side does not have."""
    return [[c.series, p.name, p.before, p.after] for c in s.channels for p in c.changes]


def channel_notes(s: Summary) -> list[str]:
    """One line per channel series with nothing to list: the same packages, or unknown."""
    out = []
    for c in s.channels:
        if not c.known:
            out.append(f"{c.series}: no package list for it or for {c.pinned} in this run")
        elif not c.changes:
            out.append(f"{c.series}: the same packages as {c.pinned}'s lock")
    return out


def _channels_md(s: Summary) -> list[str]:
    lines = [f"## {CHANNEL_TITLE}", ""]
    rows = channel_rows(s)
    if rows:
        lines += [*_table(CHANNEL_HEADERS, "llll", [[md(x) for x in r] for r in rows]), ""]
    notes = channel_notes(s)
    if notes:
        lines += [f"- {md(n)}" for n in notes] + [""]
    return lines


SCALING_TITLE = "Worker scaling"
SCALING_HEADERS = ["series", "workers", "requests/s", "95% CI", "CPU s/1k req", "efficiency",
                   "efficiency 95% CI", "trials"]  # fmt: skip
SCALING_NOTE = (
    "Each worker count runs on that many server CPUs. Efficiency: requests/s at N workers over "
    "N / n0 times requests/s at the sweep's smallest count n0 (1.0: linear scaling); intervals "
    "are percentile bootstraps of the medians over the trials."
)


def scaling_rows(s: Summary) -> list[list[str]]:
    """One row per series and worker count of every sweep, in sweep order."""
    rows = []
    for sc in s.scaling:
        for p in sc.points:
            flags = [f"{p.saturated_trials} client-saturated"] if p.saturated_trials else []
            if p.shared:
                flags.append("shared the client's CPUs")
            eff_ci = p.efficiency_ci
            rows.append(
                [
                    f"{sc.series} · {sc.setting.label()}",
                    str(p.workers),
                    fmt.rps(p.rps_median) if p.rps_median is not None else fmt.DASH,
                    fmt.ci(p.rps_ci),
                    f"{p.cpu_s_per_1k:.3f}" if p.cpu_s_per_1k is not None else fmt.DASH,
                    f"{p.efficiency:.2f}" if p.efficiency is not None else fmt.DASH,
                    f"{eff_ci[0]:.2f} – {eff_ci[1]:.2f}" if eff_ci else fmt.DASH,
                    str(p.trials) + (f" ({', '.join(flags)})" if flags else ""),
                ]
            )
    return rows


def _scaling_md(s: Summary) -> list[str]:
    rows = [[md(x) for x in r] for r in scaling_rows(s)]
    return [
        f"## {SCALING_TITLE}",
        "",
        *_table(SCALING_HEADERS, "lrrrrrrl", rows),
        "",
        md(SCALING_NOTE),
        "",
    ]


BY_SERVER_TITLE = "Framework by server"
BY_PYTHON_TITLE = "Target by Python version"
VIEW_NOTE = (
    "Median requests/s (95 % CI) and the share of the row's fastest; the same framework (or "
    "target) held fixed, only the server (or the interpreter) changes."
)


def view_rows(rows: Sequence[Row]) -> list[list[str]]:
    """One line per (row, cell): name · setting, what varies, target, rps, CI, share."""
    out = []
    for r in rows:
        for c in r.cells:
            share = f"{c.share * 100:.0f} %" if c.share is not None else c.state.replace("_", " ")
            rps = fmt.rps(c.rps_median) if c.rps_median is not None else fmt.DASH
            out.append([f"{r.name} · {r.setting.label()}", c.label, c.series, rps,
                        fmt.ci(c.rps_ci), share])  # fmt: skip
    return out


VIEW_HEADERS = ["framework · setting", "varies", "target", "requests/s", "95% CI", "share"]


def _views_md(title: str, rows: Sequence[Row], first: str) -> list[str]:
    body = [[md(x) for x in r] for r in view_rows(rows)]
    return [f"## {title}", "", *_table([first, *VIEW_HEADERS[1:]], "lllrrr", body), "",
            md(VIEW_NOTE), ""]  # fmt: skip


def _matrix_md(m: ScenarioMatrix) -> list[str]:
    rows = [[md(t), *(fmt.DASH if c is None else md(c.text) for c in cells)] for t, cells in m.rows]
    lines = [f"## {MATRIX_TITLE}", ""]
    lines += _table(["target", *m.scenarios], "l" + "r" * len(m.scenarios), rows)
    lines += ["", md(MATRIX_NOTE), ""]
    lines += [f"- {md(n)}: {md(x.label())}" for n, x in zip(m.scenarios, m.settings, strict=True)]
    return [*lines, ""]


def _protocols_md(p: ProtocolReport) -> list[str]:
    lines = [f"## {PROTOCOLS_TITLE}", ""]
    for r in p.rankings:
        rows = [[md(x) for x in row] for row in ranking_rows(r)]
        lines += [
            f"### {md(PROTOCOL_NAMES[r.protocol])}",
            "",
            *_table(PROTOCOL_RANK_HEADERS, "rlrrrl", rows),
            "",
        ]
    if p.versus:
        rows = [[md(x) for x in row] for row in versus_rows(p)]
        lines += ["### HTTP/1.1 against HTTP/2", "", *_table(VERSUS_HEADERS, "lrrrrrl", rows), ""]
    for setting, ws in p.websocket:
        rows = [[md(x) for x in row] for row in ws_rows(ws)]
        lines += [f"### WebSocket echo · {md(setting.label())}", ""]
        lines += [*_table(WS_HEADERS, "lrrrrrl", rows), ""]
    return [*lines, md(PROTOCOLS_NOTE), ""]


def render_markdown(s: Summary) -> str:
    runs = s.runs
    trials = len(s.trials)
    targets = len({g.target for g in s.groups})
    first = runs[0] if runs else None
    lines = [f"# fwbench report: {md(s.run_id)}", ""]
    if first is not None:
        end = f"finished {md(first.finished_at)}" if first.finished_at else "interrupted"
        lines.append(
            f"Run started {md(first.started_at)}, {end}; "
            f"{targets} targets, {trials} trials; machine {md(s.machine.get('cpu_model', '?'))} "
            f"(fingerprint {md(s.machine.get('fingerprint', '?'))})."
        )
        lines.append("")
    matrix = scenario_matrix(s)
    if matrix is not None:
        lines += _matrix_md(matrix)
    for r in s.rankings:
        lines += _ranking_md(r)
    proto = protocol_report(s)
    if proto is not None:
        lines += _protocols_md(proto)
    if s.costs:
        lines += _cost_md(s.costs)
    if s.channels:
        lines += _channels_md(s)
    if s.scaling:
        lines += _scaling_md(s)
    if s.by_server:
        lines += _views_md(BY_SERVER_TITLE, s.by_server, "framework · setting")
    if s.by_python:
        lines += _views_md(BY_PYTHON_TITLE, s.by_python, "target · setting")
    if s.maintenance:
        lines += ["## Unmaintained frameworks", ""]
        lines += [f"- {md(t)}: {md(why)}" for t, why in sorted(s.maintenance.items())] + [""]
    lines += _footprint_md(s.footprints)
    if s.warnings:
        lines += ["## Warnings", ""]
        lines += [f"- {md(w)}" for w in s.warnings]
        lines.append("")
    lines += ["## Method", "", md(METHOD_NOTE), ""]
    return "\n".join(lines)
