"""The scenario database: created and filled by the suite before a run (SQLite by default).

The data is :mod:`loadgen.records.scenarios`' (``world`` and ``fortune``). :func:`create_sqlite`
writes a fresh file (replaced atomically: a half-filled database is never used);
:func:`sqlite_env` is what a target's server gets in its environment to find it.
:func:`open_database` makes a run's database as ``[database] kind`` says: that file, or a
private PostgreSQL cluster (:mod:`loadgen.pgcluster`); :meth:`Database.stop` ends the cluster.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from loadgen.config import Config
from loadgen.pgcluster import Cluster, ClusterError, start_cluster
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


@dataclass
class Database:
    """A run's scenario database: what servers are told (``env``), what records say
    (``info``: kind, engine, version), and the PostgreSQL cluster to sample and stop (None for
    SQLite, embedded in the target's process)."""

    env: dict[str, str]
    info: dict[str, Any]
    cluster: Cluster | None = None
    error: str = ""  # why it could not be made ("" when it was)

    def stop(self, out: TextIO) -> None:
        """Stop the cluster, if one runs (again: nothing to do)."""
        if self.cluster is None or self.cluster.stopped:
            return
        left = self.cluster.stop()
        if left:  # never expected: killed by PID already
            print(f"fwbench: database processes left after stop: {left}", file=out, flush=True)


def open_database(cfg: Config, folder: Path, out: TextIO) -> Database:
    """The run's database in ``folder`` (``<run>/db``): ``bench.sqlite``, or a PostgreSQL
    cluster pinned to ``cpus.database`` (the server's CPUs when empty). A cluster that cannot
    be made is no exception: :attr:`Database.error` says why (the db trials fail with it)."""
    if cfg.database.kind == "sqlite":
        path = create_sqlite(folder / "bench.sqlite")
        print(f"database: SQLite file {path}", file=out, flush=True)
        info = {"kind": "sqlite", "engine": "SQLite", "version": sqlite3.sqlite_version}
        return Database(sqlite_env(path), info)
    print("database: starting a private PostgreSQL cluster", file=out, flush=True)
    try:
        cluster = start_cluster(
            folder,
            cpus=cfg.cpus.database or cfg.cpus.server,
            bindir=cfg.database.bindir,
            timeout=cfg.database.startup_timeout,
        )
    except ClusterError as exc:
        print(f"database: FAILED: {exc}", file=out, flush=True)
        info = {"kind": "postgres", "engine": "PostgreSQL", "version": ""}
        return Database({}, info, None, str(exc))
    where = f"127.0.0.1:{cluster.port}, data in {cluster.data_dir}"
    print(f"database: PostgreSQL {cluster.version} on {where}", file=out, flush=True)
    return Database(cluster.env(), cluster.info(), cluster)
