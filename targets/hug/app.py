import os
import random
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import hug
import jinja2
from psycopg_pool import ConnectionPool

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
)


class Database:
    """The scenario database from FWBENCH_DB_*: a psycopg 3 pool, or one sqlite3 connection
    per gunicorn thread. Nothing is opened for hello-only runs (no FWBENCH_DB_KIND)."""

    def __init__(self, env):
        self.kind = env.get("FWBENCH_DB_KIND")
        if self.kind == "postgres":
            self.param = "%s"
            self.pool = ConnectionPool(
                min_size=1,
                max_size=8,
                open=True,
                kwargs={
                    "host": env["FWBENCH_DB_HOST"],
                    "port": env["FWBENCH_DB_PORT"],
                    "dbname": env["FWBENCH_DB_NAME"],
                    "user": env["FWBENCH_DB_USER"],
                    "password": env.get("FWBENCH_DB_PASSWORD", ""),
                    "autocommit": True,
                },
            )
        elif self.kind == "sqlite":
            self.param = "?"
            self.path = env["FWBENCH_DB_PATH"]
            self.local = threading.local()

    @contextmanager
    def connection(self):
        if self.kind == "postgres":
            with self.pool.connection() as conn:
                yield conn
        else:
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = sqlite3.connect(self.path)
            yield conn

    def worlds(self, ids):
        sql = f"SELECT id, randomnumber FROM world WHERE id = {self.param}"
        with self.connection() as conn:
            return [conn.execute(sql, (i,)).fetchone() for i in ids]

    def fortunes(self):
        with self.connection() as conn:
            return list(conn.execute("SELECT id, message FROM fortune").fetchall())


db = Database(os.environ)


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@hug.get("/hello")
def hello():
    return {"message": "Hello world!"}


@hug.get("/json")
def json_items():
    return [
        {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
        for i in range(1, 101)
    ]


@hug.get("/db")
def single_query():
    ((rid, number),) = db.worlds([random.randint(1, 10000)])
    return {"id": rid, "randomNumber": number}


@hug.get("/queries")
def multiple_queries(n=None):
    rows = db.worlds([random.randint(1, 10000) for _ in range(queries_count(n))])
    return [{"id": rid, "randomNumber": number} for rid, number in rows]


@hug.get("/fortunes", output=hug.output_format.html)
def fortunes():
    rows = db.fortunes()
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda r: r[1])
    return templates.get_template("fortunes.html").render(
        fortunes=[{"id": i, "message": m} for i, m in rows]
    )
