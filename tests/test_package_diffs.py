"""Channels and package diffs: ``--channel`` for run and bench, the history's package sets and
locks (schema 3, a version 2 file upgraded), every history change naming what differs between
the nights either side of it (regressions.json, Markdown, webhook, trends), and the report's
"Packages that differ from the pinned lock" section, on a synthetic run and a real one."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from analysis import explain
from analysis.check import run_check
from analysis.exporters import render_json, render_markdown
from analysis.history import SCHEMA_VERSION, History
from analysis.html import render_html
from analysis.load import load_runs
from analysis.summary import summarize
from analysis.trends import build as build_trends
from benchmarks.synthetic import store_nights, synthetic_header, synthetic_machine
from commands.cli import main as fwbench
from commands.run import parse_channels
from loadgen.config import ConfigError
from loadgen.records.packages import PackageChange
from tests.test_alerts import Receiver, config

ROOT = Path(__file__).resolve().parent.parent
RUN_SMALL = ROOT / "tests" / "fixtures" / "run-small"

# --- --channel ----------------------------------------------------------------------------------


def test_channel_flag_parses_and_refuses() -> None:
    assert parse_channels(None) == []
    assert parse_channels("pinned, latest") == ["pinned", "latest"]
    assert parse_channels("pre") == ["pre"]
    for bad, says in (("nightly", "unknown channel(s) 'nightly'"), (",", "no channel given"),
                      ("latest,latest", "names a channel twice")):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            parse_channels(bad)
        assert err.value.key == "--channel" and says in str(err.value)


def test_channel_flag_reaches_the_config() -> None:
    import argparse

    from commands.run import add_arguments, configure

    p = argparse.ArgumentParser()
    p.add_argument("--config")
    add_arguments(p)
    cfg = configure(
        p.parse_args(["--config", str(ROOT / "bench.toml"), "--channel", "pinned,latest"])
    )
    assert cfg.run.channels == ("pinned", "latest")
    cfg = configure(p.parse_args(["--config", str(ROOT / "bench.toml")]))
    assert cfg.run.channels == ("pinned",)  # bench.toml's


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_bad_channel_is_one_line_and_exit_2(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = fwbench(["--config", str(ROOT / "bench.toml"), command, "--channel", "pinned,nightly"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0  # one line
    assert err.startswith("fwbench: error: flag: --channel: unknown channel(s) 'nightly'")


# --- the history: packages and locks -------------------------------------------------------------

MACHINE = synthetic_machine()
STARTED = "2026-03-01T02:00:00+00:00"


def run_dir_with_channels(path: Path, run_id: str, werkzeug: str) -> Path:
    """A finished run folder (header, no trials) with flask and flask@latest and their locks."""
    path.mkdir(parents=True)
    header = synthetic_header(run_id, STARTED, MACHINE)
    header["verdicts"] = [
        {"target": "flask", "packages": [{"name": "Flask", "version": "3.1.0"},
                                         {"name": "werkzeug", "version": "3.1.3"}]},
        {"target": "flask@latest", "packages": [{"name": "flask", "version": "3.1.2"},
                                                {"name": "Werkzeug", "version": werkzeug}]},
    ]  # fmt: skip
    (path / "run.json").write_text(json.dumps(header))
    (path / "trials.jsonl").write_text("")
    locks = path / "locks"
    locks.mkdir()
    (locks / "flask.txt").write_text("flask==3.1.0\nwerkzeug==3.1.3\n")
    (locks / "flask@latest.txt").write_text(
        f"flask==3.1.2\n    # via -r x.in\nwerkzeug=={werkzeug}\n"
    )
    (locks / "flask@latest.in").write_text("flask>=3.1.0\n")  # the relaxed input: not a lock
    return path


def test_store_run_keeps_packages_and_locks_and_restoring_replaces(tmp_path: Path) -> None:
    run = run_dir_with_channels(tmp_path / "r1", "r1", "3.1.9")
    with History(tmp_path / "h.sqlite") as h:
        h.store_run(run)
        assert h.packages("r1", "flask@latest") == {"flask": "3.1.2", "werkzeug": "3.1.9"}
        assert h.packages("r1", "flask") == {"flask": "3.1.0", "werkzeug": "3.1.3"}
        assert h.lock("r1", "flask@latest") == "flask==3.1.2\n    # via -r x.in\nwerkzeug==3.1.9\n"
        assert h.lock("r1", "flask@latest.in") is None and h.lock("r1", "django") is None
        assert h.packages("r1", "django") == {}
        shutil.rmtree(run)
        h.store_run(run_dir_with_channels(run, "r1", "3.2.0"))  # stored again: replaced
        assert h.packages("r1", "flask@latest")["werkzeug"] == "3.2.0"
        assert "werkzeug==3.2.0" in (h.lock("r1", "flask@latest") or "")
        n = h.conn.execute("SELECT COUNT(*) FROM packages WHERE run_id = 'r1'").fetchone()[0]
        assert n == 4


def test_a_version_2_history_gains_packages_and_locks(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        store_nights(h, {"flask": [1000.0, 1010.0]}, first_night=date(2026, 3, 1))
    with sqlite3.connect(path) as db:  # as the fwbench before package sets left it
        db.execute("DROP TABLE packages")
        db.execute("DROP TABLE locks")
        db.execute("PRAGMA user_version = 2")
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "packages" not in tables and "costs" in tables
    with History(path) as h:
        assert h.version == SCHEMA_VERSION == 3
        old = h.runs()
        assert len(old) == 2 and h.packages(old[0].run_id, "flask") == {}
        h.store_run(run_dir_with_channels(tmp_path / "r3", "r3", "3.1.9"))
        assert h.packages("r3", "flask@latest")["werkzeug"] == "3.1.9"


# --- every change point names its package diff --------------------------------------------------

BEFORE = {"flask": "3.1.0", "werkzeug": "3.1.3", "blinker": "1.8.2", "click": "8.1.8"}
AFTER = {**BEFORE, "werkzeug": "3.1.9", "blinker": "1.9.0"}
FLAT, LOW = 25, 3


def seed_upgrade(tmp_path: Path) -> None:
    """flask@latest at ~3,000 req/s; from the night werkzeug and blinker move it is 10 % lower.
    django drops 10 % the same night with the same packages every night."""
    rng = np.random.default_rng(7)
    latest = [*3_000 * (1 + rng.normal(0, 0.01, FLAT)), *2_700 * (1 + rng.normal(0, 0.01, LOW))]
    django = [*5_000 * (1 + rng.normal(0, 0.01, FLAT)), *4_500 * (1 + rng.normal(0, 0.01, LOW))]
    nights = FLAT + LOW
    with History(tmp_path / "h.sqlite") as h:
        store_nights(
            h,
            {"flask@latest": latest, "django": django},
            first_night=date(2026, 2, 1),
            packages={
                "flask@latest": [BEFORE] * FLAT + [AFTER] * LOW,
                "django": [{"django": "5.2", "asgiref": "3.8.1"}] * nights,
            },
        )


def test_the_alert_names_both_package_changes_and_says_when_there_are_none(
    tmp_path: Path,
) -> None:
    seed_upgrade(tmp_path)
    receiver = Receiver()
    try:
        env = {"FWBENCH_WEBHOOK_URL": receiver.url, "FWBENCH_WEBHOOK_SECRET": "s"}
        r = run_check(config(tmp_path), history_gate=True, env=env, today=date(2026, 3, 1))
    finally:
        receiver.close()
    assert r.status == 1
    [f] = [f for f in r.findings if f.alerts and f.metric == "rps" and f.target == "flask@latest"]
    e = f.explanation
    assert e is not None
    assert (e.before_night, e.after_night) == ("2026-02-25", "2026-02-26")
    assert e.packages == (
        PackageChange("blinker", "1.8.2", "1.9.0"),
        PackageChange("werkzeug", "3.1.3", "3.1.9"),
    )
    assert e.text == "2 packages changed: blinker 1.8.2 → 1.9.0, werkzeug 3.1.3 → 3.1.9"
    assert e.suite_commit is None and e.machine is None  # the same suite and machine

    [d] = [f for f in r.findings if f.alerts and f.metric == "rps" and f.target == "django"]
    assert d.explanation is not None and d.explanation.packages == ()
    assert d.explanation.text == explain.NOTHING
    assert "no package, suite or machine difference" in d.explanation.text

    doc = json.loads(r.json_path.read_text())
    by = {(a["target"], a["metric"]): a for a in doc["regressions"]}
    flask = by[("flask@latest", "rps")]
    assert flask["packages"] == [
        {"name": "blinker", "before": "1.8.2", "after": "1.9.0"},
        {"name": "werkzeug", "before": "3.1.3", "after": "3.1.9"},
    ]
    assert flask["compared"]["before"]["night"] == "2026-02-25"
    assert "suite_commit" not in flask and "machine" not in flask
    assert by[("django", "rps")]["packages"] == []
    assert by[("django", "rps")]["explained"] == explain.NOTHING

    assert "werkzeug 3.1.3 → 3.1.9" in r.markdown and "blinker 1.8.2 → 1.9.0" in r.markdown
    assert "django/synthetic/c64, requests/s, nights 2026-02-25 → 2026-02-26: no package" in (
        r.markdown
    )

    [(_, body)] = receiver.got
    sent = {(a["target"], a["metric"]): a for a in json.loads(body)["alerts"]}
    assert sent[("flask@latest", "rps")]["packages"] == flask["packages"]
    assert sent[("django", "rps")]["explained"] == explain.NOTHING


def test_a_suite_commit_or_machine_change_is_named(tmp_path: Path) -> None:
    other = synthetic_machine("other-host")
    with History(tmp_path / "h.sqlite") as h:
        for run_id, started, machine, commit in (
            ("a", "2026-03-01T02:00:00+00:00", MACHINE, "1111111aaaa"),
            ("b", "2026-03-02T02:00:00+00:00", other, "2222222bbbb"),
        ):
            header = synthetic_header(run_id, started, {**machine, "suite_commit": commit})
            header["verdicts"] = [
                {"target": "flask", "packages": [{"name": "flask", "version": "3"}]}
            ]
            h.store(header, [])
        e = explain.explain_change(h, "flask", "a", "b")
    assert e.packages == () and e.packages_known
    assert e.suite_commit == ("1111111aaaa", "2222222bbbb")
    assert e.machine == (MACHINE["fingerprint"], other["fingerprint"])
    assert e.text.startswith("suite commit 1111111aaaa → 2222222bbbb; machine fingerprint ")
    assert e.to_dict()["suite_commit"] == {"before": "1111111aaaa", "after": "2222222bbbb"}


def test_nights_without_package_sets_say_so(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        store_nights(h, {"flask": [1.0, 1.0]}, first_night=date(2026, 3, 1))
        [a, b] = [r.run_id for r in h.runs()]
        e = explain.explain_change(h, "flask", a, b)
    assert not e.packages_known and "not stored" in e.text
    assert e.text != explain.NOTHING  # unknown is not "nothing changed"


def test_the_trends_table_says_what_changed(tmp_path: Path) -> None:
    seed_upgrade(tmp_path)
    with History(tmp_path / "h.sqlite") as h:
        t = build_trends(h)
    assert t is not None
    assert "what changed" in t.markdown
    assert "werkzeug 3.1.3 → 3.1.9" in t.markdown and "werkzeug 3.1.3 → 3.1.9" in t.html


# --- the report: packages that differ from the pinned lock ---------------------------------------


def channel_run(tmp_path: Path) -> Path:
    """run-small with a starlette@latest verdict and the locks of both starlette series."""
    run = tmp_path / "run"
    shutil.copytree(RUN_SMALL, run)
    header = json.loads((run / "run.json").read_text())
    [pinned] = [v for v in header["verdicts"] if v["target"] == "starlette"]
    latest = json.loads(json.dumps(pinned))
    latest["target"] = "starlette@latest"
    for p in latest["packages"]:
        p["version"] = {"starlette": "1.10.2", "uvicorn": "0.55.0"}.get(p["name"], p["version"])
    header["verdicts"].append(latest)
    (run / "run.json").write_text(json.dumps(header))
    locks = run / "locks"
    locks.mkdir()
    (locks / "starlette.txt").write_text("anyio==4.6.2\nstarlette==0.41.3\nuvicorn==0.32.1\n")
    (locks / "starlette@latest.txt").write_text(
        "anyio==4.6.2\nstarlette==1.10.2\nuvicorn==0.55.0\nwatchfiles==1.1.0\n"
    )
    return run


def test_the_report_lists_the_packages_that_differ_from_the_pinned_lock(tmp_path: Path) -> None:
    s = summarize(load_runs([channel_run(tmp_path)], samples=False))
    [c] = s.channels
    assert (c.series, c.pinned, c.channel, c.known) == (
        "starlette@latest",
        "starlette",
        "latest",
        True,
    )
    assert [(p.name, p.before, p.after) for p in c.changes] == [
        ("starlette", "0.41.3", "1.10.2"),
        ("uvicorn", "0.32.1", "0.55.0"),
        ("watchfiles", "", "1.1.0"),
    ]
    text = render_markdown(s)
    assert "## Packages that differ from the pinned lock" in text
    assert "| starlette@latest | uvicorn | 0.32.1 | 0.55.0 |" in text
    assert json.loads(render_json(s))["channels"][0]["packages"][1] == {
        "name": "uvicorn", "before": "0.32.1", "after": "0.55.0"
    }  # fmt: skip
    page = render_html(s, [])
    assert '<section id="channels">' in page and "0.55.0" in page
    plain = summarize(load_runs([RUN_SMALL], samples=False))
    assert plain.channels == () and "pinned lock" not in render_markdown(plain)


def test_a_channel_series_without_a_pinned_set_says_so(tmp_path: Path) -> None:
    run = channel_run(tmp_path)
    (run / "locks" / "starlette.txt").unlink()
    header = json.loads((run / "run.json").read_text())
    header["verdicts"] = [v for v in header["verdicts"] if v["target"] != "starlette"]
    (run / "run.json").write_text(json.dumps(header))
    s = summarize(load_runs([run], samples=False))
    [c] = s.channels
    assert not c.known and c.changes == ()
    assert "starlette@latest: no package list for it or for starlette" in render_markdown(s)


# --- a real latest-channel run ------------------------------------------------------------------


@pytest.mark.e2e
def test_a_real_latest_channel_run_shows_its_package_diff(tmp_path: Path, envs_dir: Path) -> None:
    """starlette pinned and on the latest channel (PyPI), one 1 s trial each; the report lists
    the packages of starlette@latest that differ from the pinned lock."""
    toml = tmp_path / "bench.toml"
    toml.write_text(
        f'[paths]\ntargets_dir = "{ROOT / "targets"}"\nenvs_dir = "{envs_dir}"\n'
        f'reports_dir = "{tmp_path / "reports"}"\n'
        '[run]\ntargets = ["starlette"]\ntrials = 1\n'
        '[[run.load]]\nname = "closed-16"\nconnections = [16]\nduration = 1\nwarmup = 0.5\n'
    )
    argv = [sys.executable, "-m", "commands.cli", "--config", str(toml), "run"]
    argv += ["--channel", "pinned,latest", "--targets", "starlette", "--trials", "1"]
    argv += ["--duration", "1", "--warmup", "0.5"]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    run = Path(out.stdout.strip().splitlines()[-1])
    assert (run / "locks" / "starlette.txt").is_file()
    assert (run / "locks" / "starlette@latest.txt").is_file()
    s = summarize(load_runs([run], samples=False))
    assert {g.target for g in s.groups} == {"starlette", "starlette@latest"}
    [c] = s.channels
    rows = {p.name: (p.before, p.after) for p in c.changes}
    print("\n".join(f"{c.series} | {n} | {b} | {a}" for n, (b, a) in rows.items()))
    before, after = rows["uvicorn"]  # the newest uvicorn PyPI had when it ran (0.55.0 or later)
    assert before == "0.54.0" and after not in ("", "0.54.0")
    assert f"| starlette@latest | uvicorn | 0.54.0 | {after} |" in render_markdown(s)
