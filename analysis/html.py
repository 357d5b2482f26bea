"""The HTML report: one self-contained page (charts embedded as PNG data), no script at all.

Order of the page: the ranking tables first, then the charts, then the details and the method
(machine fingerprint, CPU sets, load settings, versions, warnings). Every string that comes from
a run goes through :func:`esc`; a Content-Security-Policy forbids scripts and any fetch, so even a
missed escape could not run code or reach the network.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

from analysis import fmt
from analysis.charts import Chart
from analysis.exporters import (
    BY_PYTHON_TITLE,
    BY_SERVER_TITLE,
    CHANNEL_HEADERS,
    CHANNEL_TITLE,
    COST_HEADERS,
    METHOD_NOTE,
    SCALING_HEADERS,
    SCALING_NOTE,
    SCALING_TITLE,
    VIEW_NOTE,
    channel_notes,
    channel_rows,
    cost_cells,
    not_ranked_rps,
    scaling_rows,
    view_rows,
)
from analysis.flamegraph import ProfileView, profiles_section
from analysis.hist import PERCENTILES
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
from analysis.summary import Group, Ranking, Summary
from analysis.views import Row
from loadgen.records import COST_LIMITS, FINGERPRINT_KEYS

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'"
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
CSP_FRAMES = f"{CSP}; frame-src 'self'"
"""With profiles: the flame pages beside the report (scripts of their own) in frames."""

CSS = """
:root { --fg: #1d1d1f; --muted: #666; --line: #ddd; --bar: #3b6ea5; --warn: #8a5300; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 16px 24px 48px; max-width: 1280px; }
h1 { font-size: 22px; margin: 4px 0; } h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.meta { color: var(--muted); margin: 0 0 8px; }
table { border-collapse: collapse; margin: 6px 0 12px; width: 100%; }
div.scroll { overflow-x: auto; }
th, td { padding: 4px 7px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { font-weight: 600; background: #f6f6f8; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.target { font-weight: 600; overflow-wrap: anywhere; min-width: 14em; }
table.ranking td.target .name { white-space: nowrap; }
table.kv { width: auto; min-width: 40%; } table.kv th { background: none; position: static; }
td .sub { display: block; font-weight: 400; color: var(--muted); font-size: 12px; }
tr.section th { background: #fff; color: var(--muted); font-weight: 600; padding-top: 12px; }
tbody.not-ranked td { color: #555; background: #fafafa; }
td.reason { color: var(--warn); }
.rel { display: flex; align-items: center; gap: 6px; justify-content: flex-end; }
.rel .bar { height: 8px; background: var(--bar); border-radius: 2px; }
.tie { color: var(--warn); }
figure { margin: 12px 0 24px; } figure img { max-width: 100%; height: auto;
         border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; }
ul.warnings li { color: var(--warn); }
.small { font-size: 12px; color: var(--muted); }
code { font-size: 12px; }
table.matrix td[data-state="failed"] { color: var(--warn); }
table.matrix td[data-state="not_applicable"] { color: var(--muted); }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _td(value: object, cls: str = "") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<td{attr}>{esc(value)}</td>"


def _th(value: object, cls: str = "", scope: str = "col") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f'<th scope="{scope}"{attr}>{esc(value)}</th>'


def _target_cell(g: Group) -> str:
    sub = " · ".join(
        x
        for x in (
            fmt.version(g.framework, g.framework_version),
            fmt.version(g.server, g.server_version),
        )
        if x
    )
    return (
        f'<td class="target"><span class="name">{esc(g.target)}</span>'
        f'<span class="sub">{esc(sub)}</span></td>'
    )


RANK_HEADERS = [
    ("#", "num"),
    ("target", ""),
    ("req/s (median)", "num"),
    ("95 % CI", "num"),
    ("CV", "num"),
    ("vs fastest", "num"),
    ("p50 ms", "num"),
    ("p99 ms", "num"),
    ("CPU-s / 1k req", "num"),
    ("peak RSS MiB", "num"),
    ("errors", "num"),
    ("tie", ""),
]


def ranking_table(r: Ranking, index: int) -> str:
    cols = len(RANK_HEADERS)
    out = [
        '<div class="scroll">',
        f'<table class="ranking" id="ranking-{index}" data-setting="{esc(r.setting.slug())}">',
        f"<caption hidden>{esc(r.setting.label())}</caption>",
        "<thead><tr>" + "".join(_th(h, c) for h, c in RANK_HEADERS) + "</tr></thead>",
        '<tbody class="ranked">',
    ]
    for row in r.ranked:
        g = row.group
        lat = g.latency_ms or {}
        width = max(1, round(60 * row.vs_fastest))
        rel = (
            f'<td class="num"><span class="rel"><span class="bar" style="width:{width}px">'
            f"</span>{esc(fmt.ratio(row.vs_fastest))}</span></td>"
        )
        tie = f'<td class="tie">{esc(row.tie_text)}</td>' if row.tie_text else "<td></td>"
        out.append(
            "<tr>"
            + _td(row.rank, "num")
            + _target_cell(g)
            + _td(fmt.rps(g.rps_median), "num")
            + _td(fmt.ci(g.rps_ci), "num")
            + _td(fmt.pct(g.rps_cv), "num")
            + rel
            + _td(fmt.ms(lat.get("p50")), "num")
            + _td(fmt.ms(lat.get("p99")), "num")
            + _td(fmt.num(g.cpu_s_per_1k), "num")
            + _td(fmt.mib(g.rss_peak_bytes), "num")
            + _td(fmt.errors(g.errors), "num")
            + tie
            + "</tr>"
        )
    if not r.ranked:
        out.append(
            f'<tr><td colspan="{cols}">No target could be ranked under this setting.</td></tr>'
        )
    out.append("</tbody>")
    if r.others:
        out.append('<tbody class="not-ranked">')
        out.append(f'<tr class="section"><th colspan="{cols}">Not ranked</th></tr>')
        for g in r.others:
            out.append(
                f'<tr data-state="{esc(g.state)}"><td class="num"></td>'
                + _target_cell(g)
                + _td(not_ranked_rps(g), "num")
                + f'<td class="reason" colspan="{cols - 3}">{esc(g.reason)}</td></tr>'
            )
        out.append("</tbody>")
    out.append("</table></div>")
    return "\n".join(out)


def _chart_figure(c: Chart, svg_dir: str | None) -> str:
    data = base64.b64encode(c.png).decode("ascii")
    link = ""
    if svg_dir is not None:
        link = f' · <a href="{esc(svg_dir)}/{esc(c.name)}.svg">SVG</a>'
    return (
        f'<figure class="chart" id="chart-{esc(c.name)}">'
        f'<img src="data:image/png;base64,{data}" width="{c.width_px}" height="{c.height_px}" '
        f'alt="{esc(c.alt)}">'
        f"<figcaption>{esc(c.title)}{link}</figcaption></figure>"
    )


def _table(
    headers: Sequence[tuple[str, str]], rows: Iterable[Sequence[tuple[object, str]]], cls: str = ""
) -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    out = [
        f'<div class="scroll"><table{attr}><thead><tr>'
        + "".join(_th(h, c) for h, c in headers)
        + "</tr></thead>"
    ]
    out.append("<tbody>")
    for row in rows:
        out.append("<tr>" + "".join(_td(v, c) for v, c in row) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _details(s: Summary) -> str:
    headers = [
        ("target", ""),
        ("state", ""),
        ("trials ok / saturated / failed", "num"),
        ("req/s per trial", "num"),
        ("median", "num"),
        ("95 % CI", "num"),
        ("CV", "num"),
        *((f"{k} ms", "num") for k, _ in PERCENTILES),
        ("max ms", "num"),
        ("CPU-s / 1k", "num"),
        ("peak RSS MiB", "num"),
        ("requests", "num"),
        ("errors", "num"),
    ]
    parts = []
    for r in s.rankings:
        rows = []
        for g in [row.group for row in r.ranked] + list(r.others):
            lat = g.latency_ms or {}
            rows.append(
                [
                    (g.target, "target"),
                    (g.state.replace("_", " "), ""),
                    (
                        f"{g.ok_trials - g.saturated_trials} / {g.saturated_trials} / "
                        f"{g.failed_trials}",
                        "num",
                    ),
                    (", ".join(fmt.rps(x) for x in g.rps) or fmt.DASH, "num"),
                    (fmt.rps(g.rps_median), "num"),
                    (fmt.ci(g.rps_ci), "num"),
                    (fmt.pct(g.rps_cv), "num"),
                    *((fmt.ms(lat.get(k)), "num") for k, _ in PERCENTILES),
                    (fmt.ms(lat.get("max")), "num"),
                    (fmt.num(g.cpu_s_per_1k), "num"),
                    (fmt.mib(g.rss_peak_bytes), "num"),
                    (fmt.count(g.requests), "num"),
                    (fmt.errors(g.errors), "num"),
                ]
            )
        parts.append(f"<h3>{esc(r.setting.label())}</h3>")
        parts.append(_table(headers, rows, "details"))
    return "\n".join(parts)


def _cost(s: Summary) -> str:
    """Instructions per request beside requests/s, the targets not counted, the limits."""
    heads = [(h, "" if i == 0 else "num") for i, h in enumerate(COST_HEADERS)]
    rows = [
        [(v, "target" if i == 0 else "num") for i, v in enumerate(cost_cells(c))]
        for c in s.costs
        if c.ok
    ]
    setting = next((c.rps_setting for c in s.costs if c.rps_setting), "")
    out = ['<section id="cost"><h2>Cost per request (callgrind)</h2>']
    out.append(_table(heads, rows, "cost") if rows else "<p>No target was counted.</p>")
    if setting:
        out.append(f'<p class="small">Requests/s: median of the trials under {esc(setting)}.</p>')
    failed = [c for c in s.costs if not c.ok]
    if failed:
        out.append(
            "<p>Not counted:</p><ul>"
            + "".join(f"<li>{esc(c.target)}: {esc(c.failure)}</li>" for c in failed)
            + "</ul>"
        )
    out.append(f'<p class="small">Limits: {esc(COST_LIMITS)}</p>')
    out.append("</section>")
    return "\n".join(out)


def _channels(s: Summary) -> str:
    """Channel series (``<target>@latest``) against their pinned lock, package by package."""
    heads = [(h, "") for h in CHANNEL_HEADERS]
    rows = [[(v, "target" if i == 0 else "") for i, v in enumerate(r)] for r in channel_rows(s)]
    out = [f'<section id="channels"><h2>{esc(CHANNEL_TITLE)}</h2>']
    if rows:
        out.append(_table(heads, rows, "channels"))
    notes = channel_notes(s)
    if notes:
        out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    out.append("</section>")
    return "\n".join(out)


def _scaling(s: Summary) -> str:
    """Worker sweeps: requests/s, CPU per request and efficiency per worker count."""
    heads = [(h, "" if i in (0, 7) else "num") for i, h in enumerate(SCALING_HEADERS)]
    rows = [
        [(v, "target" if i == 0 else ("" if i == 7 else "num")) for i, v in enumerate(r)]
        for r in scaling_rows(s)
    ]
    out = [f'<section id="scaling"><h2>{esc(SCALING_TITLE)}</h2>', _table(heads, rows, "scaling")]
    out.append(f'<p class="small">{esc(SCALING_NOTE)}</p></section>')
    return "\n".join(out)


def _view(section: str, title: str, rows: Sequence[Row], first: str) -> str:
    heads = [(first, ""), ("varies", ""), ("target", ""), ("requests/s", "num"),
             ("95% CI", "num"), ("share", "num")]  # fmt: skip
    cells = [
        [(v, "target" if i == 2 else ("num" if i >= 3 else "")) for i, v in enumerate(r)]
        for r in view_rows(rows)
    ]
    return (
        f'<section id="{section}"><h2>{esc(title)}</h2>{_table(heads, cells, section)}'
        f'<p class="small">{esc(VIEW_NOTE)}</p></section>'
    )


def _maintenance(s: Summary) -> str:
    items = "".join(f"<li>{esc(t)}: {esc(why)}</li>" for t, why in sorted(s.maintenance.items()))
    return f'<section id="maintenance"><h2>Unmaintained frameworks</h2><ul>{items}</ul></section>'


def _footprint(s: Summary) -> str:
    headers = [
        ("target", ""),
        ("verified", ""),
        ("start-up s", "num"),
        ("idle RSS MiB", "num"),
        ("packages", "num"),
        ("environment MiB", "num"),
        ("keep-alive", ""),
        ("verifier notes", ""),
    ]
    rows = [
        [
            (f.target, "target"),
            ("yes" if f.ok else "no", ""),
            (fmt.seconds(f.startup_s), "num"),
            (fmt.mib(f.idle_rss_bytes), "num"),
            (fmt.count(f.package_count), "num"),
            (fmt.mib(f.env_size_bytes), "num"),
            ({True: "yes", False: "no", None: "?"}[f.keepalive], ""),
            ("; ".join(x for x in (f.failures, f.warnings) if x), "small"),
        ]
        for f in s.footprints
    ]
    return _table(headers, rows, "footprint") if rows else "<p>No verifier verdicts recorded.</p>"


def _kv(items: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f'<tr><th scope="row">{esc(k)}</th>{_td(v)}</tr>' for k, v in items)
    return f'<table class="kv">{rows}</table>'


def _loads(s: Summary) -> str:
    keys = (
        "name",
        "client",
        "model",
        "scenario",
        "connections",
        "rate",
        "duration",
        "warmup",
        "procs",
        "timeout",
        "check_every",
        "users",
        "spawn_rate",
        "locust_workers",
    )
    parts = []
    for run in s.runs:
        loads = [
            ld for ld in (run.config.get("run") or {}).get("load") or [] if isinstance(ld, dict)
        ]
        if not loads:
            continue
        rows = [[(_plain(ld.get(k)), "") for k in keys] for ld in loads]
        if len(s.runs) > 1:
            parts.append(f"<h3>{esc(run.run_id)}</h3>")
        parts.append(_table([(k, "") for k in keys], rows, "loads"))
        run_cfg = run.config.get("run") or {}
        server = run.config.get("server") or {}
        sampler = run.config.get("sampler") or {}
        parts.append(
            _kv(
                [
                    ("trials per setting", _plain(run_cfg.get("trials"))),
                    ("server workers", _plain(server.get("workers"))),
                    ("sampler interval s", _plain(sampler.get("interval"))),
                    ("client saturation threshold %", _plain(sampler.get("saturation_pct"))),
                ]
            )
        )
    return "\n".join(parts) or "<p>No load settings recorded.</p>"


def _plain(v: Any) -> str:
    if v is None:
        return fmt.DASH
    if isinstance(v, list | tuple):
        return ", ".join(_plain(x) for x in v)
    return str(v)


def _versions(s: Summary) -> str:
    seen: dict[str, Group] = {}
    for grp in s.groups:
        if grp.target not in seen or (not seen[grp.target].framework and grp.framework):
            seen[grp.target] = grp
    fps = {f.target: f for f in s.footprints}
    rows = []
    for target in sorted(set(seen) | set(fps)):
        g: Group | None = seen.get(target)
        f = fps.get(target)
        fw = (
            fmt.version(g.framework, g.framework_version)
            if g and g.framework
            else (fmt.version(f.framework, f.framework_version) if f else "")
        )
        if target in s.maintenance:
            fw += f" ({s.maintenance[target]})"
        sv = (
            fmt.version(g.server, g.server_version)
            if g and g.server
            else (fmt.version(f.server, f.server_version) if f else "")
        )
        rows.append(
            [
                (target, "target"),
                (fw, ""),
                (sv, ""),
                ((g.python if g else "") or (f.python if f else ""), ""),
                (g.kind if g else "", ""),
                ({True: "yes", False: "no", None: "?"}[g.keepalive if g else None], ""),
            ]
        )
    headers = [
        ("target", ""),
        ("framework", ""),
        ("server", ""),
        ("python", ""),
        ("kind", ""),
        ("keep-alive", ""),
    ]
    return _table(headers, rows, "versions")


def _machine(s: Summary) -> str:
    m = s.machine
    keys = [*FINGERPRINT_KEYS, *sorted(k for k in m if k not in FINGERPRINT_KEYS)]

    def shown(key: str) -> str:
        v = m.get(key)
        if key == "memory_bytes" and isinstance(v, int):
            return f"{v:,} ({v / 2**30:.1f} GiB)"
        return _plain(v) or "none"

    return _kv((k, shown(k)) for k in keys if k in m)


def _runs(s: Summary) -> str:
    rows = [
        [
            (r.run_id, ""),
            (r.started_at, ""),
            (r.finished_at or "not finished (interrupted)", ""),
            (r.machine.get("fingerprint", ""), ""),
            (r.path.name, ""),
        ]
        for r in s.runs
    ]
    headers = [("run", ""), ("started", ""), ("finished", ""), ("fingerprint", ""), ("folder", "")]
    return _table(headers, rows, "runs")


def _matrix(m: ScenarioMatrix) -> str:
    """The framework-by-scenario matrix (the front page's first table)."""
    heads = "".join(_th(n, "num") for n in m.scenarios)
    out = [
        f'<section id="scenario-matrix"><h2>{esc(MATRIX_TITLE)}</h2>',
        '<div class="scroll"><table class="matrix">',
        f"<thead><tr>{_th('target')}{heads}</tr></thead><tbody>",
    ]
    for target, cells in m.rows:
        tds = "".join(
            _td(fmt.DASH, "num")
            if c is None
            else f'<td class="num" data-state="{esc(c.state)}" title="{esc(c.reason)}">'
            f"{esc(c.text)}</td>"
            for c in cells
        )
        out.append(f'<tr><td class="target">{esc(target)}</td>{tds}</tr>')
    out.append("</tbody></table></div>")
    cols = "; ".join(f"{n}: {x.label()}" for n, x in zip(m.scenarios, m.settings, strict=True))
    out.append(f'<p class="small">{esc(MATRIX_NOTE)} Columns: {esc(cols)}.</p></section>')
    return "\n".join(out)


def _protocols(p: ProtocolReport) -> str:
    """HTTP/2 and WebSocket: a ranking per protocol, HTTP/1.1 against HTTP/2, WebSocket echo."""

    def table(heads: Sequence[str], rows: list[list[str]], text: Sequence[int]) -> str:
        cls = ["target" if i == 1 else ("" if i in text else "num") for i in range(len(heads))]
        return _table(
            [(h, "" if i in text else "num") for i, h in enumerate(heads)],
            [[(v, cls[i]) for i, v in enumerate(r)] for r in rows],
            "protocols",
        )

    out = [f'<section id="protocols"><h2>{esc(PROTOCOLS_TITLE)}</h2>']
    for r in p.rankings:
        out.append(f"<h3>{esc(PROTOCOL_NAMES[r.protocol])}</h3>")
        out.append(table(PROTOCOL_RANK_HEADERS, ranking_rows(r), (1, 5)))
    if p.versus:
        out.append("<h3>HTTP/1.1 against HTTP/2</h3>")
        out.append(table(VERSUS_HEADERS, versus_rows(p), (0, 6)))
    for setting, ws in p.websocket:
        out.append(f"<h3>WebSocket echo · {esc(setting.label())}</h3>")
        out.append(table(WS_HEADERS, ws_rows(ws), (0, 6)))
    out.append(f'<p class="small">{esc(PROTOCOLS_NOTE)}</p></section>')
    return "\n".join(out)


def render_html(
    s: Summary,
    charts: Sequence[Chart],
    *,
    svg_dir: str | None = "charts",
    profiles: Sequence[ProfileView] = (),
) -> str:
    first = s.runs[0] if s.runs else None
    trials = len(s.trials)
    targets = len({g.target for g in s.groups})
    title = f"fwbench report · {s.run_id}"
    meta = [f"{targets} targets", f"{trials} trials"]
    if first is not None:
        meta.insert(0, f"started {first.started_at}")
        meta.insert(1, f"finished {first.finished_at}" if first.finished_at else "interrupted")
    meta.append(str(s.machine.get("cpu_model", "")))
    body = [
        "<header>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{esc(" · ".join(x for x in meta if x))}</p>',
    ]
    if s.warnings:
        body.append(
            f'<p class="meta"><a href="#warnings">{esc(fmt.count(len(s.warnings)))} '
            f"warning{'s' if len(s.warnings) != 1 else ''}</a> (see Method)</p>"
        )
    body.append("</header>")
    matrix = scenario_matrix(s)
    if matrix is not None:
        body.append(_matrix(matrix))
    body.append('<section id="rankings">')
    for i, r in enumerate(s.rankings, 1):
        body.append(f"<h2>Ranking · {esc(r.setting.label())}</h2>")
        body.append(ranking_table(r, i))
    body.append(f'<p class="small">{esc(METHOD_NOTE)}</p>')
    body.append("</section>")
    if (proto := protocol_report(s)) is not None:
        body.append(_protocols(proto))
    if s.costs:
        body.append(_cost(s))
    if s.channels:
        body.append(_channels(s))
    if s.scaling:
        body.append(_scaling(s))
    if s.by_server:
        body.append(_view("by-server", BY_SERVER_TITLE, s.by_server, "framework · setting"))
    if s.by_python:
        body.append(_view("by-python", BY_PYTHON_TITLE, s.by_python, "target · setting"))
    if s.maintenance:
        body.append(_maintenance(s))
    body.append('<section id="charts"><h2>Charts</h2>')
    body += [_chart_figure(c, svg_dir) for c in charts]
    if not charts:
        body.append("<p>No chart: nothing was measured.</p>")
    body.append("</section>")
    if profiles:
        body.append(profiles_section(profiles))
    body.append('<section id="details"><h2>Details per load setting</h2>')
    body.append(_details(s))
    body.append("<h2>Footprint (from the verifier)</h2>")
    body.append(_footprint(s))
    body.append("</section>")
    body.append('<section id="method"><h2>Method</h2>')
    body.append(f"<p>{esc(METHOD_NOTE)}</p>")
    body.append('<h3 id="warnings">Warnings</h3>')
    if s.warnings:
        body.append(
            '<ul class="warnings">' + "".join(f"<li>{esc(w)}</li>" for w in s.warnings) + "</ul>"
        )
    else:
        body.append("<p>None.</p>")
    body.append("<h3>Machine fingerprint</h3>")
    body.append(_machine(s))
    body.append("<h3>CPU sets</h3>")
    body.append(
        _kv(
            [
                ("server (target) CPUs", _plain(s.machine.get("server_cpus"))),
                ("client CPUs", _plain(s.machine.get("client_cpus"))),
                ("isolated CPUs", _plain(s.machine.get("isolated_cpus")) or "none"),
            ]
        )
    )
    body.append("<h3>Load settings</h3>")
    body.append(_loads(s))
    body.append("<h3>Versions</h3>")
    body.append(_versions(s))
    body.append("<h3>Runs</h3>")
    body.append(_runs(s))
    body.append("</section>")
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        + (CSP_META if not profiles else CSP_META.replace(CSP, CSP_FRAMES))
        + "\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
