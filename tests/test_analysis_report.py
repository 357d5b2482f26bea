"""The report: committed expected Markdown and JSON, the files written, escaping, the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis import report
from analysis.exporters import md, render_json, render_markdown
from analysis.html import CSP_META
from analysis.load import LoadError, load_runs
from analysis.summary import summarize
from benchmarks.synthrun import SynthTarget, make_run
from commands.cli import main as fwbench

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE = FIXTURES / "run-small"
EXPECTED = FIXTURES / "expected"
REGEN = "regenerate with: .venv/bin/python tests/fixtures/make_run_small.py --expected"

HOSTILE = "x<script>document.title='pwned'</script>&amp;"


def test_markdown_summary_matches_expected() -> None:
    got = render_markdown(summarize(load_runs([FIXTURE])))
    assert got == (EXPECTED / "summary.md").read_text(encoding="utf-8"), REGEN


def test_json_summary_matches_expected() -> None:
    got = render_json(summarize(load_runs([FIXTURE])))
    assert got == (EXPECTED / "summary.json").read_text(encoding="utf-8"), REGEN
    data = json.loads(got)
    assert data["schema"] == "fwbench.report/1"
    (ranking,) = data["rankings"]
    assert [r["target"] for r in ranking["ranked"]] == ["starlette"]
    assert {r["target"]: r["state"] for r in ranking["not_ranked"]} == {
        "blacksheep": "client_saturated",
        "bottle": "failed",
    }


def test_fixture_generator_is_deterministic(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_run_small", FIXTURES / "make_run_small.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fresh = mod.make(tmp_path / "run-small")
    for name in ("run.json", "trials.jsonl"):
        assert (fresh / name).read_bytes() == (FIXTURE / name).read_bytes(), name
    assert sorted(p.name for p in (fresh / "samples").iterdir()) == sorted(
        p.name for p in (FIXTURE / "samples").iterdir()
    )


def test_write_report_files_and_latest(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    html_path = report.write_report([FIXTURE], None, reports)
    folder = reports / "20250106-030000-small"
    assert html_path == folder / "index.html"
    assert (folder / "summary.md").read_text() == (EXPECTED / "summary.md").read_text()
    assert (folder / "summary.json").read_text() == (EXPECTED / "summary.json").read_text()
    charts = sorted(p.name for p in (folder / "charts").iterdir())
    assert "footprint.png" in charts and "footprint.svg" in charts
    assert len([c for c in charts if c.endswith(".png")]) == 4
    latest = reports / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "20250106-030000-small"

    # An older run rendered later does not move "latest"; a newer one does.
    from datetime import UTC, datetime

    old = make_run(
        tmp_path / "runs" / "old",
        [SynthTarget("t", "T")],
        started_at=datetime(2024, 12, 1, tzinfo=UTC),
    )
    report.write_report([old], None, reports)
    assert os.readlink(latest) == "20250106-030000-small"
    new = make_run(
        tmp_path / "runs" / "new",
        [SynthTarget("t", "T")],
        started_at=datetime(2025, 2, 1, tzinfo=UTC),
    )
    report.write_report([new], None, reports)
    assert os.readlink(latest) == "new"
    assert (latest / "index.html").is_file()


def test_out_dir_leaves_latest_alone(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    out = tmp_path / "elsewhere"
    assert report.write_report([FIXTURE], out, reports) == out / "index.html"
    assert not (reports / "latest").exists()


def test_html_is_self_contained_and_ordered(tmp_path: Path) -> None:
    html = report.write_report([FIXTURE], tmp_path / "r", tmp_path).read_text()
    assert CSP_META in html
    # Nothing fetched: every src is inline data, no stylesheet or script is linked.
    assert re.findall(r'src="(?!data:image/png;base64,)', html) == []
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "http://" not in html and "https://" not in html
    # The ranking comes first, then the charts, then the method.
    order = [html.index(x) for x in ('id="ranking-1"', 'id="charts"', 'id="method"')]
    assert order == sorted(order)
    for text in ("Machine fingerprint", "CPU sets", "Load settings", "Versions", "Warnings"):
        assert f">{text}<" in html
    assert "client saturated: figure is the client&#x27;s limit" in html


def test_every_string_is_escaped(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        [
            SynthTarget(HOSTILE, "Evil<b>", server="<img src=x onerror=alert(1)>"),
            SynthTarget("plain", "Plain"),
        ],
    )
    html = report.write_report([run], tmp_path / "out", tmp_path).read_text()
    assert "<script>" not in html and "<b>" not in html and "<img src=x" not in html
    assert "x&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;&amp;amp;" in html
    mdown = (tmp_path / "out" / "summary.md").read_text()
    assert "<script>" not in mdown and "&lt;script&gt;" in mdown
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rankings"][0]


def test_markdown_escaping() -> None:
    assert md("a|b") == r"a\|b"
    assert md("<i>*x*</i>") == r"&lt;i&gt;\*x\*&lt;/i&gt;"
    assert md("two\nlines") == "two lines"


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert fwbench(["report", str(FIXTURE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'index.html'}" in printed
    assert (out / "summary.md").read_text() == (EXPECTED / "summary.md").read_text()


def test_report_command_by_run_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bench.toml"
    cfg.write_text(f'[paths]\nreports_dir = "{tmp_path / "reports"}"\n')
    shutil.copytree(FIXTURE, tmp_path / "reports" / "runs" / "small")
    assert fwbench(["--config", str(cfg), "report", "small"]) == 0
    assert (tmp_path / "reports" / "latest" / "summary.json").is_file()
    capsys.readouterr()


def test_report_command_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fwbench(["report", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    header = json.loads((run / "run.json").read_text())
    header["schema"] = "fwbench.run/7"
    (run / "run.json").write_text(json.dumps(header))
    assert fwbench(["report", str(run), "--out", str(tmp_path / "o")]) == 2
    assert "run version 'fwbench.run/7' is not one this fwbench reads" in capsys.readouterr().err
    with pytest.raises(LoadError):
        report.write_report([run], tmp_path / "o", tmp_path)


def test_write_report_is_reexported_for_the_bench_command() -> None:
    from commands import report as cmd_report

    assert callable(cmd_report.write_report)


def test_a_run_interrupted_before_any_trial_still_reports(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    (run / "trials.jsonl").unlink()
    shutil.rmtree(run / "samples")
    header = json.loads((run / "run.json").read_text())
    header["finished_at"] = None
    header["interrupted"] = True
    (run / "run.json").write_text(json.dumps(header))
    html = report.write_report([run], tmp_path / "out", tmp_path).read_text()
    assert "No target could be ranked under this setting." in html
    assert "not measured: the run was interrupted before it" in html
    mdown = (tmp_path / "out" / "summary.md").read_text()
    assert "Run started 2025-01-06T03:00:00Z, interrupted; 3 targets, 0 trials" in mdown


def test_out_refuses_a_folder_that_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out DIR`` never deletes or overwrites what is not a report of ours."""
    mine = tmp_path / "site"
    (mine / "charts").mkdir(parents=True)
    (mine / "charts" / "logo.png").write_bytes(b"not ours")
    (mine / "index.html").write_text("<p>my page</p>")
    before = {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()}
    assert fwbench(["report", str(FIXTURE), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{mine}: not empty and not an fwbench report" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in mine.rglob("*") if p.is_file()} == before
    with pytest.raises(report.ReportDirError):
        report.write_report([FIXTURE], mine, tmp_path)

    # A folder holding a summary.json that is not a report of ours is not one either.
    (mine / "summary.json").write_text('{"schema": "something/else"}')
    assert fwbench(["report", str(FIXTURE), "--out", str(mine)]) == 2
    assert (mine / "charts" / "logo.png").read_bytes() == b"not ours"

    # A file where the folder should be.
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert fwbench(["report", str(FIXTURE), "--out", str(afile)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert afile.read_text() == "x"


def test_out_rewrites_an_empty_folder_or_a_report_of_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert fwbench(["report", str(FIXTURE), "--out", str(empty)]) == 0
    assert json.loads((empty / "summary.json").read_text())["schema"] == "fwbench.report/1"
    stale = empty / "charts" / "gone.png"
    stale.write_bytes(b"an old chart of ours")
    assert fwbench(["report", str(FIXTURE), "--out", str(empty)]) == 0  # ours: re-rendered
    assert not stale.exists()
    assert (empty / "summary.md").read_text() == (EXPECTED / "summary.md").read_text()
    # The default folder under reports_dir is held to the same rule.
    reports = tmp_path / "reports"
    squatter = reports / "20250106-030000-small"
    squatter.mkdir(parents=True)
    (squatter / "notes.txt").write_text("mine")
    with pytest.raises(report.ReportDirError):
        report.write_report([FIXTURE], None, reports)
    assert (squatter / "notes.txt").read_text() == "mine"
    capsys.readouterr()


@pytest.mark.child_process  # a python that sleeps, then renders a report: no server, no load
def test_written_in_counts_the_whole_command(tmp_path: Path) -> None:
    """The time said is the command's, from the process' start (start-up, imports and a 3 s
    wait before the report began included): about the wall time of the whole process."""
    code = (
        "import sys, time; time.sleep(3); from commands.cli import main; "
        f"sys.exit(main(['report', {str(FIXTURE)!r}, '--out', {str(tmp_path / 'o')!r}]))"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    wall = time.monotonic() - started
    assert out.returncode == 0, out.stderr[-2000:]
    found = re.search(r"written in ([0-9.]+) s", out.stderr)
    assert found, out.stderr
    said = float(found.group(1))
    assert 3.0 <= said <= wall + 0.1, (said, wall)
    assert said >= wall - 1.0, (said, wall)  # only the exit is left out
