"""Interactive flame graphs: self-contained HTML pages (inline SVG, a small inline script).

A page (:func:`flame_page`, :func:`diff_page`) is one file that works offline: the frames are
drawn as SVG rectangles on the server side (the page reads without its script: every frame has
a tooltip, its ``<title>``), and a small script written here adds what a flame graph is read
with: hover shows the function, its samples and its share; a click zooms into a frame (its
ancestors stay as a strip above; a click on the root, Esc or "Reset zoom" zooms out); the
search box highlights every frame whose name holds the text and says what share of the samples
they cover. ``#search=TEXT`` and ``#zoom=TEXT`` in the page's address do the same on load (a
link can point at a function).

The layout is an icicle: the root (``all``, every sample) on top, callees below their callers,
each frame as wide as its samples; siblings in name order, so two profiles draw alike. Colours
are warm and fixed per function name; in the differential page red frames gained samples per
request from the good profile to the bad one, blue frames lost some, the deeper the colour the
larger the change.

Every name comes from a profile of third-party code: it is escaped wherever it is written, and
the page's Content-Security-Policy allows no fetch, no frame and no script but its own inline one.
The report embeds a page in an ``<iframe>`` (:func:`profiles_section`).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.flame import DiffRow, FunctionRow, Node, build_tree, frame_label, function_table
from loadgen.records import ProfileRecord, RecordError, Stacks, run_profiles

WIDTH = 1200
ROW = 18
MIN_FRACTION = 0.0002
"""Frames narrower than this share of the root are not drawn (said on the page)."""
TOP_FUNCTIONS = 15

PAGE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

PAGE_CSS = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 10px 14px; color: #1d1d1f; }
h1 { font-size: 17px; margin: 2px 0 4px; } p.meta { color: #666; margin: 0 0 8px; }
.bar { display: flex; gap: 8px; align-items: center; margin: 6px 0; flex-wrap: wrap; }
#status { color: #444; min-height: 1.4em; font-family: monospace; font-size: 12px; }
svg { display: block; font: 12px monospace; }
g.f rect { stroke: #fff; stroke-width: 0.5; } g.f:hover rect { stroke: #000; stroke-width: 1; }
g.f text { pointer-events: none; fill: #000; } g.f { cursor: pointer; }
g.anc rect { opacity: 0.55; } g.match rect { fill: #d946ef !important; }
#tip { position: fixed; pointer-events: none; background: #fffff0; border: 1px solid #999;
       padding: 3px 6px; font: 12px monospace; display: none; max-width: 640px; z-index: 2; }
table { border-collapse: collapse; margin: 8px 0; } th, td { padding: 2px 8px;
        border-bottom: 1px solid #ddd; text-align: left; } td.num, th.num { text-align: right;
        font-variant-numeric: tabular-nums; } td.fn { font-family: monospace; font-size: 12px; }
.gain { color: #b91c1c; } .loss { color: #1d4ed8; } .small { color: #666; font-size: 12px; }
"""

# The script: layout on zoom, hover, search. Written for this page; reads the frames from the
# SVG's data attributes (no data in the script itself).
PAGE_JS = r"""
(function () {
  "use strict";
  var svg = document.getElementById("flame");
  var W = +svg.getAttribute("data-width"), total = +svg.getAttribute("data-total");
  var unit = svg.getAttribute("data-unit");
  var tip = document.getElementById("tip"), status = document.getElementById("status");
  var nodes = Array.prototype.map.call(svg.querySelectorAll("g.f"), function (g) {
    return { g: g, r: g.querySelector("rect"), t: g.querySelector("text"),
      x0: +g.getAttribute("data-x0"), x1: +g.getAttribute("data-x1"),
      d: +g.getAttribute("data-d"), v: +g.getAttribute("data-v"),
      delta: g.getAttribute("data-delta"), n: g.getAttribute("data-n") };
  });
  var zoomed = null;
  function fit(s, w) {
    var c = Math.floor((w - 6) / 7.3);
    if (c < 3) return "";
    return s.length <= c ? s : s.slice(0, c - 2) + "..";
  }
  function layout(z) {
    zoomed = z;
    var a = z ? z.x0 : 0, b = z ? z.x1 : 1, dz = z ? z.d : 0, span = b - a;
    nodes.forEach(function (o) {
      if (o.x1 <= a + 1e-12 || o.x0 >= b - 1e-12) { o.g.style.display = "none"; return; }
      var lo = Math.max(o.x0, a), x = (lo - a) / span * W, w = (Math.min(o.x1, b) - lo) / span * W;
      o.g.style.display = "";
      o.r.setAttribute("x", x.toFixed(2));
      o.r.setAttribute("width", Math.max(w - 0.5, 0.1).toFixed(2));
      o.t.setAttribute("x", (x + 3).toFixed(2));
      o.t.textContent = fit(o.n, w);
      if (o.d < dz) o.g.classList.add("anc"); else o.g.classList.remove("anc");
    });
    document.getElementById("reset").disabled = !z;
  }
  function fmt(v) { return v >= 100 ? Math.round(v).toLocaleString("en") : v.toPrecision(3); }
  function describe(o) {
    var pct = (o.v / total * 100).toFixed(2);
    var s = o.n + " \u2014 " + fmt(o.v) + " " + unit + " (" + pct + " %)";
    if (o.delta !== null) {
      var d = +o.delta;
      s += ", " + (d >= 0 ? "+" : "") + fmt(d) + " vs good";
    }
    return s;
  }
  nodes.forEach(function (o) {
    o.g.addEventListener("mousemove", function (e) {
      tip.textContent = describe(o);
      tip.style.display = "block";
      tip.style.left = Math.min(e.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
      tip.style.top = (e.clientY + 14) + "px";
      status.textContent = describe(o);
    });
    o.g.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    o.g.addEventListener("click", function () { layout(o.d === 0 || o === zoomed ? null : o); });
  });
  document.getElementById("reset").addEventListener("click", function () { layout(null); });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") layout(null); });
  var box = document.getElementById("search"), found = document.getElementById("found");
  function search(text) {
    var q = text.toLowerCase(), spans = [];
    nodes.forEach(function (o) {
      var hit = q !== "" && o.n.toLowerCase().indexOf(q) >= 0;
      if (hit) { o.g.classList.add("match"); spans.push([o.x0, o.x1]); }
      else o.g.classList.remove("match");
    });
    spans.sort(function (p, q2) { return p[0] - q2[0]; });
    var covered = 0, end = -1;
    spans.forEach(function (s) {
      if (s[0] >= end) { covered += s[1] - s[0]; end = s[1]; }
      else if (s[1] > end) { covered += s[1] - end; end = s[1]; }
    });
    found.textContent = q === "" ? "" : spans.length + " frames match, " +
      (covered * 100).toFixed(2) + " % of the " + unit;
    return spans.length;
  }
  box.addEventListener("input", function () { search(box.value); });
  var hash = decodeURIComponent(location.hash.slice(1));
  layout(null);
  if (hash.indexOf("search=") === 0) { box.value = hash.slice(7); search(box.value); }
  if (hash.indexOf("zoom=") === 0) {
    var q = hash.slice(5).toLowerCase();
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].n.toLowerCase().indexOf(q) >= 0) { layout(nodes[i]); break; }
    }
  }
  document.body.setAttribute("data-ready", "1");
})();
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _warm(name: str) -> str:
    """A warm colour fixed by the name (red to yellow), as flame graphs draw CPU time."""
    h = hashlib.blake2b(name.encode("utf-8", "replace"), digest_size=4).digest()
    hue = h[0] / 255 * 50  # 0 red .. 50 orange-yellow
    light = 52 + h[1] / 255 * 14
    return f"hsl({hue:.0f},85%,{light:.0f}%)"


def _diverging(delta: float, scale: float) -> str:
    """Red for gained, blue for lost, white for unchanged; ``scale`` is the largest |delta|."""
    if scale <= 0 or abs(delta) < 1e-9:
        return "hsl(0,0%,88%)"
    strength = min(1.0, abs(delta) / scale)
    light = 92 - 45 * strength
    hue = 0 if delta > 0 else 220
    return f"hsl({hue},80%,{light:.0f}%)"


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def flame_svg(root: Node, *, unit: str = "samples", label_frames: bool = True) -> str:
    """The tree as SVG: one ``<g class="f">`` per frame, with its place in data attributes."""
    total = root.value or 1.0
    depth = root.depth()
    deltas = [n.delta for n in _walk(root) if n.delta is not None]
    scale = max((abs(d) for d in deltas), default=0.0)
    out: list[str] = []
    hidden = 0

    def draw(node: Node, x0: float, d: int) -> None:
        nonlocal hidden
        frac = node.value / total
        if frac < MIN_FRACTION and d > 0:
            hidden += 1
            return
        x1 = x0 + frac
        name = frame_label(node.name) if label_frames else node.name
        x, w = x0 * WIDTH, frac * WIDTH
        fill = _diverging(node.delta, scale) if node.delta is not None else _warm(node.name)
        delta = f' data-delta="{node.delta:.6g}"' if node.delta is not None else ""
        tail = f", {node.delta:+.3g} vs good" if node.delta is not None else ""
        title = f"{name} — {_fmt(node.value)} {unit} ({frac * 100:.2f} %){tail}"
        text = name if len(name) * 7.3 + 6 <= w else ""
        out.append(
            f'<g class="f" data-x0="{x0:.8f}" data-x1="{x1:.8f}" data-d="{d}" '
            f'data-v="{node.value:.6g}"{delta} data-n="{esc(name)}">'
            f"<title>{esc(title)}</title>"
            f'<rect x="{x:.2f}" y="{d * ROW}" width="{max(w - 0.5, 0.1):.2f}" '
            f'height="{ROW - 1}" fill="{fill}"></rect>'
            f'<text x="{x + 3:.2f}" y="{d * ROW + 13}">{esc(text)}</text></g>'
        )
        child_x = x0
        for c in node.sorted_children():
            draw(c, child_x, d + 1)
            child_x += c.value / total

    draw(root, 0.0, 0)
    height = depth * ROW
    note = f"{hidden} frames under {MIN_FRACTION * 100:g} % of the {unit} are not drawn"
    return (
        f'<svg id="flame" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" data-width="{WIDTH}" data-total="{total:.6g}" '
        f'data-unit="{esc(unit)}" data-hidden="{hidden}" role="img" aria-label="flame graph">'
        + "".join(out)
        + "</svg>"
        + (f'<p class="small">{esc(note)}.</p>' if hidden else "")
    )


def _walk(node: Node) -> list[Node]:
    out = [node]
    for c in node.children.values():
        out += _walk(c)
    return out


def _page(title: str, meta: str, svg: str, tables: str, legend: str = "") -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">\n'
        f"<title>{esc(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n"
        f'<p class="meta">{esc(meta)}</p>\n{legend}'
        '<div class="bar"><input id="search" type="search" placeholder="search functions" '
        'size="32" aria-label="search functions"> <button id="reset" type="button" '
        'disabled>Reset zoom</button> <span id="found" class="small"></span></div>\n'
        '<div id="status">Hover a frame for its samples; click to zoom in.</div>\n'
        f'<div id="tip"></div>\n<div class="graph">{svg}</div>\n{tables}\n'
        f"<script>{PAGE_JS}</script>\n</body>\n</html>\n"
    )


def _head(names: Sequence[str]) -> str:
    cells = "".join(
        f'<th class="{"" if i == 0 else "num"}">{esc(h)}</th>' for i, h in enumerate(names)
    )
    return f"<thead><tr>{cells}</tr></thead><tbody>"


def top_functions_table(
    rows: Sequence[FunctionRow], total: int, requests: int = 0, limit: int = TOP_FUNCTIONS
) -> str:
    """The functions with the most self samples: self, total, shares and per 1,000 requests."""
    per = 1000.0 / requests if requests else None
    head = ["function", "self", "self %", "total", "total %"]
    if per is not None:
        head.append("self / 1k requests")
    out = [
        '<table class="functions"><thead><tr>'
        + "".join(
            f'<th class="{"" if i == 0 else "num"}">{esc(h)}</th>' for i, h in enumerate(head)
        )
        + "</tr></thead><tbody>"
    ]
    for r in rows[:limit]:
        cells = [
            f'<td class="fn">{esc(frame_label(r.function))}</td>',
            f'<td class="num">{r.self_samples:,}</td>',
            f'<td class="num">{r.self_samples / total * 100 if total else 0:.1f} %</td>',
            f'<td class="num">{r.total_samples:,}</td>',
            f'<td class="num">{r.total_samples / total * 100 if total else 0:.1f} %</td>',
        ]
        if per is not None:
            cells.append(f'<td class="num">{r.self_samples * per:.3g}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def diff_table(rows: Sequence[DiffRow], limit: int = 25) -> str:
    """The differential view as a table: self samples per 1,000 requests, good, bad, change."""
    head = ["function", "good / 1k req", "bad / 1k req", "change", "change %",
            "total good", "total bad"]  # fmt: skip
    out = [
        '<table class="diff"><thead><tr>'
        + "".join(
            f'<th class="{"" if i == 0 else "num"}">{esc(h)}</th>' for i, h in enumerate(head)
        )
        + "</tr></thead><tbody>"
    ]
    for r in rows[:limit]:
        cls = "gain" if r.change > 0 else ("loss" if r.change < 0 else "")
        pct = r.change_pct
        out.append(
            f'<tr class="{cls}"><td class="fn">{esc(r.function)}</td>'
            f'<td class="num">{r.good:.3g}</td><td class="num">{r.bad:.3g}</td>'
            f'<td class="num {cls}">{r.change:+.3g}</td>'
            f'<td class="num">{"new" if pct is None else f"{pct:+.0f} %"}</td>'
            f'<td class="num">{r.good_total:.3g}</td><td class="num">{r.bad_total:.3g}</td></tr>'
        )
    out.append("</tbody></table>")
    return "".join(out)


def flame_page(title: str, stacks: Stacks, *, requests: int = 0, meta: str = "") -> str:
    """One profile's interactive flame graph and its top functions, as a whole HTML page."""
    root = build_tree(stacks)
    total = int(root.value)
    per = f", {total / requests * 1000:,.1f} samples per 1,000 requests" if requests else ""
    line = meta or f"{total:,} samples{per}"
    rows = function_table(stacks)
    tables = "<h2>Top functions (self samples)</h2>" + top_functions_table(rows, total, requests)
    return _page(title, line, flame_svg(root), tables)


def diff_page(title: str, tree: Node, rows: Sequence[DiffRow], *, meta: str = "") -> str:
    """The differential view: the bad profile's shape per 1,000 requests, coloured by change
    against the good (red gained, blue lost), and the table of the largest changes."""
    legend = (
        '<p class="small"><span class="gain">red: more samples per request than in the good '
        'profile</span> · <span class="loss">blue: fewer</span> · width: the bad profile</p>\n'
    )
    tables = "<h2>Largest changes (self samples per 1,000 requests)</h2>" + diff_table(rows)
    svg = flame_svg(tree, unit="samples per 1k requests", label_frames=False)
    return _page(title, meta, svg, tables, legend)


# --- the report's section ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileView:
    """A profile as the report shows it: the record and its stacks (read from the run)."""

    record: ProfileRecord
    stacks: Stacks

    @property
    def page_name(self) -> str:
        safe = "".join(c if c.isalnum() or c in "._-@" else "_" for c in self.record.target)
        return f"flame-{safe}.html"


def load_profiles(run_dirs: Sequence[Path]) -> list[ProfileView]:
    """The profiles of the runs (failed ones with no stacks), in run and record order."""
    out: list[ProfileView] = []
    for d in run_dirs:
        for rec in run_profiles(Path(d)):
            stacks: Stacks = {}
            if rec.ok:
                try:
                    stacks = rec.read_stacks(Path(d))
                except (OSError, ValueError) as exc:
                    raise RecordError(f"{Path(d) / rec.stacks}: {exc}") from None
            out.append(ProfileView(rec, stacks))
    return out


def sampled(r: ProfileRecord) -> str:
    """What a profile's samples are, in words."""
    if r.gil:
        return (
            "only the thread holding the GIL was sampled: the server's Python work (time in C "
            "that released the GIL and the kernel's are not in it)"
        )
    return "every thread py-spy did not see idle was sampled (a pool's waiting threads are in it)"


def write_pages(views: Sequence[ProfileView], out: Path) -> list[Path]:
    """One flame page per profiled target in ``out`` (``flame-<target>.html``)."""
    written = []
    for v in views:
        if not v.record.ok:
            continue
        r = v.record
        total = sum(v.stacks.values())
        meta = (
            f"{r.server} · {r.framework} {r.framework_version} · {total:,} samples at "
            f"{r.rate_hz} Hz over {r.duration_s:.1f} s · {r.requests:,} requests on "
            f"{r.connections} connections · "
            f"{total / r.requests * 1000 if r.requests else 0:,.1f} samples per 1,000 requests"
            f" · {r.py_spy} · run {r.run_id} · {sampled(r)}"
        )
        page = flame_page(f"Where the time went · {r.target}", v.stacks, requests=r.requests,
                          meta=meta)  # fmt: skip
        path = out / v.page_name
        path.write_text(page, encoding="utf-8")
        written.append(path)
    return written


def profiles_section(views: Sequence[ProfileView]) -> str:
    """The report's "Where the time went" section: per target, its flame page in a frame, a
    link to open it alone and its top functions; targets that could not be profiled, named."""
    out = [
        '<section id="profiles"><h2>Where the time went (py-spy flame graphs)</h2>',
        '<p class="small">A separate profiled trial per target after the measured ones (never '
        "ranked nor gated): py-spy sampled the server's processes while the raw client sent "
        "load. Width: samples. Hover a frame, click to zoom, search by name.</p>",
    ]
    for v in views:
        r = v.record
        if not r.ok:
            continue
        total = sum(v.stacks.values())
        out.append(f'<h3 id="profile-{esc(r.target)}">{esc(r.target)}</h3>')
        out.append(
            f'<iframe class="flame" src="{esc(v.page_name)}" title="flame graph of '
            f'{esc(r.target)}" width="100%" height="560" loading="lazy"></iframe>'
        )
        out.append(
            f'<p class="small"><a href="{esc(v.page_name)}">open the flame graph alone</a> · '
            f"{total:,} samples · {r.requests:,} requests in {r.duration_s:.1f} s · "
            f"{esc(sampled(r))}</p>"
        )
        out.append(top_functions_table(function_table(v.stacks), total, r.requests, limit=10))
    failed = [v.record for v in views if not v.record.ok]
    if failed:
        out.append(
            "<p>Not profiled:</p><ul>"
            + "".join(f"<li>{esc(r.target)}: {esc(r.error)}</li>" for r in failed)
            + "</ul>"
        )
    out.append("</section>")
    return "\n".join(out)
