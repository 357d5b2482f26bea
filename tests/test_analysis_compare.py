"""analysis.compare and ``fwbench compare``: known speed-ups found, noise called noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.compare import ALPHA, compare, render_markdown, render_text, significant, verdict
from analysis.load import load_runs
from analysis.summary import summarize
from benchmarks.synthrun import SynthTarget, machine, make_run
from commands import compare as cmd_compare
from commands.cli import main as fwbench


def _runs(tmp_path: Path, other_machine: bool = False) -> tuple[Path, Path]:
    a = make_run(
        tmp_path / "a",
        [
            SynthTarget("x", "X", rps=10_000, rps_noise=0.02),
            SynthTarget("y", "Y", rps=8_000, rps_noise=0.02),
            SynthTarget("z", "Z", rps=9_000, saturated_trials=frozenset({3})),
        ],
        trials=5,
        seed=1,
    )
    b = make_run(
        tmp_path / "b",
        [
            SynthTarget("x", "X", rps=12_000, rps_noise=0.02),
            SynthTarget("y", "Y", rps=8_000, rps_noise=0.02),
            SynthTarget("z", "Z", rps=9_000),
        ],
        trials=5,
        seed=2,
        machine_info=machine(kernel="6.12.0-other") if other_machine else None,
    )
    return a, b


def test_known_speedup_and_noise(tmp_path: Path) -> None:
    a, b = _runs(tmp_path)
    c = compare(summarize(load_runs([a])), summarize(load_runs([b])))
    assert c.same_machine
    by = {ch.target: ch for ch in c.changes}
    x = by["x"]
    assert x.rps is not None and x.p99 is not None
    assert x.rps.verdict.endswith("x faster")
    assert 1.15 <= float(x.rps.verdict.split("x")[0]) <= 1.25
    assert x.p99.verdict.endswith("x faster")  # lower p99 is faster
    assert by["y"].rps is not None and by["y"].rps.verdict == "not significant"
    assert by["z"].rps is None and by["z"].note == "not compared: client saturated in A"
    assert [ch.target for ch in significant(c.changes)] == ["x"]
    text = render_text(c)
    assert "not significant" in text and "Holm-corrected across 2 targets" in text
    assert "| x |" in render_markdown(c)


def test_verdict_wording() -> None:
    assert verdict(100.0, 112.0, 0.001, ALPHA, higher_is_better=True) == "1.12x faster"
    assert verdict(112.0, 100.0, 0.001, ALPHA, higher_is_better=True) == "1.12x slower"
    assert verdict(10.0, 8.0, 0.01, ALPHA, higher_is_better=False) == "1.25x faster"
    assert verdict(100.0, 112.0, 0.2, ALPHA, higher_is_better=True) == "not significant"
    assert verdict(100.0, 112.0, None, ALPHA, higher_is_better=True) == "too few trials"


def test_cli_refuses_other_machines_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _runs(tmp_path, other_machine=True)
    assert fwbench(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "kernel: '6.1.0-synthetic' vs '6.12.0-other'" in err
    assert fwbench(["compare", str(a), str(b), "--force"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith("WARNING: the machine fingerprints differ")
    assert cap.out.rstrip().endswith("the machine's, not the code's.")
    assert "WARNING" in cap.err
    assert fwbench(["compare", str(a), str(b), "--force", "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("> **WARNING")


def test_cli_same_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _runs(tmp_path)
    assert fwbench(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A = a   B = b") and "WARNING" not in out
    assert fwbench(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert fwbench(["compare", str(a), str(b), "--alpha", "2"]) == 2
    capsys.readouterr()


def test_cli_alpha_default_matches_the_module() -> None:
    assert cmd_compare.ALPHA == ALPHA
