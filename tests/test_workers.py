"""Worker sweeps: the config's refusals, series names, the launcher's CPUs, the report's
scaling figures (synthetic runs) and a real sweep of 1 and 2 workers on this machine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from analysis.exporters import render_json, render_markdown
from analysis.load import load_runs
from analysis.summary import summarize
from benchmarks.synthrun import SynthTarget, make_run
from commands.cli import main as fwbench
from loadgen.config import Config, ConfigError, Cpus, Server, load_config
from loadgen.launcher import LaunchOptions, server_cpus
from loadgen.records.series import SeriesName, parse_series
from loadgen.targets import load_target
from loadgen.variants import expand

ROOT = Path(__file__).resolve().parent.parent


def _toml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "bench.toml"
    p.write_text(body)
    return p


def test_a_sweep_larger_than_the_server_cpus_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            _toml(tmp_path, "[cpus]\nserver = [0]\nclient = [1]\n[server]\nworkers = [1, 2]\n")
        )
    assert err.value.key == "server.workers[1]"
    assert "2 workers need 2 server CPUs (one each) but cpus.server has 1" in err.value.reason
    assert 'worker_cpus = "shared"' in err.value.reason
    for body, key in [
        ("[server]\nworkers = []\n", "server.workers"),
        ("[server]\nworkers = [1, 1]\n", "server.workers"),
        ("[server]\nworkers = [0]\n", "server.workers[0]"),
        ('[server]\nworkers = [1, 3]\nworker_cpus = "shared"\n', "server.workers[1]"),
        ('[server]\nworker_cpus = "some"\n', "server.worker_cpus"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_config(_toml(tmp_path, "[cpus]\nserver = [0]\nclient = [1]\n" + body))
        assert err.value.key == key, body
    ok = load_config(_toml(tmp_path, '[server]\nworkers = [1, 2]\nworker_cpus = "shared"\n'))
    assert ok.server.workers == (1, 2)
    assert load_config(_toml(tmp_path, "[server]\nworkers = 1\n")).server.workers == (1,)


def test_the_cli_refuses_the_sweep_before_any_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _toml(tmp_path, f'[paths]\nreports_dir = "{tmp_path / "r"}"\n[cpus]\nserver = [0]\n')
    assert fwbench(["--config", str(cfg), "run", "--workers", "1,2", "--targets", "flask"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err or "server.workers[1]" in err
    assert "2 workers need 2 server CPUs" in err
    assert not (tmp_path / "r").exists()  # nothing started, no run folder


def test_series_names_round_trip() -> None:
    for name, parts in [
        ("flask", SeriesName("flask")),
        ("flask@latest", SeriesName("flask", "latest")),
        ("flask@py3.13", SeriesName("flask", python="3.13")),
        ("flask@w4", SeriesName("flask", workers=4)),
        ("flask@pre@py3.12@w2", SeriesName("flask", "pre", "3.12", 2)),
    ]:
        assert parse_series(name) == parts and str(parts) == name
    assert parse_series("flask@latest@w4").without_workers == "flask@latest"
    # a bisect's own names are kept whole (unknown suffix)
    assert parse_series("fixture@+fwb-slowpkg") == SeriesName("fixture@+fwb-slowpkg")
    assert parse_series("flask@w4@latest") == SeriesName("flask@w4@latest")


def test_expansion_gives_every_series_and_keeps_their_locks(tmp_path: Path) -> None:
    t = replace(load_target(ROOT / "targets" / "flask"), pythons=("3.11", "3.12"))
    cfg = replace(Config(), server=Server(workers=(1, 2)), cpus=Cpus(server=(0, 1), client=(1,)))
    found = expand([t], cfg, tmp_path / "locks")
    assert [(x.name, x.python, x.workers) for x in found.targets] == [
        ("flask", "3.11", 1),
        ("flask@w2", "3.11", 2),
        ("flask@py3.12", "3.12", 1),
        ("flask@py3.12@w2", "3.12", 2),
    ]
    assert sorted(p.name for p in (tmp_path / "locks").iterdir()) == [
        "flask.txt",
        "flask@py3.12.txt",
    ]
    assert not found.failed


def test_n_workers_run_on_n_cpus_then_the_spare_ones() -> None:
    opts = LaunchOptions(workers=1, cpus=(0, 2, 3))
    assert server_cpus(opts, 1) == (0,)
    assert server_cpus(opts, 3) == (0, 2, 3)
    assert server_cpus(opts, 4) == (0, 2, 3)  # a library caller's small set: used whole
    shared = LaunchOptions(workers=1, cpus=(0,), spare_cpus=(1,))
    assert server_cpus(shared, 2) == (0, 1)
    assert server_cpus(LaunchOptions(), 2) == ()  # no pinning asked


def test_the_report_gives_scaling_efficiency_with_intervals(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        [
            SynthTarget("flask", "Flask", rps=5000.0, workers=1),
            SynthTarget("flask@w2", "Flask", rps=9000.0, workers=2),
            SynthTarget("starlette", "Starlette", rps=20000.0, workers=1),
        ],
        trials=7,
    )
    s = summarize(load_runs([run]))
    (sc,) = s.scaling  # starlette was measured at one count only: no sweep
    assert sc.series == "flask" and [p.workers for p in sc.points] == [1, 2]
    one, two = sc.points
    assert one.efficiency == pytest.approx(1.0)
    assert two.rps_median is not None and one.rps_median is not None
    assert two.efficiency == pytest.approx(two.rps_median / (2 * one.rps_median))
    assert 0.8 < (two.efficiency or 0) < 1.0
    assert two.efficiency_ci is not None
    lo, hi = two.efficiency_ci
    assert lo < (two.efficiency or 0) < hi and hi - lo < 0.2
    md = render_markdown(s)
    assert "## Worker scaling" in md and "flask · closed-64" in md
    assert '"scaling"' in render_json(s)
    assert render_json(s) == render_json(summarize(load_runs([run])))  # seeded: same bytes


@pytest.mark.e2e
def test_a_real_sweep_of_one_and_two_workers(
    fixture_config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On this 2-CPU machine, 2 workers share the client's CPU (worker_cpus = "shared"): both
    counts measured, each its own series, and the report's scaling section names both."""
    from loadgen.config import LoadSetting, Run
    from loadgen.runner import Runner
    from loadgen.targets import discover

    load = LoadSetting(name="short", connections=(8,), duration=1.0, warmup=0.3)
    cfg = replace(
        fixture_config,
        paths=replace(fixture_config.paths, targets_dir=str(ROOT / "targets")),
        cpus=Cpus(server=(0,), client=(1,)),
        server=replace(fixture_config.server, workers=(1, 2), worker_cpus="shared"),
        run=Run(targets=("flask",), trials=2, load=(load,)),
    )
    targets = discover(Path(cfg.paths.targets_dir)).select(["flask"])
    runner = Runner(cfg, targets, run_dir=tmp_path / "run")
    assert runner.execute() == 0
    s = summarize(load_runs([runner.run_dir]))
    (sc,) = s.scaling
    assert [(p.series, p.workers, p.trials) for p in sc.points] == [
        ("flask", 1, 2),
        ("flask@w2", 2, 2),
    ]
    assert [p.shared for p in sc.points] == [False, True]
    assert all(p.rps_median and p.efficiency for p in sc.points)
    assert "shared the client's CPUs" in render_markdown(s)


def test_framework_by_server_and_by_python_views(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        [
            SynthTarget("flask", "Flask", server="gunicorn", rps=3000.0),
            SynthTarget("flask-granian", "Flask", server="granian", rps=4500.0),
            SynthTarget("flask@py3.13", "Flask", server="gunicorn", rps=3300.0, python="3.13"),
            SynthTarget("flask@w2", "Flask", server="gunicorn", rps=5800.0, workers=2),
            SynthTarget("starlette", "Starlette", rps=20000.0),
        ],
        trials=5,
    )
    header = json.loads((run / "run.json").read_text())
    header["targets"] = [
        {"name": "flask", "maintained": True},
        {"name": "starlette", "maintained": False, "last_release": "2020-02-06"},
    ]
    (run / "run.json").write_text(json.dumps(header))
    s = summarize(load_runs([run]))
    (fw,) = s.by_server  # Flask: two plain targets; the variants stay out
    assert fw.name == "Flask"
    assert [(c.series, c.label.split()[0]) for c in fw.cells] == [
        ("flask-granian", "granian"),
        ("flask", "gunicorn"),
    ]
    assert fw.cells[0].share == 1.0 and 0.5 < (fw.cells[1].share or 0) < 0.8
    (py,) = s.by_python
    assert py.name == "flask" and {c.label for c in py.cells} == {"3.11", "3.13"}
    assert s.maintenance == {"starlette": "unmaintained, last release 2020-02-06"}
    md = render_markdown(s)
    assert "## Framework by server" in md and "## Target by Python version" in md
    assert "## Unmaintained frameworks" in md


@pytest.mark.e2e
def test_a_target_on_two_pythons_is_two_series_side_by_side(
    fixture_config: Config, tmp_path: Path
) -> None:
    """``python = ["3.11", "3.13"]`` in target.toml: each interpreter its own environment and
    series (``fx-pythons@py3.13``), both measured, and the report's by-Python row holds both."""
    from loadgen.config import LoadSetting, Run
    from loadgen.records import read_records
    from loadgen.runner import Runner
    from loadgen.targets import discover

    load = LoadSetting(name="short", connections=(4,), duration=0.8, warmup=0.2)
    cfg = replace(fixture_config, run=Run(targets=("fx-pythons",), trials=2, load=(load,)))
    targets = discover(Path(cfg.paths.targets_dir)).select(["fx-pythons"])
    runner = Runner(cfg, targets, run_dir=tmp_path / "run")
    assert runner.execute() == 0
    recs = list(read_records(runner.trials_path))
    assert sorted({(r.target, r.python[:4], r.status) for r in recs}) == [
        ("fx-pythons", "3.11", "ok"),
        ("fx-pythons@py3.13", "3.13", "ok"),
    ]
    (row,) = summarize(load_runs([runner.run_dir])).by_python
    assert row.name == "fx-pythons" and {c.series for c in row.cells} == {
        "fx-pythons",
        "fx-pythons@py3.13",
    }
