import os
import random
import sqlite3
import threading
from contextlib import contextmanager

from watson.framework import applications, controllers
from watson.framework.views.decorators import view

HERE = os.path.dirname(os.path.abspath(__file__))


class Hello(controllers.Rest):
    def GET(self):
        return {"message": "Hello world!"}


# The scenario database: Watson has no database layer of its own (watson-db is unmaintained),
# so the sync drivers: stdlib sqlite3 or psycopg 3 with psycopg_pool.
class Database:
    """The scenario database (FWBENCH_DB_*): psycopg's ConnectionPool for PostgreSQL, one
    sqlite3 connection per thread for SQLite; made at first use (after the server forks)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pool = None
        self._local = threading.local()

    @contextmanager
    def connection(self):
        """(connection, placeholder) for one request."""
        env = os.environ
        if env.get("FWBENCH_DB_KIND") == "postgres":
            with self._lock:
                if self._pool is None:
                    from psycopg.conninfo import make_conninfo
                    from psycopg_pool import ConnectionPool

                    conninfo = make_conninfo(
                        host=env["FWBENCH_DB_HOST"],
                        port=env["FWBENCH_DB_PORT"],
                        dbname=env["FWBENCH_DB_NAME"],
                        user=env["FWBENCH_DB_USER"],
                        password=env.get("FWBENCH_DB_PASSWORD", ""),
                    )
                    self._pool = ConnectionPool(
                        conninfo, min_size=8, max_size=8, kwargs={"autocommit": True}
                    )
            with self._pool.connection() as conn:
                yield conn, "%s"
        else:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = sqlite3.connect(
                    env["FWBENCH_DB_PATH"], isolation_level=None
                )
            yield conn, "?"

    def random_worlds(self, n):
        with self.connection() as (conn, ph):
            sql = f"SELECT id, randomnumber FROM world WHERE id = {ph}"
            rows = [conn.execute(sql, (random.randint(1, 10000),)).fetchone() for _ in range(n)]
        return [{"id": i, "randomNumber": number} for i, number in rows]

    def fortunes(self):
        with self.connection() as (conn, _):
            return [tuple(r) for r in conn.execute("SELECT id, message FROM fortune").fetchall()]


db = Database()


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


class JsonItems(controllers.Rest):
    @view(format="json")
    def GET(self):
        return [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]


class SingleQuery(controllers.Rest):
    @view(format="json")
    def GET(self):
        return db.random_worlds(1)[0]


class MultipleQueries(controllers.Rest):
    @view(format="json")
    def GET(self):
        return db.random_worlds(queries_count(self.request.get.get("n")))


class Fortunes(controllers.Rest):
    def GET(self):
        rows = db.fortunes()
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda r: r[1])
        self.response.headers.add("Content-Type", "text/html; charset=utf-8")
        return {"fortunes": [{"id": i, "message": m} for i, m in rows]}


def route(path, controller):
    return {"path": path, "options": {"controller": controller}}


app = applications.Http({
    "routes": {
        "hello": {
            "path": "/hello[/]",
            "options": {"controller": "app.Hello"},
        },
        "json": route("/json[/]", "app.JsonItems"),
        "db": route("/db[/]", "app.SingleQuery"),
        "queries": route("/queries[/]", "app.MultipleQueries"),
        "fortunes": route("/fortunes[/]", "app.Fortunes"),
    },
    # Watson's container keeps one controller instance (singleton) unless told otherwise;
    # the controllers that read the request are made per request under gunicorn's threads.
    "dependencies": {
        "definitions": {
            "app.MultipleQueries": {"item": "app.MultipleQueries", "type": "prototype"},
            "app.Fortunes": {"item": "app.Fortunes", "type": "prototype"},
        },
    },
    "views": {
        "renderers": {
            "jinja2": {"config": {"paths": [os.path.join(HERE, "views")]}},
        },
    },
})
