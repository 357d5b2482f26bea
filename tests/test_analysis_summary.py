"""analysis.summary: who is ranked, who is not and why, ties, warnings."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.load import load_runs
from analysis.summary import SATURATED_REASON, Summary, summarize
from benchmarks.synthrun import SynthLoad, SynthTarget, machine, make_run

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-small"


def _summary(tmp_path: Path, targets: list[SynthTarget], **kw: object) -> Summary:
    run = make_run(tmp_path / "run", targets, **kw)  # type: ignore[arg-type]
    return summarize(load_runs([run]))


def test_fixture_ranking_rules() -> None:
    s = summarize(load_runs([FIXTURE]))
    (r,) = s.rankings
    assert [row.group.target for row in r.ranked] == ["starlette"]
    top = r.ranked[0]
    assert top.rank == 1 and top.vs_fastest == 1.0 and top.ties == ()
    g = top.group
    assert g.rps_ci is not None and g.rps_ci[0] <= (g.rps_median or 0) <= g.rps_ci[1]
    assert g.latency_ms is not None and set(g.latency_ms) == {"p50", "p90", "p99", "p999", "max"}
    assert g.cpu_s_per_1k is not None and g.rss_peak_bytes is not None
    others = {o.target: o for o in r.others}
    assert others["blacksheep"].state == "client_saturated"
    assert others["blacksheep"].reason == f"{SATURATED_REASON} (1 of 3 trials)"
    assert others["bottle"].state == "failed"
    assert others["bottle"].reason == (
        "failed: server exited with code 3 during warm-up (3 of 3 trials)"
    )
    assert [o.target for o in r.others] == ["blacksheep", "bottle"]  # saturated before failed


def test_overlapping_intervals_are_ties(tmp_path: Path) -> None:
    s = _summary(
        tmp_path,
        [
            SynthTarget("fast-a", "A", rps=10_000, rps_noise=0.05),
            SynthTarget("fast-b", "B", rps=10_000, rps_noise=0.05),
            SynthTarget("slow", "C", rps=4_000, rps_noise=0.01),
        ],
        trials=5,
    )
    rows = s.rankings[0].ranked
    assert [r.group.target for r in rows][2] == "slow"
    assert rows[0].ties == (2,) and rows[1].ties == (1,) and rows[2].ties == ()
    assert rows[2].vs_fastest == (rows[2].group.rps_median or 0) / (rows[0].group.rps_median or 1)
    assert 0.35 < rows[2].vs_fastest < 0.45


def test_verification_failure_and_error_rate_are_not_ranked(tmp_path: Path) -> None:
    s = _summary(
        tmp_path,
        [
            SynthTarget("good", "G", rps=5000),
            SynthTarget("wrong", "W", verify_failure="text/plain is not JSON"),
            SynthTarget("errs", "E", rps=9000, errors={"timeout": 2000, "reset": 10}),
            SynthTarget("few-errs", "F", rps=3000, errors={"status": 3}),
        ],
    )
    r = s.rankings[0]
    assert [row.group.target for row in r.ranked] == ["good", "few-errs"]
    others = {o.target: o for o in r.others}
    assert others["wrong"].reason == "failed: verification: content_type: text/plain is not JSON"
    assert others["wrong"].trials == 0
    assert others["errs"].state == "failed"
    assert others["errs"].reason.startswith("failed: ")
    assert "% of requests were errors (timeout 6,000, reset 30)" in others["errs"].reason
    assert any(w.startswith("errors under load: errs 6,030") for w in s.warnings)
    assert "failed verification, not measured: wrong" in s.warnings


def test_interrupted_run_marks_unmeasured_targets(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        [SynthTarget("first", "F"), SynthTarget("second", "S")],
        interrupted=True,
    )
    lines = (run / "trials.jsonl").read_text().splitlines()
    kept = [ln for ln in lines if json.loads(ln)["target"] == "first"]
    (run / "trials.jsonl").write_text("\n".join(kept) + "\n")
    s = summarize(load_runs([run]))
    (other,) = s.rankings[0].others
    assert other.state == "not_measured"
    assert other.reason == "not measured: the run was interrupted before it"
    assert s.warnings[0].startswith("run run was interrupted")


def test_single_trial_and_no_keepalive_warnings(tmp_path: Path) -> None:
    s = _summary(tmp_path, [SynthTarget("solo", "S", keepalive=False)], trials=1)
    g = s.rankings[0].ranked[0].group
    assert g.rps_ci is None and g.rps_cv is None and g.keepalive is False
    assert any(w.startswith("no keep-alive: solo") for w in s.warnings)
    assert any(w.startswith("a single trial, so no confidence interval: solo") for w in s.warnings)


def test_sweep_settings_follow_the_config(tmp_path: Path) -> None:
    s = _summary(
        tmp_path,
        [SynthTarget("t", "T")],
        loads=(SynthLoad("sweep", (256, 16, 64)), SynthLoad("closed-8", (8,))),
    )
    labels = [(x.load, x.connections) for x in s.settings]
    assert labels == [("sweep", 16), ("sweep", 64), ("sweep", 256), ("closed-8", 8)]
    assert all(len(r.ranked) == 1 for r in s.rankings)


def test_pooling_runs_from_different_machines_warns(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", [SynthTarget("t", "T")])
    b = make_run(tmp_path / "b", [SynthTarget("t", "T")], machine_info=machine(cpu_count=8))
    s = summarize(load_runs([a, b]))
    assert s.run_id == "a+b"
    assert any("come from different machines (cpu_count differ)" in w for w in s.warnings)
    assert s.rankings[0].ranked[0].group.trials == 6


def test_a_setting_the_trials_do_not_show_is_not_a_ghost_ranking(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [SynthTarget("t", "T")])
    header = json.loads((run / "run.json").read_text())
    header["config"]["run"]["load"][0]["connections"] = [32]  # overridden on the command line
    header["config"]["run"]["load"].append(dict(header["config"]["run"]["load"][0], name="gone"))
    (run / "run.json").write_text(json.dumps(header))
    s = summarize(load_runs([run]))
    # The trials' setting (64) is reported; the config's 32 is not; a load with no trial at
    # all is shown, every target "not measured".
    assert [(x.load, x.connections) for x in s.settings] == [("closed-64", 64), ("gone", 32)]
    assert s.rankings[1].others[0].state == "not_measured"


def test_a_single_trial_has_no_interval_and_no_tie(tmp_path: Path) -> None:
    """1 trial each, 6.5x apart: not a tie, and every format says why there is no interval."""
    from analysis.exporters import render_json, render_markdown
    from analysis.html import ranking_table

    s = _summary(
        tmp_path,
        [SynthTarget("fast", "F", rps=13_000), SynthTarget("slow", "S", rps=2_000)],
        trials=1,
    )
    (r,) = s.rankings
    assert [row.group.target for row in r.ranked] == ["fast", "slow"]
    assert all(row.ties == () for row in r.ranked)
    assert all(row.group.rps_ci is None for row in r.ranked)
    mdown = render_markdown(s)
    assert "tie with" not in mdown
    assert mdown.count("| 1 trial: no interval |") == 2
    html = ranking_table(r, 1)
    assert "tie with" not in html and html.count("1 trial: no interval") == 2
    data = json.loads(render_json(s))
    assert [row["ties_with"] for row in data["rankings"][0]["ranked"]] == [[], []]


def test_a_single_trial_row_does_not_tie_the_others(tmp_path: Path) -> None:
    """Rows with intervals still tie among themselves; a 1-trial row ties with none of them."""
    a = make_run(
        tmp_path / "a",
        [
            SynthTarget("fast-a", "A", rps=10_000, rps_noise=0.05),
            SynthTarget("fast-b", "B", rps=10_000, rps_noise=0.05),
        ],
        trials=5,
    )
    b = make_run(tmp_path / "b", [SynthTarget("once", "O", rps=9_000)], trials=1, seed=2)
    s = summarize(load_runs([a, b]))
    (r,) = s.rankings
    ties = {row.group.target: row.ties for row in r.ranked}
    rank = {row.group.target: row.rank for row in r.ranked}
    assert ties["once"] == ()
    assert ties["fast-a"] == (rank["fast-b"],) and ties["fast-b"] == (rank["fast-a"],)
