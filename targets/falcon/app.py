import os
import random
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

import falcon
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


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


class HelloResource:
    def on_get(self, req, resp):
        resp.media = {"message": "Hello world!"}


class JsonResource:
    def on_get(self, req, resp):
        resp.media = [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]


class DbResource:
    def __init__(self, db):
        self.db = db

    def on_get(self, req, resp):
        ((rid, number),) = self.db.worlds([random.randint(1, 10000)])
        resp.media = {"id": rid, "randomNumber": number}


class QueriesResource:
    def __init__(self, db):
        self.db = db

    def on_get(self, req, resp):
        n = queries_count(req.get_param("n"))
        rows = self.db.worlds([random.randint(1, 10000) for _ in range(n)])
        resp.media = [{"id": rid, "randomNumber": number} for rid, number in rows]


class FortunesResource:
    def __init__(self, db):
        self.db = db

    def on_get(self, req, resp):
        rows = self.db.fortunes()
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda r: r[1])
        resp.content_type = falcon.MEDIA_HTML
        resp.text = templates.get_template("fortunes.html").render(
            fortunes=[{"id": i, "message": m} for i, m in rows]
        )


db = Database(os.environ)
app = falcon.App()
app.req_options.strip_url_path_trailing_slash = True
app.add_route("/hello", HelloResource())
app.add_route("/json", JsonResource())
app.add_route("/db", DbResource(db))
app.add_route("/queries", QueriesResource(db))
app.add_route("/fortunes", FortunesResource(db))
