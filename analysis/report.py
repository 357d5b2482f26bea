"""Write a report folder: ``index.html``, ``summary.md``, ``summary.json`` and ``charts/``.

By default the folder is ``<reports_dir>/<run-id>/`` and ``<reports_dir>/latest`` is a symlink
to the report of the newest run (by start time: re-rendering an old run does not move it).

A report rewrites its folder (``charts/`` is emptied first), so it writes only into a folder that
is missing, empty, or a report of ours (its ``summary.json`` says ``fwbench.report/...``);
anything else is refused with :class:`ReportDirError`, never overwritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from analysis.charts import Chart, all_charts
from analysis.errors import ReportDirError as ReportDirError  # re-exported
from analysis.exporters import REPORT_SCHEMA, render_json, render_markdown
from analysis.flamegraph import ProfileView, load_profiles, write_pages
from analysis.html import render_html
from analysis.load import load_runs
from analysis.summary import Summary, summarize

HTML_NAME = "index.html"
MARKDOWN_NAME = "summary.md"
JSON_NAME = "summary.json"
CHARTS_DIR = "charts"
LATEST = "latest"
_RESERVED = {LATEST, "runs", "history.sqlite"}
_SCHEMA_FAMILY = REPORT_SCHEMA.rsplit("/", 1)[0] + "/"  # "fwbench.report/"


def report_dir_name(summary: Summary) -> str:
    """The folder name for a report: the run id (ids joined by '+' for several runs)."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", summary.run_id).strip("._") or "run"
    return f"{name}-report" if name in _RESERVED else name


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def is_report_dir(path: Path) -> bool:
    """True when ``path`` holds a report of ours: a ``summary.json`` of this schema family."""
    try:
        data = json.loads((path / JSON_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    schema = data.get("schema") if isinstance(data, dict) else None
    return isinstance(schema, str) and schema.startswith(_SCHEMA_FAMILY)


def check_out_dir(out: Path) -> None:
    """Refuse (:class:`ReportDirError`) a folder that a report must not write into."""
    if out.exists() and not out.is_dir():
        raise ReportDirError(f"{out}: not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not is_report_dir(out):
        raise ReportDirError(
            f"{out}: not empty and not an fwbench report (no {JSON_NAME} of schema "
            f"{REPORT_SCHEMA}): nothing written; name another folder with --out, "
            "or empty this one"
        )


def write_files(
    summary: Summary, charts: Sequence[Chart], out: Path, profiles: Sequence[ProfileView] = ()
) -> Path:
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    # summary.json first: it marks the folder as ours, so a write cut short can be redone.
    _write_text(out / JSON_NAME, render_json(summary))
    chart_dir = out / CHARTS_DIR
    if chart_dir.is_dir():
        shutil.rmtree(chart_dir)
    chart_dir.mkdir()
    for c in charts:
        (chart_dir / f"{c.name}.png").write_bytes(c.png)
        (chart_dir / f"{c.name}.svg").write_bytes(c.svg)
    _write_text(out / MARKDOWN_NAME, render_markdown(summary))
    for old in out.glob("flame-*.html"):  # a flame page of an earlier render of this folder
        old.unlink()
    write_pages(profiles, out)
    html_path = out / HTML_NAME
    _write_text(html_path, render_html(summary, charts, svg_dir=CHARTS_DIR, profiles=profiles))
    return html_path


def _newest_start(report: Path) -> str:
    try:
        data = json.loads((report / JSON_NAME).read_text(encoding="utf-8"))
        return max(str(r.get("started_at") or "") for r in data.get("runs") or [{}])
    except (OSError, ValueError, AttributeError):
        return ""


def update_latest(reports_dir: Path, report: Path) -> bool:
    """Point ``reports_dir/latest`` at ``report`` unless it points at a newer run's report."""
    link = reports_dir / LATEST
    if link.is_symlink() or link.exists():
        current = link.resolve()
        if current != report.resolve() and _newest_start(current) > _newest_start(report):
            return False
        if link.exists() and not link.is_symlink():
            return False  # something that is not ours: leave it
    tmp = reports_dir / f".{LATEST}.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    target = os.path.relpath(report.resolve(), reports_dir.resolve())
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
    return True


def write_report(run_dirs: list[Path], out_dir: Path | None, reports_dir: Path) -> Path:
    """Load the runs, write the report and return the HTML page's path.

    ``out_dir`` None: ``reports_dir/<run-id>/``, and ``reports_dir/latest`` is updated.
    Raises :class:`analysis.load.LoadError` for a run this code cannot read and
    :class:`ReportDirError` for a folder that is not a report of ours (see :func:`check_out_dir`).
    """
    summary = summarize(load_runs([Path(d) for d in run_dirs]))
    out = out_dir if out_dir is not None else reports_dir / report_dir_name(summary)
    check_out_dir(out)  # before the charts: refused at once, not after seconds of drawing
    charts = all_charts(summary)
    profiles = load_profiles([Path(d) for d in run_dirs])
    html_path = write_files(summary, charts, out, profiles)
    if out_dir is None:
        update_latest(reports_dir, out)
    return html_path
