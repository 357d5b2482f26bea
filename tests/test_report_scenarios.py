"""The report of a run with scenarios beyond hello: one ranking per scenario (named in its title),
the framework-by-scenario matrix (HTML, Markdown, JSON ``scenario_matrix``), scenario verdicts
(failed verification of one scenario fails that scenario only), and not-applicable scenarios
(from the verdicts, or from trials whose status is ``not_applicable``): neither ranked nor
failed. A hello-only run has no matrix (its expected files are checked byte for byte elsewhere).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from analysis.exporters import render_json, render_markdown
from analysis.html import render_html
from analysis.load import Loaded, load_runs
from analysis.matrix import MATRIX_TITLE, scenario_matrix
from analysis.summary import Summary, summarize
from benchmarks.synthrun import SynthLoad, SynthTarget, make_run

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-small"
SCENARIOS = ("hello", "json", "db", "fortunes")
LOADS = tuple(SynthLoad(name=f"{s}-64", scenario=s) for s in SCENARIOS)
TARGETS = (
    SynthTarget(
        "fast",
        "Fast",
        rps=10_000,
        scenarios=(("json", 0.8), ("db", 0.3), ("fortunes", 0.2)),
    ),
    SynthTarget(
        "slow",
        "Slow",
        rps=5_000,
        scenarios=(("json", 0.8), ("db", 0.3)),
        scenario_failures=(("fortunes", "GET /fortunes: the fortunes are not sorted by message"),),
    ),
    SynthTarget(
        "tiny",
        "Tiny",
        rps=8_000,
        scenarios=(("json", 1.0),),
        not_applicable=(("db", "no database story"), ("fortunes", "no template engine")),
    ),
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    run = make_run(tmp_path_factory.mktemp("sc") / "run", TARGETS, loads=LOADS, trials=3)
    return load_runs([run])


@pytest.fixture(scope="module")
def summary(loaded: Loaded) -> Summary:
    return summarize(loaded)


def test_one_ranking_per_scenario_named_in_its_title(summary: Summary) -> None:
    assert [r.setting.scenario for r in summary.rankings] == list(SCENARIOS)
    md = render_markdown(summary)
    for s in SCENARIOS:
        assert f"## {s}-64 · raw client · {s} · 64 connections" in md
    html = render_html(summary, [])
    assert "<h2>Ranking · fortunes-64 · raw client · fortunes · 64 connections</h2>" in html


def test_states_per_scenario(summary: Summary) -> None:
    by = {(g.target, g.setting.scenario): g for g in summary.groups}
    assert by[("slow", "hello")].state == "ranked"  # its hello verdict stands
    assert by[("slow", "db")].state == "ranked"
    assert by[("slow", "fortunes")].state == "failed"
    assert by[("slow", "fortunes")].reason == (
        "failed: verification of fortunes: GET /fortunes: the fortunes are not sorted by message"
    )
    assert by[("tiny", "db")].state == "not_applicable"
    assert by[("tiny", "db")].reason == "not applicable: no database story"
    assert by[("tiny", "json")].state == "ranked"
    fortunes = next(r for r in summary.rankings if r.setting.scenario == "fortunes")
    assert [row.group.target for row in fortunes.ranked] == ["fast"]
    assert [g.state for g in fortunes.others] == ["failed", "not_applicable"]
    assert any(
        w == "failed verification of a scenario, not measured in it: slow (fortunes)"
        for w in summary.warnings
    )
    assert not any("tiny" in w for w in summary.warnings)  # not applicable is not a failure


def test_the_matrix(summary: Summary) -> None:
    m = scenario_matrix(summary)
    assert m is not None and m.scenarios == SCENARIOS
    cells = {t: {s: c.text if c else "" for s, c in zip(m.scenarios, row, strict=True)}
             for t, row in m.rows}  # fmt: skip
    assert [t for t, _ in m.rows] == ["fast", "slow", "tiny"]
    assert cells["fast"] == {"hello": "100 %", "json": "100 %", "db": "100 %", "fortunes": "100 %"}
    assert cells["slow"]["fortunes"] == "failed verification"
    assert cells["slow"]["hello"].endswith(" %") and cells["slow"]["hello"] != "100 %"
    assert cells["tiny"]["db"] == "n/a" and cells["tiny"]["fortunes"] == "n/a"
    slow_db = dict(zip(m.scenarios, dict(m.rows)["slow"], strict=True))["db"]
    assert slow_db is not None and slow_db.relative is not None
    assert 0.4 < slow_db.relative < 0.6  # 5,000 x 0.3 over 10,000 x 0.3, give or take noise

    doc = json.loads(render_json(summary))["scenario_matrix"]
    assert doc["scenarios"] == list(SCENARIOS)
    assert doc["settings"]["db"] == "db-64 · raw client · db · 64 connections"
    tiny = next(r for r in doc["rows"] if r["target"] == "tiny")
    assert tiny["cells"]["db"] == {
        "state": "not_applicable",
        "relative": None,
        "rps_median": None,
        "text": "n/a",
        "reason": "not applicable: no database story",
    }
    md = render_markdown(summary)
    assert f"## {MATRIX_TITLE}" in md
    assert "| tiny | " in md and "| n/a |" in md
    assert md.index(MATRIX_TITLE) < md.index("## hello-64")  # the front of the page
    html = render_html(summary, [])
    assert html.index('<section id="scenario-matrix">') < html.index('<section id="rankings">')
    assert '<td class="num" data-state="not_applicable" title="not applicable: no database' in html


def test_not_applicable_trials(loaded: Loaded) -> None:
    """The runner writes a trial with status ``not_applicable`` for a scenario a target cannot
    serve: not ranked, not failed, its reason shown."""
    t = loaded.trials.copy()
    mask = (t["target"] == "fast") & (t["scenario"] == "db")
    t.loc[mask, "status"] = "not_applicable"
    t.loc[mask, "failure"] = "no async driver for this database"
    s = summarize(dataclasses.replace(loaded, trials=t))
    g = next(g for g in s.groups if g.target == "fast" and g.setting.scenario == "db")
    assert g.state == "not_applicable" and g.failed_trials == 0 and g.ok_trials == 0
    assert g.reason == "not applicable: no async driver for this database"
    db = next(r for r in s.rankings if r.setting.scenario == "db")
    assert [row.group.target for row in db.ranked] == ["slow"]
    assert not any("failed" in w and "fast" in w for w in s.warnings)
    m = scenario_matrix(s)
    assert m is not None
    assert dict(zip(m.scenarios, dict(m.rows)["fast"], strict=True))["db"].text == "n/a"  # type: ignore[union-attr]


def test_a_hello_only_run_has_no_matrix() -> None:
    s = summarize(load_runs([FIXTURE]))
    assert scenario_matrix(s) is None
    assert "scenario_matrix" not in json.loads(render_json(s))
    assert MATRIX_TITLE not in render_markdown(s) and "scenario-matrix" not in render_html(s, [])
