"""The scenario database: created and filled by the suite before a run (SQLite by default).

The data is :mod:`loadgen.records.scenarios`' (``world`` and ``fortune``). :func:`create_sqlite`
writes a fresh file (replaced atomically: a half-filled database is never used);
:func:`sqlite_env` is what a target's server gets in its environment to find it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from loadgen.records.scenarios import FORTUNES, WORLD_ROWS, world_number

SCHEMA = (
    "CREATE TABLE world (id INTEGER PRIMARY KEY, randomnumber INTEGER NOT NULL)",
    "CREATE TABLE fortune (id INTEGER PRIMARY KEY, message TEXT NOT NULL)",
)


def create_sqlite(path: Path) -> Path:
    """A fresh SQLite database at ``path`` with both tables filled; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as db:
        for stmt in SCHEMA:
            db.execute(stmt)
        db.executemany(
            "INSERT INTO world (id, randomnumber) VALUES (?, ?)",
            ((i, world_number(i)) for i in range(1, WORLD_ROWS + 1)),
        )
        db.executemany("INSERT INTO fortune (id, message) VALUES (?, ?)", FORTUNES)
    db.close()
    os.replace(tmp, path)
    return path


def sqlite_env(path: Path) -> dict[str, str]:
    """The environment variables a server reads to find a SQLite scenario database."""
    p = path.resolve()
    return {
        "FWBENCH_DB_KIND": "sqlite",
        "FWBENCH_DB_URL": f"sqlite:///{p}",
        "FWBENCH_DB_PATH": str(p),
    }
