"""The history database's schema: the ordered migrations :mod:`analysis.history` applies.

Each migration raises ``PRAGMA user_version`` by one, in its own transaction. Never edit a
migration that has shipped: add the next one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, trials, machines and alert states",
        (
            """CREATE TABLE machines (
                fingerprint TEXT PRIMARY KEY,
                info TEXT NOT NULL,
                first_seen TEXT NOT NULL
            )""",
            """CREATE TABLE runs (
                run_id TEXT PRIMARY KEY,
                started_at TEXT NOT NULL,
                night TEXT NOT NULL,
                finished_at TEXT,
                profile TEXT NOT NULL,
                fingerprint TEXT NOT NULL REFERENCES machines(fingerprint),
                suite_commit TEXT NOT NULL,
                machine_warnings TEXT NOT NULL,
                header TEXT NOT NULL,
                stored_at TEXT NOT NULL
            )""",
            "CREATE INDEX runs_by_machine ON runs(fingerprint, started_at)",
            """CREATE TABLE trials (
                run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
                trial_id TEXT NOT NULL,
                target TEXT NOT NULL,
                load TEXT NOT NULL,
                connections INTEGER NOT NULL,
                trial INTEGER NOT NULL,
                status TEXT NOT NULL,
                rps REAL,
                p50_ms REAL,
                p99_ms REAL,
                errors INTEGER NOT NULL,
                client_saturated INTEGER NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (run_id, trial_id)
            )""",
            """CREATE TABLE alerts (
                alert_key TEXT PRIMARY KEY,
                gate TEXT NOT NULL CHECK (gate IN ('within', 'history')),
                series TEXT NOT NULL,
                metric TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                change_run_id TEXT NOT NULL,
                change_date TEXT NOT NULL,
                first_seen TEXT NOT NULL,
                payload TEXT NOT NULL,
                delivery TEXT NOT NULL CHECK (delivery IN ('pending', 'sent', 'none')),
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT NOT NULL DEFAULT '',
                delivered_at TEXT
            )""",
            "CREATE INDEX alerts_by_series ON alerts(fingerprint, series, metric)",
        ),
    ),
    Migration(
        2,
        "cost records: instructions per request under callgrind (fwbench.cost/1)",
        (
            """CREATE TABLE costs (
                run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
                target TEXT NOT NULL,
                status TEXT NOT NULL,
                instructions_per_request REAL,
                spread_pct REAL,
                windows INTEGER NOT NULL,
                requests_per_window INTEGER NOT NULL,
                record TEXT NOT NULL,
                PRIMARY KEY (run_id, target)
            )""",
        ),
    ),
    Migration(
        3,
        "package sets and locks: what each series was built from (channels, package diffs)",
        (
            """CREATE TABLE packages (
                run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
                series TEXT NOT NULL,
                name TEXT NOT NULL,
                version TEXT NOT NULL,
                PRIMARY KEY (run_id, series, name)
            )""",
            """CREATE TABLE locks (
                run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
                series TEXT NOT NULL,
                lock TEXT NOT NULL,
                PRIMARY KEY (run_id, series)
            )""",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
