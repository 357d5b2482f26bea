"""The within-run gate (analysis.gate.within_run): Welch's test, a minimum drop, a correction
across the run's tests; and end to end, a target made slower on purpose by a known amount
(fx-knob-slow: fx-knob-base plus fixed busy CPU work per request) measured interleaved
against itself unmodified: ``fwbench check`` exits 1 naming it, and 0 for an A/A pair."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from analysis.gate import (
    Finding,
    PairData,
    WithinParams,
    benjamini_hochberg,
    correct,
    within_run,
    worse_pct,
)
from loadgen.config import load_config
from loadgen.records import read_records
from loadgen.runner import Runner
from loadgen.targets import discover

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"
PARAMS = WithinParams()


def sample(level: float, n: int = 7, noise: float = 0.03, seed: int = 1) -> list[float]:
    values: list[float] = (level * (1 + np.random.default_rng(seed).normal(0, noise, n))).tolist()
    return values


def pair(base: dict[str, list[float]], cand: dict[str, list[float]]) -> PairData:
    return PairData("app", "app-new", "closed-64", 64, base, cand)


def run_gate(*pairs: PairData, params: WithinParams = PARAMS) -> tuple[list[Finding], list[str]]:
    return within_run(list(pairs), params, run_id="r1", date="2026-03-01", fingerprint="fp")


def test_a_clear_drop_is_a_regression_with_every_field() -> None:
    base = {"rps": sample(10_000), "p50": sample(6.4, seed=2), "p99": sample(20, seed=3)}
    cand = {"rps": sample(9_000, seed=4), "p50": sample(7.1, seed=5), "p99": sample(30, seed=6)}
    findings, problems = run_gate(pair(base, cand))
    assert problems == []
    by = {f.metric: f for f in findings}
    assert set(by) == {"rps", "p50", "p99"}
    rps = by["rps"]
    assert rps.regression and rps.alerting and rps.alerts
    assert (rps.target, rps.baseline, rps.n_before, rps.n_after) == ("app-new", "app", 7, 7)
    assert rps.before == pytest.approx(np.median(base["rps"]))
    assert rps.after == pytest.approx(np.median(cand["rps"]))
    assert rps.worse_pct == pytest.approx(-rps.change_pct)
    assert rps.pvalue < 0.01 and rps.pvalue >= rps.pvalue_raw
    assert rps.change_date == "2026-03-01" and rps.change_run_id == "r1"
    assert by["p50"].regression  # latency went up: worse
    assert not by["p99"].alerting and not by["p99"].alerts  # reported, never alerted
    assert rps.key == "within|r1|app->app-new/closed-64/c64|rps"


def test_the_same_target_twice_is_clean() -> None:
    findings, _ = run_gate(pair({"rps": sample(10_000)}, {"rps": sample(10_000, seed=9)}))
    assert [f.regression for f in findings] == [False]


def test_significant_but_small_is_not_a_regression() -> None:
    # 1 % apart with 0.1 % noise: certain, and too small to matter
    findings, _ = run_gate(
        pair({"rps": sample(10_000, noise=0.001)}, {"rps": sample(9_900, noise=0.001, seed=2)})
    )
    [f] = findings
    assert f.pvalue < 1e-6 and f.worse_pct == pytest.approx(1, abs=0.2)
    assert not f.regression
    assert within_run(
        [pair({"rps": sample(10_000, noise=0.001)}, {"rps": sample(9_900, noise=0.001, seed=2)})],
        WithinParams(min_drop_pct=0.5), run_id="r", date="d", fingerprint="f",
    )[0][0].regression  # fmt: skip


def test_better_is_never_a_regression() -> None:
    findings, _ = run_gate(pair({"rps": sample(10_000)}, {"rps": sample(12_000, seed=2)}))
    assert not findings[0].regression and findings[0].worse_pct < 0


def test_too_few_trials_is_a_problem_not_a_finding() -> None:
    findings, problems = run_gate(pair({"rps": sample(100, n=6)}, {"rps": sample(90, n=7)}))
    assert findings == []
    assert problems == ["app-new vs app (closed-64, c64): 6 baseline and 7 candidate trials, "
                        "needs 7 each"]  # fmt: skip


def test_the_correction_covers_every_test_of_the_run() -> None:
    # one borderline drop among many clean pairs: corrected, it no longer alerts
    borderline = pair({"rps": sample(1000, seed=20)}, {"rps": sample(950, seed=120)})
    [alone] = [f for f in run_gate(borderline)[0] if f.metric == "rps"]
    clean = [pair({"rps": sample(1000, seed=s)}, {"rps": sample(1000, seed=s + 50)})
             for s in range(30, 45)]  # fmt: skip
    findings, _ = run_gate(borderline, *clean)
    corrected = findings[0]
    assert corrected.pvalue_raw == pytest.approx(alone.pvalue_raw)
    assert corrected.pvalue == pytest.approx(min(1.0, 16 * alone.pvalue_raw))  # Holm: 16 tests
    assert alone.regression and not corrected.regression


def test_holm_and_benjamini_hochberg() -> None:
    p = [0.01, 0.04, 0.03, None, 0.005]
    assert correct(p, "holm") == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, None, 0.02])
    assert correct(p, "bh") == benjamini_hochberg(p)


def test_worse_pct_by_metric() -> None:
    assert worse_pct(100, 90, "rps") == pytest.approx(10)
    assert worse_pct(10, 11, "p50") == pytest.approx(10)
    assert worse_pct(0, 11, "p50") == 0


# --- end to end: a target made slower on purpose --------------------------------------------

KNOB = ("fx-knob-base", "fx-knob-slow", "fx-knob-base2")
SLOWDOWN_US = 12.0  # fx-knob-slow's FWBENCH_SLOWDOWN_US


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[list[str]], int]]:
    """``fwbench`` in-process."""
    from commands.cli import main

    yield main


@pytest.mark.e2e
def test_slowdown_is_caught_and_a_a_is_clean(
    tmp_path: Path,
    envs_dir: Path,
    cli: Callable[[list[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert discover(FIXTURES).select(list(KNOB))[1].env == (("FWBENCH_SLOWDOWN_US", "12"),)
    toml = tmp_path / "bench.toml"
    toml.write_text(
        f'[paths]\ntargets_dir = "{FIXTURES}"\nenvs_dir = "{envs_dir}"\n'
        f'reports_dir = "{tmp_path / "reports"}"\nhistory = "{tmp_path / "history.sqlite"}"\n'
        f"[run]\ntargets = {json.dumps(list(KNOB))}\ntrials = 7\n"
        '[[run.load]]\nname = "knob"\nconnections = [4]\nduration = 1.0\nwarmup = 0.3\n'
    )
    cfg = load_config(toml)
    runner = Runner(cfg, discover(FIXTURES).select(list(KNOB)), run_dir=tmp_path / "run")
    runner.prepare()
    run_dir = runner.run()
    recs = list(read_records(run_dir / "trials.jsonl"))
    assert [r.target for r in recs[:3]] == list(KNOB)  # interleaved: A B A' A B A' ...
    assert all(r.status == "ok" for r in recs), [r.failure for r in recs]
    capsys.readouterr()

    code = cli(["--config", str(toml), "check", str(run_dir), "--pairs",
                "fx-knob-base:fx-knob-slow"])  # fmt: skip
    out = capsys.readouterr().out
    doc = json.loads((run_dir / "regressions.json").read_text())
    by = {f["metric"]: f for f in doc["regressions"] + doc["reported"]}
    rps, p50 = by["rps"], by["p50"]
    with capsys.disabled():
        print(
            f"\nslowdown injected: {SLOWDOWN_US:g} us of CPU per request; requests/s "
            f"{rps['before']:,.0f} -> {rps['after']:,.0f} ({rps['change_pct']:+.1f} %, "
            f"p = {rps['pvalue']:.2g} Holm, raw {rps['pvalue_raw']:.2g}); p50 "
            f"{p50['before']:.3f} -> {p50['after']:.3f} ms ({p50['change_pct']:+.1f} %, "
            f"p = {p50['pvalue']:.2g})"
        )
    assert code == 1, out
    assert doc["status"] == "regression" and doc["exit_code"] == 1
    assert doc["regressions"] and {f["target"] for f in doc["regressions"]} == {"fx-knob-slow"}
    assert all(f["trials"] == {"baseline": 7, "candidate": 7} for f in doc["regressions"])
    assert "fx-knob-slow vs fx-knob-base" in out
    assert rps["change_pct"] < -5  # throughput fell by well over the noise
    assert (run_dir / "regressions.md").read_text().startswith("# fwbench check: ")

    code = cli(["--config", str(toml), "check", str(run_dir), "--pairs",
                "fx-knob-base:fx-knob-base2", "--out", str(tmp_path / "aa")])  # fmt: skip
    out = capsys.readouterr().out
    aa = json.loads((tmp_path / "aa" / "regressions.json").read_text())
    by = {f["metric"]: f for f in aa["reported"]}
    with capsys.disabled():
        print(
            f"A/A: requests/s {by['rps']['before']:,.0f} vs {by['rps']['after']:,.0f} "
            f"({by['rps']['change_pct']:+.1f} %, p = {by['rps']['pvalue']:.2g}); p50 "
            f"{by['p50']['change_pct']:+.1f} % (p = {by['p50']['pvalue']:.2g})"
        )
    assert code == 0, out
    assert aa["status"] == "clean" and aa["regressions"] == []
