"""Scenarios through the runner: the load settings that name them, the trials of targets that
do not serve them (not applicable, neither ranked nor failed), the requests (``?n=`` for
queries), the run's database (a SQLite file, or a private PostgreSQL cluster sampled as its own
role and stopped at the end, on Ctrl-C too).

The end-to-end tests run the fixture target ``fx-scenarios`` (the standard library serving the
contract from SQLite or PostgreSQL) with the raw client, 1 s a scenario.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from analysis.load import load_runs
from analysis.summary import summarize
from loadgen.config import Config, ConfigError, Database, LoadSetting, Run, load_config
from loadgen.http1 import ResponseParser
from loadgen.pgcluster import available, fill_sql
from loadgen.records import read_records, read_samples
from loadgen.records.samples import RoleSample, Sample
from loadgen.records.scenarios import json_payload_bytes, world_number
from loadgen.records.trial import TrialRecord
from loadgen.runner import Runner
from loadgen.sampler import summarize as summarize_samples
from loadgen.scenario_checks import answer_problem, sampled_check, sampled_problem
from loadgen.targets import NOT_DECLARED, discover, load_target

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"
RUN_SMALL = Path(__file__).resolve().parent / "fixtures" / "run-small"
DB_SCENARIOS = ("json", "db", "queries", "fortunes")
NO_POSTGRES = available()


def _toml(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "bench.toml"
    path.write_text(text)
    return load_config(path)


# --- config ---------------------------------------------------------------------------------


def test_scenario_keys_and_the_database_section(tmp_path: Path) -> None:
    cfg = _toml(
        tmp_path,
        '[database]\nkind = "postgres"\n[cpus]\nserver = [0]\nclient = [1]\ndatabase = [0]\n'
        '[[run.load]]\nname = "q"\nscenario = "queries"\nqueries = 7\n'
        '[[run.load]]\nname = "f"\nscenario = "fortunes"\n',
    )
    assert cfg.database == Database(kind="postgres")
    assert cfg.cpus.database == (0,)
    assert [(ld.scenario, ld.queries) for ld in cfg.run.load] == [("queries", 7), ("fortunes", 20)]
    assert load_config(None).database.kind == "sqlite"  # the default: zero set-up


@pytest.mark.parametrize(
    ("load", "key", "words"),
    [
        ('scenario = "browse"', "run.load[0].scenario", "locust's"),
        ('client = "locust"\nscenario = "db"', "run.load[0].scenario", "raw client"),
        ("queries = 0", "run.load[0].queries", "1..500"),
        ("queries = 501", "run.load[0].queries", "1..500"),
        ('scenario = "plaintext"', "run.load[0].scenario", "is not one of"),
    ],
)
def test_bad_scenario_settings_are_refused(tmp_path: Path, load: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        _toml(tmp_path, f"[[run.load]]\nname = 'x'\n{load}\n")
    assert err.value.key == key and words in err.value.reason


def test_bad_database_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _toml(tmp_path, '[database]\nkind = "mysql"\n')
    assert err.value.key == "database.kind"
    with pytest.raises(ConfigError) as err:
        _toml(tmp_path, "[cpus]\ndatabase = [4096]\n")
    assert err.value.key == "cpus.database[0]" and "does not exist" in err.value.reason
    with pytest.raises(ConfigError) as err:
        _toml(tmp_path, '[database]\nbindir = "usr/lib"\n')
    assert err.value.key == "database.bindir"


def test_scenario_flags_reach_every_setting() -> None:
    import argparse

    from commands.run import add_arguments, configure

    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_arguments(parser)
    args = parser.parse_args(["--scenario", "queries", "--queries", "3"])
    cfg = configure(args)
    assert {(ld.scenario, ld.queries) for ld in cfg.run.load} == {("queries", 3)}
    with pytest.raises(ConfigError, match=r"1\.\.500"):
        configure(parser.parse_args(["--scenario", "queries", "--queries", "0"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--scenario", "plaintext"])


# --- paths and not-applicable targets -----------------------------------------------------------


def test_paths_of_a_target_and_why_it_is_not_applicable(tmp_path: Path) -> None:
    t = load_target(FIXTURES / "fx-scenarios")
    assert t.path_for("hello") == t.hello_path
    assert t.path_for("json") == "/json"
    assert t.path_for("queries", 20) == "/queries?n=20"
    assert t.not_applicable_reason("db") is None
    plain = load_target(FIXTURES / "fx-ok")
    assert plain.not_applicable_reason("hello") is None
    assert plain.not_applicable_reason("fortunes") == NOT_DECLARED
    folder = tmp_path / "fx-nodb"
    shutil.copytree(FIXTURES / "fx-ok", folder)
    with open(folder / "target.toml", "a") as fh:
        fh.write('\n[scenarios]\njson = "/json"\n[not_applicable]\ndb = "no database layer"\n')
    nodb = load_target(folder)
    assert nodb.not_applicable_reason("db") == "no database layer"
    assert nodb.not_applicable_reason("queries") == NOT_DECLARED


def test_a_not_applicable_record_reads_back_and_says_why() -> None:
    (line,) = (RUN_SMALL / "trials.jsonl").read_text().splitlines()[:1]
    rec = TrialRecord.from_dict(json.loads(line))
    na = replace(rec, status="not_applicable", failure=NOT_DECLARED, requests=0)
    assert TrialRecord.from_dict(json.loads(json.dumps(na.to_dict()))) == na
    with pytest.raises(ValueError, match="says why"):
        replace(rec, status="not_applicable", failure="")
    old = json.loads(line)
    for key in ("database", "database_stats"):
        old.pop(key)
    assert TrialRecord.from_dict(old).database == {}  # records written before read as before


def test_not_applicable_groups_are_neither_ranked_nor_failed(tmp_path: Path) -> None:
    run = tmp_path / "run-small"
    shutil.copytree(RUN_SMALL, run)
    lines = []
    for line in (run / "trials.jsonl").read_text().splitlines():
        d = json.loads(line)
        if d["target"] == "bottle":
            d.update(status="not_applicable", failure="no database layer", requests=0)
        lines.append(json.dumps(d))
    (run / "trials.jsonl").write_text("\n".join(lines) + "\n")
    (ranking,) = summarize(load_runs([run])).rankings
    states = {g.target: (g.state, g.reason) for g in ranking.others}
    assert states["bottle"] == ("not_applicable", "not applicable: no database layer")
    assert [r.group.target for r in ranking.ranked] == ["starlette"]


def test_a_run_of_only_not_applicable_trials_says_so(tmp_path: Path) -> None:
    from commands.common import nothing_measured

    (line,) = (RUN_SMALL / "trials.jsonl").read_text().splitlines()[:1]
    d = json.loads(line) | {"status": "not_applicable", "failure": NOT_DECLARED}
    (tmp_path / "trials.jsonl").write_text(json.dumps(d) + "\n")
    assert "not applicable" in (nothing_measured(tmp_path / "trials.jsonl") or "")


# --- checks under load ------------------------------------------------------------------------


def test_sampled_checks_look_at_shape_and_range_not_values() -> None:
    right = json.dumps({"id": 5, "randomNumber": world_number(5)}).encode()
    changed = json.dumps({"id": 5, "randomNumber": world_number(5) + 1}).encode()
    assert sampled_problem("db", changed) is None  # a verifier's change of the table: fine
    assert answer_problem("db", changed) is not None  # the verifier's exact check sees it
    assert "out of" in (sampled_problem("db", b'{"id": 0, "randomNumber": 1}') or "")
    assert "rows" in (sampled_problem("queries", b"[" + right + b"]", n=2) or "")
    assert sampled_problem("queries", b"[" + right + b"," + right + b"]", n=2) is None
    check = sampled_check("json")
    assert check(json_payload_bytes()) and not check(b'{"message": "Hello world!"}')


def test_the_raw_clients_parser_uses_a_scenarios_check() -> None:
    def answer(body: bytes) -> bytes:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        return head + body

    good = json.dumps([{"id": 1, "randomNumber": 3}] * 3).encode()
    parser = ResponseParser(None, check_every=1, check=sampled_check("queries", 3))
    parser.feed(answer(good) + answer(b"[]") + answer(good))
    assert parser.counts() == {"ok": 2, "status": 0, "body": 1}


def test_samples_with_a_database_role_are_summarised() -> None:
    def role(cpu: float, procs: int) -> RoleSample:
        return RoleSample(procs, cpu, 0.0, 50_000_000, None, procs, 10)

    samples = [
        Sample(100.0 + i, float(i), role(i, 1), role(i, 1), 4.0 * i, 8.0 * i, 0.0, role(i / 2, 6))
        for i in range(5)
    ]
    again = [Sample.from_dict(json.loads(json.dumps(s.to_dict()))) for s in samples]
    assert again == samples
    s = summarize_samples(again, 101.0, 103.0, 1)
    assert s.database is not None and s.database.processes_max == 6
    assert s.database.cpu_mean_pct == pytest.approx(50.0)
    plain = replace(samples[0], database=None)
    assert "database" not in plain.to_dict()  # files without a database read as before
    assert (
        summarize_samples([replace(x, database=None) for x in samples], 101, 103, 1).database
        is None
    )


def test_the_sql_fills_every_row() -> None:
    sql = fill_sql()
    assert sql.count("),(") == 10_000 - 1 + 12 - 1
    assert "aren''t broken" in sql  # quotes doubled, not dropped


# --- end to end -------------------------------------------------------------------------------


def _config(
    base: Config, kind: str, scenarios: tuple[str, ...], targets: tuple[str, ...]
) -> Config:
    loads = tuple(
        LoadSetting(name=s, scenario=s, connections=(4,), duration=1.0, warmup=0.3, queries=5)
        for s in scenarios
    )
    return Config(
        paths=base.paths,
        cpus=base.cpus,
        server=base.server,
        sampler=base.sampler,
        database=Database(kind=kind),  # type: ignore[arg-type]
        run=Run(targets=targets, trials=1, load=loads),
        root=base.root,
    )


def _print(recs: list[TrialRecord]) -> None:
    for r in recs:
        db = r.database_stats
        extra = (
            f" db-cpu {db.cpu_mean_pct:.0f} % rss {db.rss_peak_bytes / 2**20:.0f} MiB "
            f"procs {db.processes_max}"
            if db
            else ""
        )
        print(f"{r.trial_id}: {r.status} {r.rps:,.0f} req/s {r.database or ''}{extra}")


@pytest.mark.e2e
def test_scenarios_against_sqlite(fixture_config: Config, tmp_path: Path) -> None:
    cfg = _config(fixture_config, "sqlite", DB_SCENARIOS, ("fx-scenarios", "fx-ok"))
    targets = discover(FIXTURES).select(list(cfg.run.targets))
    runner = Runner(cfg, targets, run_dir=tmp_path / "run")
    runner.prepare()
    recs = list(read_records(runner.run() / "trials.jsonl"))
    _print(recs)
    assert (tmp_path / "run" / "db" / "bench.sqlite").is_file()
    by = {(r.target, r.scenario): r for r in recs}
    assert len(by) == 8
    for s in DB_SCENARIOS:
        r = by[("fx-scenarios", s)]
        assert r.status == "ok", r.failure
        assert r.requests > 0 and r.error_count == 0
        assert r.client_settings["path"] == ("/queries?n=5" if s == "queries" else f"/{s}")
        if s == "json":
            assert r.database == {}
        else:
            assert r.database["kind"] == "sqlite" and r.database["version"]
        assert r.database_stats is None  # embedded: nothing extra to sample
        na = by[("fx-ok", s)]
        assert na.status == "not_applicable" and na.failure == NOT_DECLARED
        assert na.startup_s is None and na.requests == 0  # never started


@pytest.mark.e2e
@pytest.mark.skipif(NO_POSTGRES is not None, reason=f"PostgreSQL is absent: {NO_POSTGRES}")
def test_scenarios_against_a_private_postgres(fixture_config: Config, tmp_path: Path) -> None:
    cfg = _config(fixture_config, "postgres", ("db", "queries", "fortunes"), ("fx-scenarios",))
    targets = discover(FIXTURES).select(["fx-scenarios"])
    runner = Runner(cfg, targets, run_dir=tmp_path / "run")
    runner.prepare()
    run_dir = runner.run()
    recs = list(read_records(run_dir / "trials.jsonl"))
    _print(recs)
    assert runner.database is not None and runner.database.cluster is not None
    cluster = runner.database.cluster
    assert [r.scenario for r in recs] == ["db", "queries", "fortunes"]
    for r in recs:
        assert r.status == "ok", r.failure
        assert r.requests > 0 and r.error_count == 0
        assert r.database["kind"] == "postgres" and r.database["version"][0].isdigit()
        stats = r.database_stats
        assert stats is not None and stats.processes_max >= 2  # the postmaster and a backend
        assert stats.ctx_switches > 0  # the backends worked (CPU: 10 ms ticks, a short trial)
        samples = read_samples(run_dir / "samples" / (r.trial_id.replace("/", "__") + ".jsonl"))
        assert any(s.database and s.database.procs for s in samples)
    assert cluster.stopped and not psutil.pid_exists(cluster.pid)
    assert not [p for p in psutil.process_iter() if _in_cluster(p, cluster.data_dir)]


def _in_cluster(p: psutil.Process, data_dir: Path) -> bool:
    try:
        return str(data_dir) in " ".join(p.cmdline())
    except psutil.Error:
        return False


@pytest.mark.e2e
@pytest.mark.skipif(NO_POSTGRES is not None, reason=f"PostgreSQL is absent: {NO_POSTGRES}")
def test_ctrl_c_stops_the_postgres_cluster(envs_dir: Path, tmp_path: Path) -> None:
    toml = tmp_path / "bench.toml"
    toml.write_text(
        f'[paths]\ntargets_dir = "{FIXTURES}"\nenvs_dir = "{envs_dir}"\n'
        f'reports_dir = "{tmp_path / "reports"}"\n'
        '[database]\nkind = "postgres"\n'
        '[run]\ntargets = ["fx-scenarios"]\ntrials = 5\n'
        '[[run.load]]\nname = "db"\nscenario = "db"\nconnections = [2]\nduration = 1.5\n'
        "warmup = 0.2\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "--config", str(toml), "run"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        trials: list[Path] = []
        while time.monotonic() < deadline:
            trials = list((tmp_path / "reports" / "runs").glob("*/trials.jsonl"))
            if trials and trials[0].read_text().count("\n") >= 1:
                break
            time.sleep(0.1)
        assert trials, "no trial finished in time"
        time.sleep(0.8)  # inside the second trial
        tree = psutil.Process(proc.pid).children(recursive=True)
        postgres = {p.pid for p in tree if p.name() == "postgres"}
        assert postgres, "no postgres process under fwbench"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    recs = list(read_records(trials[0]))
    assert recs and all(r.status == "ok" and r.database["kind"] == "postgres" for r in recs)
    time.sleep(0.2)
    alive = [p for p in postgres if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert not alive, f"postgres left running after Ctrl-C: {alive}"
