"""``fwbench nightly`` end to end: a tiny profile over a fixture target, on top of a history
of earlier nights from this machine; it leaves the run in the history, a report with trend
charts, regressions.json beside it, and the check's exit status."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from analysis.history import History
from benchmarks.synthetic import store_nights
from loadgen import machine
from loadgen.config import load_config

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"

# `fwbench`, as the console script runs it.
FWBENCH = "import sys, commands.cli as c\nsys.exit(c.main())\n"

pytestmark = pytest.mark.e2e


def test_nightly_end_to_end(tmp_path: Path, envs_dir: Path) -> None:
    reports = tmp_path / "reports"
    toml = tmp_path / "bench.toml"
    toml.write_text(
        f'[paths]\ntargets_dir = "{FIXTURES}"\nenvs_dir = "{envs_dir}"\n'
        f'reports_dir = "{reports}"\nhistory = "{reports / "history.sqlite"}"\n'
        '[nightly]\ntargets = ["fx-knob-base"]\ntrials = 2\n'
        '[[nightly.load]]\nname = "tiny"\nconnections = [2]\nduration = 0.8\nwarmup = 0.2\n'
    )
    cfg = load_config(toml)
    here = machine.fingerprint(cfg.cpus.server, cfg.cpus.client, Path(cfg.root))
    first = (datetime.now(UTC) - timedelta(days=12)).date()
    earlier = (20_000 * (1 + np.random.default_rng(1).normal(0, 0.01, 8))).tolist()
    with History(reports / "history.sqlite") as h:  # eight earlier nights, this machine
        store_nights(h, {"fx-knob-base": earlier}, first_night=first, machine=here,
                     load="tiny", connections=2)  # fmt: skip

    env = {k: v for k, v in os.environ.items() if not k.startswith("FWBENCH_WEBHOOK")}
    proc = subprocess.run(
        [sys.executable, "-c", FWBENCH, "--config", str(toml), "nightly"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = Path(proc.stdout.strip().splitlines()[-1])  # the last line: the report
    assert page.name == "index.html" and page.is_file()
    html = page.read_text()
    assert '<section id="trends">' in html and "data:image/png;base64," in html
    assert (page.parent / "trends" / "trend-rps.png").stat().st_size > 0
    assert (page.parent / "trends" / "trends.md").read_text().startswith("## Trends")
    doc = json.loads((page.parent / "regressions.json").read_text())
    assert (doc["status"], doc["exit_code"], doc["machine"]) == ("clean", 0, here["fingerprint"])
    assert "environment [1/1] fx-knob-base" in proc.stderr
    assert "stored run" in proc.stderr

    with History(reports / "history.sqlite") as h:
        runs = h.runs()
        assert len(runs) == 9 and runs[-1].profile == "nightly" and runs[-1].trials == 2
        assert runs[-1].fingerprint == here["fingerprint"]
        assert list(runs[-1].machine_warnings) == machine.warnings(here)
        points = h.series(str(here["fingerprint"]))[("fx-knob-base", "tiny", 2)]
        assert len(points) == 9 and points[-1].rps > 100
    run_dir = reports / "runs" / runs[-1].run_id
    assert json.loads((run_dir / "run.json").read_text())["finished_at"]
    with sqlite3.connect(reports / "history.sqlite") as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM trials WHERE run_id = ?",
                                             (runs[-1].run_id,))]  # fmt: skip
    assert statuses == ["ok", "ok"]


def test_nightly_on_the_pinned_and_latest_channels(tmp_path: Path, envs_dir: Path) -> None:
    """``[nightly] channels = ["pinned", "latest"]`` on a real target: both series measured,
    stored with their packages and locks, and the report lists what the latest channel
    changed against the pinned lock."""
    reports = tmp_path / "reports"
    toml = tmp_path / "bench.toml"
    toml.write_text(
        f'[paths]\ntargets_dir = "{ROOT / "targets"}"\nenvs_dir = "{envs_dir}"\n'
        f'reports_dir = "{reports}"\nhistory = "{reports / "history.sqlite"}"\n'
        '[nightly]\ntargets = ["starlette"]\ntrials = 1\nchannels = ["pinned", "latest"]\n'
        '[[nightly.load]]\nname = "tiny"\nconnections = [4]\nduration = 0.8\nwarmup = 0.2\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FWBENCH_WEBHOOK")}
    proc = subprocess.run(
        [sys.executable, "-c", FWBENCH, "--config", str(toml), "nightly"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # A first night: the history gate has too few nights and says so (exit 2, "not checked").
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "not enough nights" in proc.stdout
    page = Path(proc.stdout.strip().splitlines()[-1])
    md = (page.parent / "summary.md").read_text()
    assert "## Packages that differ from the pinned lock" in md
    assert "starlette@latest" in md
    with History(reports / "history.sqlite") as h:
        (run,) = h.runs()
        pinned = h.packages(run.run_id, "starlette")
        latest = h.packages(run.run_id, "starlette@latest")
        assert pinned["starlette"] and latest["starlette"]
        assert latest["uvicorn"] >= pinned["uvicorn"]  # never older than the pin
        assert "uvicorn==" in (h.lock(run.run_id, "starlette@latest") or "")
    lines = (run_dir(reports) / "trials.jsonl").read_text().splitlines()
    trials = [json.loads(line) for line in lines]
    assert sorted({t["target"] for t in trials}) == ["starlette", "starlette@latest"]
    assert all(t["status"] == "ok" for t in trials)


def run_dir(reports: Path) -> Path:
    (only,) = (reports / "runs").iterdir()
    return only
