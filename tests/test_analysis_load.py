"""analysis.load: run directories into frames; unknown versions refused, the rest tolerated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.load import LoadError, load_runs
from loadgen.records import ERROR_KINDS, cpu_pct_series, read_samples

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
    assert loaded.runs[0].incomplete and not loaded.runs[0].interrupted  # killed, not stopped
    assert len(loaded.trials) == 0 and list(loaded.trials.columns)
    assert len(loaded.samples) == 0


SAMPLES = "starlette__closed-64__c64__t1.jsonl"


def test_a_torn_last_sample_is_skipped(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    with open(run / "samples" / SAMPLES, "a") as fh:
        fh.write('{"t": 3.0, "target": {"cpu_user_s": 1')  # a sampler killed mid-write
    assert len(load_runs([run]).samples) == len(load_runs([FIXTURE]).samples)


def test_unknown_samples_version_is_refused_by_name(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    path = run / "samples" / SAMPLES
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["schema"] = "fwbench.samples/9"
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(LoadError) as err:
        load_runs([run])
    msg = str(err.value)
    assert f"{SAMPLES}:1" in msg
    assert "'fwbench.samples/9'" in msg and "fwbench.samples/1" in msg
    assert len(load_runs([run], samples=False).trials) == 9  # only the samples are refused


def test_a_sample_of_the_wrong_shape_is_refused_by_line(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    with open(run / "samples" / SAMPLES, "a") as fh:
        fh.write('{"t": 3.0, "client": {}}\n')  # header + 13 samples, then this
    with pytest.raises(LoadError, match=rf"{SAMPLES}:15: not a sample \(no 'target'\)"):
        load_runs([run])


def test_several_runs_pool_their_trials(tmp_path: Path) -> None:
    a = _copy(tmp_path / "a")
    loaded = load_runs([FIXTURE, a])
    assert len(loaded.trials) == 18 and len(loaded.runs) == 2


def test_fixture_samples_are_read_by_the_one_reader_and_formula() -> None:
    path = FIXTURE / "samples" / SAMPLES
    samples = read_samples(path)
    frame = load_runs([FIXTURE]).samples
    rows = frame[(frame["trial_id"] == "starlette/closed-64/c64/t1") & (frame["role"] == "target")]
    assert len(samples) == len(rows) > 5
    assert [s.target.rss_bytes for s in samples] == rows["rss"].tolist()
    expected = [float("nan") if p is None else p for p in cpu_pct_series(samples, "target")]
    assert rows["cpu_pct"].tolist() == pytest.approx(expected, nan_ok=True)
