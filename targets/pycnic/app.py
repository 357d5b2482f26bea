"""Pycnic (a JSON-API framework: handlers return dicts and lists). The scenario database through
the sync drivers (stdlib sqlite3, psycopg 3 with psycopg_pool); Pycnic has no template engine,
so fortunes renders a Jinja2 template by hand."""
import os
import random
import sqlite3
import threading
from contextlib import contextmanager

import jinja2
from pycnic.core import WSGI, Handler

HERE = os.path.dirname(os.path.abspath(__file__))
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
)


class Hello(Handler):
    def get(self):
        return {"message": "Hello world!"}


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


class PerThreadHandler(Handler):
    """Pycnic keeps one Handler instance per route and sets its .request and .response before
    each call; under gunicorn's threads, keep them per thread so concurrent requests do not
    read each other's query string or set each other's headers."""

    _local = threading.local()

    @property
    def request(self):
        return self._local.request

    @request.setter
    def request(self, value):
        self._local.request = value

    @property
    def response(self):
        return self._local.response

    @response.setter
    def response(self, value):
        self._local.response = value


class JsonItems(Handler):
    def get(self):
        return [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]


class SingleQuery(Handler):
    def get(self):
        return db.random_worlds(1)[0]


class MultipleQueries(PerThreadHandler):
    def get(self):
        return db.random_worlds(queries_count(self.request.args.get("n")))


class Fortunes(PerThreadHandler):
    def get(self):
        rows = db.fortunes()
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda r: r[1])
        self.response.set_header("Content-Type", "text/html; charset=utf-8")
        return templates.get_template("fortunes.html").render(
            fortunes=[{"id": i, "message": m} for i, m in rows]
        )


class app(WSGI):
    routes = [
        ("/hello", Hello()),
        ("/json", JsonItems()),
        ("/db", SingleQuery()),
        ("/queries", MultipleQueries()),
        ("/fortunes", Fortunes()),
    ]
