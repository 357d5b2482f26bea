"""analysis.load: run directories into frames; unknown versions refused, the rest tolerated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.load import LoadError, load_runs, read_samples
from loadgen.records import ERROR_KINDS

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-small"


def _copy(tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(FIXTURE, dest)
    return dest


def test_fixture_loads_one_row_per_trial() -> None:
    loaded = load_runs([FIXTURE])
    t = loaded.trials
    assert len(t) == 9
    assert t["trial_id"].is_unique
    assert sorted(set(t["target"])) == ["blacksheep", "bottle", "starlette"]
    assert set(t[t["target"] == "bottle"]["status"]) == {"failed"}
    assert int(t["client_saturated"].sum()) == 1
    for kind in ERROR_KINDS:
        assert f"errors_{kind}" in t.columns
    ok = t[t["status"] == "ok"]
    assert ok["p99_ms"].notna().all() and (ok["p99_ms"] > ok["p50_ms"]).all()
    assert ok["cpu_s_per_1k"].notna().all()
    (run,) = loaded.runs
    assert run.run_id == "20250106-030000-small" and not run.interrupted
    assert len(loaded.verdicts) == 3


def test_samples_are_a_separate_frame_with_cpu_percent() -> None:
    s = load_runs([FIXTURE]).samples
    assert set(s["role"]) == {"target", "client"}
    assert s["trial_id"].nunique() == 6  # the failed target's trials have no samples
    first = s.groupby(["trial_id", "role"])["elapsed_s"].min()
    assert (first == 0).all()
    target = s[s["role"] == "target"]["cpu_pct"].dropna()
    assert 80 < target.median() < 100  # the synthetic target keeps one core ~96 % busy


def test_samples_skip_can_be_asked() -> None:
    assert len(load_runs([FIXTURE], samples=False).samples) == 0


def test_unknown_trial_version_is_refused_by_name(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    lines = (run / "trials.jsonl").read_text().splitlines()
    rec = json.loads(lines[1])
    rec["schema"] = "fwbench.trial/9"
    lines[1] = json.dumps(rec)
    (run / "trials.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(LoadError) as err:
        load_runs([run])
    msg = str(err.value)
    assert "trials.jsonl:2" in msg
    assert "'fwbench.trial/9'" in msg and "fwbench.trial/1" in msg


def test_unknown_run_version_is_refused_by_name(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    header = json.loads((run / "run.json").read_text())
    header["schema"] = "fwbench.run/2"
    (run / "run.json").write_text(json.dumps(header))
    with pytest.raises(LoadError, match=r"run\.json: run version 'fwbench.run/2' .*fwbench.run/1"):
        load_runs([run])


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no run\.json"):
        load_runs([tmp_path])
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(LoadError, match="not valid JSON"):
        load_runs([tmp_path])
    with pytest.raises(LoadError, match="no run directory"):
        load_runs([])


def test_interrupted_run_without_trials(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    header = json.loads((run / "run.json").read_text())
    header["finished_at"] = None
    (run / "run.json").write_text(json.dumps(header))
    (run / "trials.jsonl").unlink()
    loaded = load_runs([run])
    assert loaded.runs[0].interrupted
    assert len(loaded.trials) == 0 and list(loaded.trials.columns)
    assert len(loaded.samples) == 0


def test_torn_and_partial_samples_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"t": 1.0, "target": {"cpu_user_s": 0.0, "rss": 100}}\n'
        '{"t": 2.0, "target": {"cpu_user_s": 0.5, "cpu_system_s": null}, "client": "bad"}\n'
        "[1, 2]\n"
        '{"target": {"rss": 5}}\n'
        '{"t": 3.0, "target": {"cpu_user_s": 1'  # torn last line
    )
    rows = read_samples(path, "r", "x/y/c1/t1")
    assert [r["t"] for r in rows] == [1.0, 2.0]
    assert rows[0]["cpu_system_s"] is None and rows[1]["rss"] is None
    assert read_samples(tmp_path / "missing.jsonl", "r", "x") == []


def test_several_runs_pool_their_trials(tmp_path: Path) -> None:
    a = _copy(tmp_path / "a")
    loaded = load_runs([FIXTURE, a])
    assert len(loaded.trials) == 18 and len(loaded.runs) == 2


def test_fixture_samples_are_in_the_sampler_format() -> None:
    from loadgen.sampler import read_samples as sampler_read

    path = FIXTURE / "samples" / "starlette__closed-64__c64__t1.jsonl"
    samples = sampler_read(path)
    rows = [r for r in read_samples(path, "r", "t") if r["role"] == "target"]
    assert len(samples) == len(rows) > 5
    assert [s.target.rss_bytes for s in samples] == [r["rss"] for r in rows]
