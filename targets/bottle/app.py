import json
import os
import random
import sqlite3
import threading
from contextlib import contextmanager

import bottle
from psycopg_pool import ConnectionPool

bottle.TEMPLATE_PATH.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))

app = bottle.Bottle()


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


def json_list(items):
    # Bottle turns a returned dict into JSON itself; a list is serialised here
    bottle.response.content_type = "application/json"
    return json.dumps(items)


@app.route("/hello/")
@bottle.view("hello")
def hello():
    return {"message": "Hello world!"}


@app.route("/json/")
def json_items():
    return json_list(
        [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]
    )


@app.route("/db/")
def single_query():
    ((rid, number),) = db.worlds([random.randint(1, 10000)])
    return {"id": rid, "randomNumber": number}


@app.route("/queries/")
def multiple_queries():
    n = queries_count(bottle.request.query.get("n"))
    rows = db.worlds([random.randint(1, 10000) for _ in range(n)])
    return json_list([{"id": rid, "randomNumber": number} for rid, number in rows])


@app.route("/fortunes/")
@bottle.view("fortunes")
def fortunes():
    rows = db.fortunes()
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda r: r[1])
    return {"fortunes": rows}
