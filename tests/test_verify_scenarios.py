"""The scenario verifier against one stdlib fixture server (tests/fixtures/targets/_sc_server.py)
that is right, or wrong on purpose in one way per mode (fx-sc-<mode>): each wrong one is rejected
for that scenario only, with the reason; its hello verdict and its other scenarios stand.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from commands.cli import main as fwbench
from commands.verify import all_ok, scenario_table
from loadgen.config import Config
from loadgen.db import create_sqlite
from loadgen.launcher import LaunchOptions
from loadgen.records.scenarios import fortunes_html, sorted_fortunes, world_number
from loadgen.scenario_checks import answer_problem
from loadgen.targets import Target, discover
from loadgen.verify import Check, Verdict, verify_target
from loadgen.verify_scenarios import ScenarioVerdict, needs_database, sqlite_database

OPTS = LaunchOptions(cpus=(0,), stop_grace=2.0)
FULL = ("json", "db", "queries", "fortunes")
CACHED = "a cached answer, not the database's"

# mode -> the scenarios it must fail, each with a piece of the reason
WRONG: dict[str, dict[str, str]] = {
    "unescaped": {"fortunes": "the <script> fortune is not escaped"},
    "unsorted": {"fortunes": "the fortunes are not sorted by message"},
    "noextra": {"fortunes": "the fortune added at request time"},
    "charset": {"fortunes": "the charset must be utf-8"},
    "latin1": {"fortunes": "body is not UTF-8"},
    "cached": {"db": CACHED, "queries": CACHED},
    "clamp0": {"queries": "GET /queries?n=0: 0 rows, expected 1"},
    "clamp501": {"queries": "GET /queries?n=501: 501 rows, expected 500"},
    "strid": {"db": "must be whole numbers", "queries": "must be whole numbers"},
}


def target(cfg: Config, name: str) -> Target:
    return discover(cfg.path("targets_dir")).select([name])[0]


def verdict(cfg: Config, name: str, tmp_path: Path, opts: LaunchOptions = OPTS) -> Verdict:
    return verify_target(target(cfg, name), cfg.path("envs_dir"), log_dir=tmp_path, opts=opts)


@pytest.mark.e2e
def test_a_right_server_passes_every_scenario(fixture_config: Config, tmp_path: Path) -> None:
    # a database already named in the options (a run's) gives way to the verifier's own
    stale = dataclasses.replace(OPTS, extra_env=(("FWBENCH_DB_PATH", "/nonexistent.sqlite"),))
    v = verdict(fixture_config, "fx-sc-good", tmp_path, stale)
    assert v.ok, v.failures
    assert {n: s.to_dict() for n, s in v.scenarios} == {n: {"ok": True, "reason": ""} for n in FULL}
    assert v.to_dict()["scenarios"]["fortunes"] == {"ok": True, "reason": ""}
    assert [v.scenario_ok(n) for n in ("hello", *FULL)] == [True] * 5
    assert all_ok([v])


@pytest.mark.e2e
@pytest.mark.parametrize("mode", sorted(WRONG))
def test_a_wrong_server_fails_that_scenario_only(
    fixture_config: Config, tmp_path: Path, mode: str
) -> None:
    v = verdict(fixture_config, f"fx-sc-{mode}", tmp_path)
    assert v.ok, v.failures  # the hello verdict stands
    got = dict(v.scenarios)
    assert set(got) == set(FULL)
    for name in FULL:
        if name in WRONG[mode]:
            assert got[name].ok is False
            assert WRONG[mode][name] in got[name].reason, got[name].reason
        else:
            assert got[name].ok is True, (name, got[name].reason)
    assert not all_ok([v])
    assert v.log_tail  # the server's last lines come with a failed scenario


@pytest.mark.e2e
def test_not_applicable_scenarios_and_the_cli_json(
    fixture_config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "bench.toml"
    toml.write_text(
        f'[paths]\ntargets_dir = "{fixture_config.path("targets_dir")}"\n'
        f'envs_dir = "{fixture_config.path("envs_dir")}"\n'
        f'reports_dir = "{tmp_path / "reports"}"\n[server]\nstop_grace = 2\n'
    )
    code = fwbench(["--config", str(toml), "verify", "fx-sc-jsononly", "fx-sc-clamp0", "--json"])
    assert code == 1  # a declared scenario failed
    out = {v["target"]: v for v in json.loads(capsys.readouterr().out)}
    assert out["fx-sc-jsononly"]["ok"] is True and out["fx-sc-clamp0"]["ok"] is True
    assert out["fx-sc-jsononly"]["scenarios"] == {
        "json": {"ok": True, "reason": ""},
        "db": {"ok": None, "reason": "the fixture has no database story"},
        "queries": {"ok": None, "reason": "the fixture has no database story"},
        "fortunes": {"ok": None, "reason": "the fixture has no template engine"},
    }
    assert out["fx-sc-clamp0"]["scenarios"]["queries"]["ok"] is False
    assert out["fx-sc-clamp0"]["scenarios"]["db"]["ok"] is True


# --- without a server ---------------------------------------------------------------------------


def _verdict(name: str, ok: bool, scenarios: dict[str, ScenarioVerdict]) -> Verdict:
    return Verdict(
        target=name,
        framework="F",
        framework_version="1",
        server="s",
        server_version="1",
        python="3.11",
        kind="json",
        ok=ok,
        checks=(Check("status", "pass", "200"),),
        scenarios=tuple(scenarios.items()),
    )


def test_scenario_table_and_exit_status() -> None:
    hello_only = _verdict("a", True, {})
    mixed = _verdict(
        "b",
        True,
        {
            "json": ScenarioVerdict(True),
            "db": ScenarioVerdict(False, "GET /db: no Content-Type"),
            "fortunes": ScenarioVerdict(None, "no templates"),
        },
    )
    assert scenario_table([hello_only]) == ""  # hello-only runs print nothing more
    assert all_ok([hello_only]) and not all_ok([hello_only, mixed]) and not all_ok([])
    lines = scenario_table([hello_only, mixed]).splitlines()
    assert lines[0].split() == ["target", "hello", "json", "db", "queries", "fortunes"]
    assert lines[2].split() == ["b", "ok", "ok", "FAILED", "n/a"]
    assert lines[-1] == "b db: GET /db: no Content-Type"
    assert hello_only.to_dict()["scenarios"] == {}
    assert mixed.scenario_ok("db") is False and mixed.scenario_ok("fortunes") is None
    assert mixed.scenario_ok("queries") is None and mixed.scenario_ok("hello") is True


def test_only_database_scenarios_get_a_database(fixture_config: Config) -> None:
    good = target(fixture_config, "fx-sc-good")
    assert needs_database(good)
    assert not needs_database(target(fixture_config, "fx-sc-jsononly"))
    assert not needs_database(target(fixture_config, "fx-ok"))
    assert not needs_database(dataclasses.replace(good, scenarios=(("json", "/json"),)))


def test_the_sqlite_database_update_and_its_env(tmp_path: Path) -> None:
    path = create_sqlite(tmp_path / "s.sqlite")
    db = sqlite_database(path)
    assert dict(db.env)["FWBENCH_DB_PATH"] == str(path.resolve()) and db.kind == "sqlite"
    db.add_to_world(2)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT id, randomnumber FROM world WHERE id IN (1, 10000)").fetchall()
    assert rows == [(1, world_number(1) + 2), (10000, world_number(10000) + 2)]


def test_fortune_reasons() -> None:
    ct = "text/html; charset=utf-8"
    assert answer_problem("fortunes", fortunes_html().encode(), ct) is None
    no_extra = [r for r in sorted_fortunes() if r[0] != 0]
    reason = answer_problem("fortunes", fortunes_html(no_extra).encode(), ct)
    assert reason and "added at request time" in reason
    by_id = fortunes_html(sorted(sorted_fortunes())).encode()
    assert answer_problem("fortunes", by_id, ct) == "the fortunes are not sorted by message"
    assert "charset" in str(
        answer_problem("fortunes", fortunes_html().encode(), "text/html; charset=iso-8859-1")
    )
