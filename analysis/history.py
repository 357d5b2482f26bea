"""The history store: one embedded SQLite database of runs, trials, machines and alert states.

Theory of operation
-------------------
- **One file** (``paths.history``, default ``reports/history.sqlite``), opened in WAL mode:
  readers never block the writer and a crash never leaves a torn page.
- **Every write is one transaction** begun with ``BEGIN IMMEDIATE``: the write lock is taken
  up front, so two processes storing at once queue on the busy timeout instead of failing
  half-way, and a process that dies inside a transaction leaves nothing of it visible (SQLite
  rolls the WAL back on the next open). A run is stored whole or not at all.
- **Schema version** in ``PRAGMA user_version``, raised by the ordered :data:`MIGRATIONS`, each
  applied in its own transaction. A database newer than this code is refused, not guessed at.
- **What is kept**: a row per run (header, machine fingerprint, night), a row per trial (the
  figures the gates read, plus the record as JSON without its latency histograms, which stay
  in the run directory), a row per machine fingerprint, and a row per alert with its delivery
  state (see :mod:`analysis.alerts`). Trials of an interrupted run are never stored.
- **What each series was built from** (schema version 3): the installed packages the verifier
  reported for every series of a run (``packages``: name, version; a target on the latest
  channel is its own series ``<target>@latest``), and the lock text of each series from the
  run folder's ``locks/<series>.txt`` (``locks``), so any night can be rebuilt and two nights
  compared package by package (:mod:`analysis.explain`).

Nightly points: the history gate and the trend charts read one point per run and series
(target, load setting, connections): the median over the run's good trials of requests/s,
p50 and p99 latency (:meth:`History.series`), only from runs of one machine fingerprint.
Cost records (``cost.jsonl``, schema version 2) give one point per run and target: the
instructions per request (:meth:`History.cost_series`).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analysis.migrations import MIGRATIONS as MIGRATIONS  # re-exported
from analysis.migrations import SCHEMA_VERSION as SCHEMA_VERSION
from analysis.migrations import Migration as Migration
from loadgen.records import CostRecord, TrialRecord, read_records, run_costs
from loadgen.records.packages import package_map, parse_lock, run_locks

BUSY_TIMEOUT_S = 60.0
"""How long a writer waits for another one to finish before giving up."""


class HistoryError(RuntimeError):
    """The history database cannot be used; the message says why."""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    started_at: str
    night: str
    profile: str
    fingerprint: str
    trials: int
    machine_warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class NightPoint:
    """One run's figures for one series: medians over its good trials."""

    run_id: str
    night: str
    started_at: str
    rps: float
    p50: float | None
    p99: float | None
    trials: int

    def value(self, metric: str) -> float | None:
        v: float | None = getattr(self, metric)
        return v


SeriesKey = tuple[str, str, int]  # (target, load, connections)


@dataclass(frozen=True)
class CostPoint:
    """One run's instructions per request for one target (median of its windows)."""

    run_id: str
    night: str
    started_at: str
    cost: float
    spread_pct: float

    def value(self, metric: str) -> float | None:
        """The figure of ``metric``: only ``cost`` (instructions per request) is one."""
        return self.cost if metric == "cost" else None


@dataclass(frozen=True)
class AlertRow:
    key: str
    gate: str
    series: str
    metric: str
    fingerprint: str
    change_run_id: str
    change_date: str
    first_seen: str
    payload: dict[str, Any]
    delivery: str  # pending | sent | none
    attempts: int
    last_error: str
    delivered_at: str | None


@dataclass(frozen=True)
class NewAlert:
    """An alert to record: what identifies it, and what to tell (a finding as a dict)."""

    key: str
    gate: str
    series: str
    metric: str
    fingerprint: str
    change_run_id: str
    change_date: str
    payload: Mapping[str, Any] = field(default_factory=dict)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def night_of(started_at: str) -> str:
    """The night a run belongs to: the UTC date it started."""
    return started_at[:10]


class History:
    """An open history database. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        path: Path | str,
        *,
        timeout: float = BUSY_TIMEOUT_S,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot open: {exc}") from None
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise HistoryError(f"{self.path}: cannot use WAL mode (got {mode})")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            migrate(self.conn, migrations, str(self.path))
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise HistoryError(f"{self.path}: {exc}") from None
        except HistoryError:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls everything back.

        SQLite's own errors (a lock held past the busy timeout, a full disk) come out as
        :class:`HistoryError`.
        """
        try:
            with _transaction(self.conn):
                yield self.conn
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: {exc}") from exc

    @property
    def version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    # -- runs ----------------------------------------------------------------------------------

    def store_run(self, run_dir: Path, *, profile: str = "nightly") -> RunRow:
        """Store a finished run directory (run.json + trials.jsonl) in one transaction."""
        header_path = run_dir / "run.json"
        try:
            header = json.loads(header_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HistoryError(f"{header_path}: cannot read: {exc}") from None
        return self.store(
            header,
            read_records(run_dir / "trials.jsonl"),
            profile=profile,
            costs=run_costs(run_dir),
            locks=run_locks(run_dir),
        )

    def store(
        self,
        header: Mapping[str, Any],
        records: Iterable[TrialRecord],
        *,
        profile: str = "nightly",
        costs: Iterable[CostRecord] = (),
        locks: Mapping[str, str] | None = None,
    ) -> RunRow:
        """Store one run: its machine, header, every trial, the package set of every series
        (the verdicts' ``packages``) and the lock of each (``locks``: series -> lock text),
        all or nothing.

        Storing a run id again replaces it (its trials, packages and locks are rewritten). An
        interrupted or unfinished run is refused: a night with half its trials would read as
        a drop.
        """
        run_id = str(header.get("run_id") or "")
        if not run_id:
            raise HistoryError("run header has no run_id")
        if header.get("interrupted") or not header.get("finished_at"):
            raise HistoryError(f"run {run_id} did not finish; it is not stored")
        started = str(header.get("started_at") or "")
        if not started:
            raise HistoryError(f"run {run_id} has no started_at")
        machine = dict(header.get("machine") or {})
        fp = str(machine.get("fingerprint") or "")
        if not fp:
            raise HistoryError(f"run {run_id} has no machine fingerprint")
        warnings = list(header.get("machine_warnings") or [])
        slim_header = {k: v for k, v in header.items() if k not in ("machine",)}
        n = 0
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO machines (fingerprint, info, first_seen) VALUES (?, ?, ?)",
                (fp, json.dumps(machine, sort_keys=True), now_iso()),
            )
            db.execute("DELETE FROM trials WHERE run_id = ?", (run_id,))
            for table in ("costs", "packages", "locks", "runs"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute(
                "INSERT INTO runs (run_id, started_at, night, finished_at, profile, fingerprint,"
                " suite_commit, machine_warnings, header, stored_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    started,
                    night_of(started),
                    header.get("finished_at"),
                    profile,
                    fp,
                    str(machine.get("suite_commit") or ""),
                    json.dumps(warnings),
                    json.dumps(slim_header, sort_keys=True),
                    now_iso(),
                ),
            )
            for rec in records:
                if rec.run_id != run_id:
                    raise HistoryError(f"trial {rec.trial_id} belongs to run {rec.run_id}")
                db.execute(
                    "INSERT INTO trials (run_id, trial_id, target, load, connections, trial,"
                    " status, rps, p50_ms, p99_ms, errors, client_saturated, record)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _trial_row(rec),
                )
                n += 1
            for cost in costs:
                if cost.run_id != run_id:
                    raise HistoryError(f"cost of {cost.target} belongs to run {cost.run_id}")
                db.execute(
                    "INSERT OR REPLACE INTO costs (run_id, target, status,"
                    " instructions_per_request, spread_pct, windows, requests_per_window, record)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        cost.target,
                        cost.status,
                        cost.instructions_per_request,
                        cost.spread_pct,
                        len(cost.windows),
                        cost.requests_per_window,
                        json.dumps(cost.to_dict(), sort_keys=True),
                    ),
                )
            for series, pkgs in verdict_packages(header).items():
                db.executemany(
                    "INSERT OR REPLACE INTO packages (run_id, series, name, version)"
                    " VALUES (?, ?, ?, ?)",
                    [(run_id, series, name, version) for name, version in pkgs.items()],
                )
            db.executemany(
                "INSERT OR REPLACE INTO locks (run_id, series, lock) VALUES (?, ?, ?)",
                [(run_id, series, text) for series, text in sorted((locks or {}).items())],
            )
        return RunRow(run_id, started, night_of(started), profile, fp, n, tuple(warnings))

    def packages(self, run_id: str, series: str) -> dict[str, str]:
        """The package set (normalised name -> version) ``series`` had in run ``run_id``: the
        verifier's list, else the pins of its stored lock; {} when neither was stored."""
        rows = self.conn.execute(
            "SELECT name, version FROM packages WHERE run_id = ? AND series = ? ORDER BY name",
            (run_id, series),
        ).fetchall()
        if rows:
            return {str(n): str(v) for n, v in rows}
        text = self.lock(run_id, series)
        return parse_lock(text) if text else {}

    def lock(self, run_id: str, series: str) -> str | None:
        """The lock text ``series`` was built from in run ``run_id`` (None: not stored)."""
        row = self.conn.execute(
            "SELECT lock FROM locks WHERE run_id = ? AND series = ?", (run_id, series)
        ).fetchone()
        return str(row[0]) if row else None

    def run_facts(self, run_id: str) -> dict[str, str]:
        """What else a night was made of: ``suite_commit``, ``fingerprint``, ``night``,
        ``started_at`` ({} for a run not stored)."""
        row = self.conn.execute(
            "SELECT suite_commit, fingerprint, night, started_at FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return {}
        keys = ("suite_commit", "fingerprint", "night", "started_at")
        return {k: str(v or "") for k, v in zip(keys, row, strict=True)}

    def runs(self, fingerprint: str | None = None) -> list[RunRow]:
        """Stored runs, oldest first (of one machine when ``fingerprint`` is given)."""
        sql = (
            "SELECT r.run_id, r.started_at, r.night, r.profile, r.fingerprint,"
            " (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id), r.machine_warnings"
            " FROM runs r"
        )
        args: tuple[Any, ...] = ()
        if fingerprint is not None:
            sql += " WHERE r.fingerprint = ?"
            args = (fingerprint,)
        sql += " ORDER BY r.started_at, r.run_id"
        return [
            RunRow(a, b, c, d, e, int(f), tuple(json.loads(g)))
            for a, b, c, d, e, f, g in self.conn.execute(sql, args)
        ]

    def latest_run(self) -> RunRow | None:
        runs = self.runs()
        return runs[-1] if runs else None

    def fingerprints(self) -> dict[str, int]:
        """Machine fingerprint -> number of runs stored from it."""
        rows = self.conn.execute("SELECT fingerprint, COUNT(*) FROM runs GROUP BY fingerprint")
        return {fp: int(n) for fp, n in rows}

    def machine(self, fingerprint: str) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT info FROM machines WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def series(self, fingerprint: str) -> dict[SeriesKey, list[NightPoint]]:
        """One point per run for every (target, load, connections) of one machine, oldest first.

        A trial over HTTP/2 is a series of its own: its load is named ``<load> (h2c)`` (the
        protocol from the record; records before protocols existed are HTTP/1.1), so a run
        with ``--protocol`` never joins the HTTP/1.1 series of its load setting.

        A point is the median over the run's good trials; a run where a series has no good
        trial has no point in it (the gap is visible as a missing night).
        """
        rows = self.conn.execute(
            "SELECT r.run_id, r.night, r.started_at, t.target, t.load, t.connections,"
            " t.rps, t.p50_ms, t.p99_ms,"
            " COALESCE(json_extract(t.record, '$.protocol'), 'http1')"
            " FROM trials t JOIN runs r ON r.run_id = t.run_id"
            " WHERE r.fingerprint = ? AND t.status = 'ok'"
            " ORDER BY r.started_at, r.run_id",
            (fingerprint,),
        )
        grouped: dict[SeriesKey, dict[str, list[tuple[str, str, float, Any, Any]]]] = {}
        for run_id, night, started, target, load, conns, rps, p50, p99, protocol in rows:
            name = str(load) if protocol == "http1" else f"{load} ({protocol})"
            key = (str(target), name, int(conns))
            grouped.setdefault(key, {}).setdefault(run_id, []).append(
                (night, started, float(rps), p50, p99)
            )
        out: dict[SeriesKey, list[NightPoint]] = {}
        for key, by_run in grouped.items():
            points = []
            for run_id, trials in by_run.items():  # insertion order is run order
                night, started = trials[0][0], trials[0][1]
                points.append(
                    NightPoint(
                        run_id=run_id,
                        night=night,
                        started_at=started,
                        rps=statistics.median(t[2] for t in trials),
                        p50=_median([t[3] for t in trials]),
                        p99=_median([t[4] for t in trials]),
                        trials=len(trials),
                    )
                )
            out[key] = points
        return dict(sorted(out.items()))

    def cost_series(self, fingerprint: str) -> dict[str, list[CostPoint]]:
        """Instructions per request, one point per run, for every target of one machine."""
        rows = self.conn.execute(
            "SELECT r.run_id, r.night, r.started_at, c.target, c.instructions_per_request,"
            " c.spread_pct FROM costs c JOIN runs r ON r.run_id = c.run_id"
            " WHERE r.fingerprint = ? AND c.status = 'ok'"
            " ORDER BY r.started_at, r.run_id",
            (fingerprint,),
        )
        out: dict[str, list[CostPoint]] = {}
        for run_id, night, started, target, ipr, spread in rows:
            out.setdefault(str(target), []).append(
                CostPoint(str(run_id), str(night), str(started), float(ipr), float(spread or 0))
            )
        return dict(sorted(out.items()))

    # -- alert states --------------------------------------------------------------------------

    def alerts(
        self,
        *,
        fingerprint: str | None = None,
        series: str | None = None,
        metric: str | None = None,
        delivery: str | None = None,
    ) -> list[AlertRow]:
        clauses, args = [], []
        for col, val in (
            ("fingerprint", fingerprint),
            ("series", series),
            ("metric", metric),
            ("delivery", delivery),
        ):
            if val is not None:
                clauses.append(f"{col} = ?")
                args.append(val)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.conn.execute(
            "SELECT alert_key, gate, series, metric, fingerprint, change_run_id, change_date,"
            f" first_seen, payload, delivery, attempts, last_error, delivered_at FROM alerts"
            f"{where} ORDER BY first_seen, alert_key",
            args,
        )
        return [
            AlertRow(a, b, c, d, e, f, g, h, json.loads(i), j, int(k), lerr, m)
            for a, b, c, d, e, f, g, h, i, j, k, lerr, m in rows
        ]

    def add_alerts(self, alerts: Sequence[NewAlert], *, deliver: bool) -> list[str]:
        """Record alerts not recorded yet; returns the keys that were new.

        ``deliver``: new alerts wait for the webhook (``pending``); otherwise ``none``.
        """
        new: list[str] = []
        state = "pending" if deliver else "none"
        with self.transaction() as db:
            for a in alerts:
                cur = db.execute(
                    "INSERT OR IGNORE INTO alerts (alert_key, gate, series, metric, fingerprint,"
                    " change_run_id, change_date, first_seen, payload, delivery)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        a.key,
                        a.gate,
                        a.series,
                        a.metric,
                        a.fingerprint,
                        a.change_run_id,
                        a.change_date,
                        now_iso(),
                        json.dumps(dict(a.payload), sort_keys=True),
                        state,
                    ),
                )
                if cur.rowcount:
                    new.append(a.key)
        return new

    def mark_sent(self, keys: Sequence[str]) -> None:
        when = now_iso()
        with self.transaction() as db:
            db.executemany(
                "UPDATE alerts SET delivery = 'sent', attempts = attempts + 1, last_error = '',"
                " delivered_at = ? WHERE alert_key = ?",
                [(when, k) for k in keys],
            )

    def mark_failed(self, keys: Sequence[str], error: str) -> None:
        with self.transaction() as db:
            db.executemany(
                "UPDATE alerts SET attempts = attempts + 1, last_error = ? WHERE alert_key = ?",
                [(error[:500], k) for k in keys],
            )


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], name: str) -> int:
    """Bring the schema up to the last migration; returns the version reached."""
    latest = migrations[-1].version if migrations else 0
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > latest:
        raise HistoryError(
            f"{name}: history schema version {current} is newer than this fwbench knows "
            f"({latest}); use a newer fwbench or another history file"
        )
    for m in migrations:
        if m.version <= current:
            continue
        with _transaction(conn):
            # Another process may have migrated while we waited for the lock: read again.
            now = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if m.version <= now:
                continue
            for statement in m.statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(m.version)}")
        current = m.version
    return current


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def verdict_packages(header: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Series -> package set, from the verifier's verdicts of a run header (each verdict's
    ``target`` is its series: ``flask``, ``flask@latest``)."""
    out: dict[str, dict[str, str]] = {}
    for v in header.get("verdicts") or ():
        if isinstance(v, Mapping) and v.get("target") and v.get("packages"):
            out[str(v["target"])] = package_map(v["packages"])
    return out


def _median(values: Sequence[Any]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return statistics.median(known) if known else None


def _trial_row(rec: TrialRecord) -> tuple[Any, ...]:
    lat = rec.latency_ms
    record = rec.to_dict()
    record.pop("hist", None)  # the histograms stay in the run directory
    record.pop("hist_uncorrected", None)
    return (
        rec.run_id,
        rec.trial_id,
        rec.target,
        rec.load,
        rec.connections,
        rec.trial,
        rec.status,
        rec.rps,
        lat.p50 if lat else None,
        lat.p99 if lat else None,
        rec.error_count,
        int(rec.client_saturated),
        json.dumps(record, sort_keys=True),
    )
