"""A damaged ``trials.jsonl`` through every command that reads one (``report``, ``compare``,
``check``): a torn last line is skipped with a warning and the other trials are read; any other
bad line (not JSON, or JSON that is not an object) is a one-line error naming the file and the
line, exit status 2 (``check``'s 1 means "regression"), never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analysis.load import load_runs
from commands.cli import main as fwbench

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-small"
TRIALS = 9  # lines of the fixture's trials.jsonl


def _config(tmp_path: Path) -> Path:
    """A bench.toml whose reports and history live under ``tmp_path`` (never the user's)."""
    cfg = tmp_path / "bench.toml"
    cfg.write_text(
        f'[paths]\nreports_dir = "{tmp_path / "reports"}"\n'
        f'history = "{tmp_path / "reports" / "history.sqlite"}"\n'
    )
    return cfg


def _damaged(tmp_path: Path, line: int, text: str) -> tuple[Path, Path]:
    """A copy of the fixture run whose trials.jsonl line ``line`` (1-based) is ``text``."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    path = run / "trials.jsonl"
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return run, path


COMMANDS = {
    "report": lambda run, tmp: ["report", str(run), "--out", str(tmp / "out")],
    "compare": lambda run, tmp: ["compare", str(FIXTURE), str(run)],
    "check": lambda run, tmp: [
        "check", str(run), "--pairs", "starlette:blacksheep", "--out", str(tmp / "check"),
    ],
}  # fmt: skip


def _one_line_error(err: str, where: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if where in ln]
    assert len(lines) == 1, err
    assert lines[0].startswith("fwbench"), err


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("42", "expected a JSON object, not int"),
        ('["a", "list"]', "expected a JSON object, not list"),
        ('{"torn": ', "not JSON"),
    ],
)
def test_a_bad_middle_line_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, text: str, says: str
) -> None:
    run, path = _damaged(tmp_path, 4, text)
    argv = ["--config", str(_config(tmp_path)), *COMMANDS[command](run, tmp_path)]
    assert fwbench(argv) == 2
    err = capsys.readouterr().err
    _one_line_error(err, f"{path}:4: ")
    assert says in err
    assert not (tmp_path / "out").exists()  # nothing written from a damaged run


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_non_object_last_line_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Only a line that is not JSON can be a torn write: valid JSON is damage wherever it is."""
    run, path = _damaged(tmp_path, TRIALS, "42")
    argv = ["--config", str(_config(tmp_path)), *COMMANDS[command](run, tmp_path)]
    assert fwbench(argv) == 2
    _one_line_error(capsys.readouterr().err, f"{path}:{TRIALS}: expected a JSON object")


def test_a_torn_last_line_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    path = run / "trials.jsonl"
    with open(path, "a") as fh:
        fh.write('{"schema": "fwbench.trial/1", "run_id": "20250106-0')  # killed mid-write
    loaded = load_runs([run], samples=False)
    assert len(loaded.trials) == TRIALS  # every whole line is read
    err = capsys.readouterr().err
    assert f"{path}:{TRIALS + 1}: skipped a torn last line" in err

    argv = ["--config", str(_config(tmp_path)), "report", str(run), "--out", str(tmp_path / "o")]
    assert fwbench(argv) == 0
    cap = capsys.readouterr()
    assert f"{path}:{TRIALS + 1}: skipped a torn last line" in cap.err
    assert "Traceback" not in cap.err
    assert f"{TRIALS} trials" in (tmp_path / "o" / "summary.md").read_text()
