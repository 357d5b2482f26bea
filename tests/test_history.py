"""The history store (analysis.history): schema and migrations, runs stored whole or not at
all, nightly points per machine, alert states; two processes writing at once, a writer that
dies inside its transaction, and a reader looking while a write is half-way."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import pytest

from analysis.history import (
    MIGRATIONS,
    SCHEMA_VERSION,
    History,
    HistoryError,
    Migration,
    NewAlert,
)
from benchmarks.synthetic import (
    store_nights,
    synthetic_header,
    synthetic_machine,
    synthetic_record,
)
from loadgen.records import append_record

ROOT = Path(__file__).resolve().parent.parent
STARTED = "2026-03-01T02:00:00+00:00"


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_a_new_database_has_the_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "history.sqlite"
    with History(path) as h:
        assert h.version == SCHEMA_VERSION
        assert h.runs() == [] and h.latest_run() is None and h.fingerprints() == {}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "trials", "machines", "alerts"} <= tables
    with History(path) as h:  # opening again migrates nothing
        assert h.version == SCHEMA_VERSION


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="99 is newer than this fwbench knows"):
        History(path)


def test_a_migration_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        store_nights(h, {"flask": [1000.0, 1010.0]}, first_night=date(2026, 3, 1))
    nxt = MIGRATIONS[-1].version + 1
    later = (
        *MIGRATIONS,
        Migration(nxt, "a note per run", ("ALTER TABLE runs ADD COLUMN note TEXT",)),
    )
    with History(path, migrations=later) as h:
        assert h.version == nxt
        assert len(h.runs()) == 2
        h.conn.execute("UPDATE runs SET note = 'kept'")
    with pytest.raises(HistoryError, match="newer"):
        History(path)  # this code knows the versions before that one only


def test_a_version_1_database_gains_the_cost_table_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        store_nights(h, {"flask": [1000.0, 1010.0]}, first_night=date(2026, 3, 1))
    with sqlite3.connect(path) as db:  # as the fwbench before the cost pass left it
        for table in ("costs", "packages", "locks"):
            db.execute(f"DROP TABLE {table}")
        db.execute("PRAGMA user_version = 1")
    with History(path) as h:
        assert h.version == SCHEMA_VERSION
        assert len(h.runs()) == 2
        assert h.cost_series(h.runs()[0].fingerprint) == {}


def test_a_file_that_is_not_a_database_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(HistoryError):
        History(path)


def write_run_dir(run_dir: Path, run_id: str, machine: dict[str, object]) -> None:
    run_dir.mkdir(parents=True)
    header = synthetic_header(run_id, STARTED, machine)
    header["machine_warnings"] = ["turbo is on; turning it off gives steadier figures"]
    (run_dir / "run.json").write_text(json.dumps(header))
    for k, rps in enumerate((1000.0, 1100.0, 900.0), 1):
        for target in ("flask", "django"):
            rec = synthetic_record(run_id, target, rps, started_at=STARTED, machine=machine,
                                   trial=k, load="closed-64")  # fmt: skip
            append_record(run_dir / "trials.jsonl", rec)


def test_store_run_reads_a_run_directory(tmp_path: Path) -> None:
    machine = synthetic_machine()
    write_run_dir(tmp_path / "runs" / "r1", "r1", machine)
    with History(tmp_path / "h.sqlite") as h:
        row = h.store_run(tmp_path / "runs" / "r1")
        assert (row.run_id, row.trials, row.night) == ("r1", 6, "2026-03-01")
        assert row.machine_warnings == ("turbo is on; turning it off gives steadier figures",)
        series = h.series(str(machine["fingerprint"]))
        assert list(series) == [("django", "closed-64", 64), ("flask", "closed-64", 64)]
        [point] = series[("flask", "closed-64", 64)]
        assert point.rps == 1000.0 and point.trials == 3  # the median of 1000, 1100, 900
        assert point.p50 == pytest.approx(64.0)  # the median trial's, 64 / 1000 s
        assert h.machine(str(machine["fingerprint"]))["hostname"] == "synthetic-host"
        again = h.store_run(tmp_path / "runs" / "r1")  # storing again replaces
        assert again.trials == 6
    path = tmp_path / "h.sqlite"
    assert (count(path, "runs"), count(path, "trials"), count(path, "machines")) == (1, 6, 1)
    stored = json.loads(sqlite3.connect(path).execute("SELECT record FROM trials").fetchone()[0])
    assert "hist" not in stored and stored["rps"] in (1000.0, 1100.0, 900.0)


def test_unfinished_or_anonymous_runs_are_refused(tmp_path: Path) -> None:
    m = synthetic_machine()
    with History(tmp_path / "h.sqlite") as h:
        header = synthetic_header("r1", STARTED, m)
        with pytest.raises(HistoryError, match="did not finish"):
            h.store(dict(header, interrupted=True), [])
        with pytest.raises(HistoryError, match="did not finish"):
            h.store(dict(header, finished_at=None), [])
        with pytest.raises(HistoryError, match="fingerprint"):
            h.store(dict(header, machine={}), [])
        other = synthetic_record("r2", "flask", 1.0, started_at=STARTED, machine=m)
        with pytest.raises(HistoryError, match="belongs to run r2"):
            h.store(header, [other])
        assert h.runs() == []
    assert count(tmp_path / "h.sqlite", "trials") == 0


def test_series_are_per_machine_and_in_night_order(tmp_path: Path) -> None:
    a, b = synthetic_machine("host-a"), synthetic_machine("host-b")
    with History(tmp_path / "h.sqlite") as h:
        store_nights(h, {"flask": [1.0, 2.0, 3.0]}, first_night=date(2026, 3, 1), machine=a,
                     tag="a")  # fmt: skip
        store_nights(h, {"flask": [9.0, 8.0]}, first_night=date(2026, 2, 1), machine=b, tag="b")
        fa, fb = str(a["fingerprint"]), str(b["fingerprint"])
        assert h.fingerprints() == {fa: 3, fb: 2}
        assert [p.rps for p in h.series(fa)[("flask", "synthetic", 64)]] == [1.0, 2.0, 3.0]
        assert [p.night for p in h.series(fb)[("flask", "synthetic", 64)]] == [
            "2026-02-01",
            "2026-02-02",
        ]
        assert h.latest_run() is not None and h.latest_run().fingerprint == fa  # type: ignore[union-attr]
        assert [r.run_id for r in h.runs(fb)] == ["20260201T020000Z-b", "20260202T020000Z-b"]


def test_alert_states(tmp_path: Path) -> None:
    alert = NewAlert("k1", "history", "flask/closed/c64", "rps", "fp", "run-9", "2026-03-09",
                     {"target": "flask"})  # fmt: skip
    with History(tmp_path / "h.sqlite") as h:
        assert h.add_alerts([alert], deliver=True) == ["k1"]
        assert h.add_alerts([alert], deliver=True) == []  # recorded once
        h.mark_failed(["k1"], "could not reach the receiver")
        [row] = h.alerts(delivery="pending")
        assert (row.attempts, row.last_error, row.payload) == (
            1,
            "could not reach the receiver",
            {"target": "flask"},
        )
        h.mark_sent(["k1"])
        [row] = h.alerts(fingerprint="fp", series="flask/closed/c64", metric="rps")
        assert (row.delivery, row.attempts, row.last_error) == ("sent", 2, "")
        assert row.delivered_at
        assert h.add_alerts([NewAlert("k2", "within", "s", "p50", "fp", "r", "d")],
                            deliver=False) == ["k2"]  # fmt: skip
        assert [a.key for a in h.alerts(delivery="none")] == ["k2"]


# --- several processes --------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from datetime import date
    from analysis.history import History
    from benchmarks.synthetic import (store_nights, synthetic_header, synthetic_machine,
                                    synthetic_record)

    mode, path = sys.argv[1], sys.argv[2]
    if mode == "many":
        tag = sys.argv[3]
        series = {f"t{i}": [1000.0 + i] * 30 for i in range(10)}
        with History(path) as h:
            print("ready", flush=True)
            sys.stdin.readline()  # both start writing when the test says so
            t0 = time.time()
            store_nights(h, series, first_night=date(2026, 1, 1),
                         machine=synthetic_machine(tag), trials=5, tag=tag)
            print(t0, time.time(), flush=True)
        sys.exit(0)

    m = synthetic_machine()
    started = "2026-03-01T02:00:00+00:00"

    def records():
        for i in range(1, 60):
            if i == 20:
                print("half-way", flush=True)
                if mode == "die":
                    os._exit(3)  # dies inside the transaction: no cleanup at all
                sys.stdin.readline()  # mode "pause": wait for the test to look
            yield synthetic_record("r1", f"t{i}", 1000.0, started_at=started, machine=m)

    with History(path) as h:
        h.store(synthetic_header("r1", started, m), records())
    print("stored", flush=True)
    """
)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.child_process  # SQLite writers in processes of their own
def test_two_processes_writing_at_once(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    procs = [spawn("many", str(path), tag) for tag in ("a", "b")]
    spans = []
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            spans.append([float(v) for v in out.split()])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1, "the two writers did not overlap"
    assert count(path, "runs") == 60
    assert count(path, "trials") == 60 * 10 * 5
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_run = {n for (n,) in db.execute("SELECT COUNT(*) FROM trials GROUP BY run_id")}
    assert per_run == {50}


@pytest.mark.child_process  # SQLite writers in processes of their own
def test_a_writer_that_dies_mid_transaction_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    p = spawn("die", str(path))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert "half-way" in out and "stored" not in out
    assert (count(path, "runs"), count(path, "trials"), count(path, "machines")) == (0, 0, 0)
    with History(path, timeout=5) as h:  # the lock is gone: a new write goes through
        store_nights(h, {"flask": [1.0]}, first_night=date(2026, 3, 1))
        assert len(h.runs()) == 1


@pytest.mark.child_process  # SQLite writers in processes of their own
def test_a_reader_sees_nothing_of_a_write_half_way(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    p = spawn("pause", str(path))
    try:
        assert p.stdout is not None and p.stdin is not None
        assert p.stdout.readline().strip() == "half-way"
        with History(path) as h:  # reading does not wait for the writer (WAL)
            started = time.monotonic()
            assert h.runs() == []
            assert h.series(str(synthetic_machine()["fingerprint"])) == {}
            assert time.monotonic() - started < 2
        p.stdin.write("go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "stored" in out
    assert (count(path, "runs"), count(path, "trials")) == (1, 59)
