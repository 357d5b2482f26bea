"""The verifier's checks of the scenarios beyond hello, on the server the hello checks started.

Every scenario a target declares (``[scenarios]`` in target.toml) gets a :class:`ScenarioVerdict`
(``ok`` and the first failure's reason); the ones it declares not applicable (``[not_applicable]``)
get ``ok=None`` and the target's reason. A target that fails one scenario is failed for that
scenario only: its hello verdict and its other scenarios stand.

What is checked (what a right answer is: :mod:`loadgen.scenario_checks`), all on one keep-alive
connection:

- every answer: status 200, the scenario's Content-Type, the exact shape and types;
- ``json``: the contract's 100 objects;
- ``db``: one row whose number is the table's; then the verifier adds 1 to every ``world`` row
  and the next answer must show the new number (no caching); three answers must not all name
  the same id (the id is random);
- ``queries``: ``?n=`` 1, 20, 0, foo and 501 give 1, 20, 1, 1 and 500 rows, each the table's,
  with varied ids; then, after the same update, ``?n=501`` again (a cache by URL or by id
  shows an old number);
- ``fortunes``: every row plus the request-time one, sorted by message, the ``<script>`` row
  escaped, the non-ASCII one intact, the body UTF-8.

The updates are undone at the end (the database a run passes in is left as it was).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen.db import Database, sqlite_env
from loadgen.records.scenarios import DB_SCENARIOS, WS_SCENARIOS, clamp_queries, world_number
from loadgen.scenario_checks import answer_problem
from loadgen.targets import Target

QUERIES_ASKED = ("1", "20", "0", "foo", "501")
"""The ``?n=`` values each ``queries`` path is asked (clamped: 1, 20, 1, 1, 500)."""
RANDOM_IDS_FROM = 20  # a list of this many rows or more must hold at least half distinct ids


@dataclass(frozen=True)
class ScenarioVerdict:
    """``ok``: True passed, False failed (``reason`` says why), None not applicable (``reason``:
    the target's own why)."""

    ok: bool | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason}


@dataclass(frozen=True)
class ScenarioDatabase:
    """The database a target's server is started with: the environment variables it reads
    (:mod:`loadgen.records.scenarios`) and how the verifier adds a number to every ``world`` row
    (its no-caching check)."""

    kind: str
    env: tuple[tuple[str, str], ...]
    add_to_world: Callable[[int], None]


def sqlite_database(path: Path) -> ScenarioDatabase:
    """A filled SQLite file (:func:`loadgen.db.create_sqlite`) as a :class:`ScenarioDatabase`."""

    def add(delta: int) -> None:
        with contextlib.closing(sqlite3.connect(path, timeout=10.0)) as db, db:
            db.execute("UPDATE world SET randomnumber = randomnumber + ?", (delta,))

    return ScenarioDatabase("sqlite", tuple(sorted(sqlite_env(path).items())), add)


def needs_database(target: Target) -> bool:
    """Whether the target declares a scenario that reads the database."""
    return any(name in DB_SCENARIOS for name, _ in target.scenarios)


class _Failed(Exception):
    pass


class _Session:
    """One keep-alive connection (reopened by http.client after a ``Connection: close``) and
    the number the verifier has added to every ``world`` row so far."""

    def __init__(self, host: str, port: int, database: ScenarioDatabase | None) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=10.0)
        self.database = database
        self.offset = 0

    def get(self, scenario: str, url: str, *, n: int = 1) -> Any:
        """The answer to ``GET url``, checked; the parsed JSON (None for fortunes)."""
        headers = {"Accept": "*/*", "User-Agent": "fwbench-verify"}
        for attempt in (1, 2):
            reused = self.conn.sock is not None
            try:
                self.conn.request("GET", url, headers=headers)
                resp = self.conn.getresponse()
                body = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt == 1 and reused:  # a server that closed after its last answer
                    continue  # without saying so (Growler cannot keep alive): open anew
                raise
            break
        if resp.status != 200:
            raise _Failed(f"GET {url}: status {resp.status}, expected 200")
        ctype = resp.getheader("content-type") or ""
        if not ctype:
            raise _Failed(f"GET {url}: no Content-Type")
        problem = answer_problem(scenario, body, ctype, n=n, offset=self.offset)
        if problem:
            stale = self._stale(scenario, body)
            raise _Failed(f"GET {url}: {stale or problem}")
        return None if scenario == "fortunes" else json.loads(body)

    def _stale(self, scenario: str, body: bytes) -> str | None:
        """After an update, a row showing a number from before it: the caching reason."""
        if not self.offset or scenario not in ("db", "queries"):
            return None
        with contextlib.suppress(ValueError):
            obj = json.loads(body)
            for row in obj if isinstance(obj, list) else [obj]:
                rid, num = row.get("id"), row.get("randomNumber")
                if isinstance(rid, int) and isinstance(num, int):
                    now = world_number(rid) + self.offset
                    if num != now and num - world_number(rid) in range(self.offset):
                        return (
                            f"row {rid}: randomNumber {num}, from before the verifier added 1 "
                            f"to every row (the table holds {now}): a cached answer, not the "
                            "database's"
                        )
        return None

    def add_one(self) -> None:
        if self.database is None:
            raise _Failed("no database to change (the no-caching check)")
        try:
            self.database.add_to_world(1)
        except Exception as exc:  # any driver's error: the check cannot run
            raise _Failed(f"the verifier could not update world: {exc}") from None
        self.offset += 1

    def undo(self) -> None:
        if self.offset and self.database is not None:
            with contextlib.suppress(Exception):
                self.database.add_to_world(-self.offset)
            self.offset = 0

    def close(self) -> None:
        self.conn.close()


def _random_ids(url: str, rows: list[dict[str, int]]) -> None:
    ids = {r["id"] for r in rows}
    if len(rows) >= RANDOM_IDS_FROM and len(ids) < len(rows) // 2:
        raise _Failed(f"GET {url}: {len(ids)} distinct ids in {len(rows)} rows: not random ids")


def _check_json(s: _Session, path: str) -> None:
    s.get("json", path)


def _check_db(s: _Session, path: str) -> None:
    first = s.get("db", path)
    s.add_one()
    after = s.get("db", path)
    third = s.get("db", path)
    if first["id"] == after["id"] == third["id"]:
        raise _Failed(f"GET {path}: id {first['id']} in three answers: not a random id")


def _check_queries(s: _Session, path: str) -> None:
    for raw in QUERIES_ASKED:
        url = f"{path}?n={raw}"
        _random_ids(url, s.get("queries", url, n=clamp_queries(raw)))
    s.add_one()
    url = f"{path}?n={QUERIES_ASKED[-1]}"
    s.get("queries", url, n=clamp_queries(QUERIES_ASKED[-1]))


def _check_fortunes(s: _Session, path: str) -> None:
    s.get("fortunes", path)


CHECKS: dict[str, Callable[[_Session, str], None]] = {
    "json": _check_json,
    "db": _check_db,
    "queries": _check_queries,
    "fortunes": _check_fortunes,
}


@contextlib.contextmanager
def _session(host: str, port: int, database: ScenarioDatabase | None) -> Iterator[_Session]:
    s = _Session(host, port, database)
    try:
        yield s
    finally:
        s.close()
        s.undo()


def verify_scenarios(
    target: Target, host: str, port: int, database: ScenarioDatabase | None
) -> tuple[tuple[str, ScenarioVerdict], ...]:
    """A verdict per declared scenario (in the contract's order), then the not-applicable ones;
    never raises for a bad answer or a dropped connection."""
    out: list[tuple[str, ScenarioVerdict]] = []
    with _session(host, port, database) as s:
        for name, path in target.scenarios:
            if name in WS_SCENARIOS:  # loadgen.verify_protocols, on its own command's server
                out.append((name, ScenarioVerdict(False, "not checked: no WebSocket check ran")))
                continue
            try:
                CHECKS[name](s, path)
            except _Failed as exc:
                out.append((name, ScenarioVerdict(False, str(exc))))
            except (OSError, http.client.HTTPException) as exc:
                s.conn.close()  # the next scenario starts on a fresh connection
                out.append((name, ScenarioVerdict(False, f"{type(exc).__name__}: {exc}")))
            else:
                out.append((name, ScenarioVerdict(True, "")))
    return (*out, *not_applicable(target))


def not_applicable(target: Target) -> tuple[tuple[str, ScenarioVerdict], ...]:
    return tuple((name, ScenarioVerdict(None, why)) for name, why in target.not_applicable)


def unchecked(target: Target, why: str) -> tuple[tuple[str, ScenarioVerdict], ...]:
    """Every declared scenario failed with ``why`` (the server never served), plus the
    not-applicable ones."""
    return (
        *((name, ScenarioVerdict(False, f"not checked: {why}")) for name, _ in target.scenarios),
        *not_applicable(target),
    )


def run_database(db: Database) -> ScenarioDatabase | None:
    """A run's database (:func:`loadgen.db.open_database`) as the verifier's: SQLite's file, or
    the PostgreSQL cluster (the no-caching update through its own connection); None when it
    could not be made (the verifier then makes a SQLite file of its own)."""
    if db.error:
        return None
    if db.cluster is None:
        return sqlite_database(Path(db.env["FWBENCH_DB_PATH"]))
    cluster = db.cluster

    def add_to_world(delta: int) -> None:
        cluster.query(f"UPDATE world SET randomnumber = randomnumber + {int(delta)}")

    return ScenarioDatabase("postgres", tuple(db.env.items()), add_to_world)
