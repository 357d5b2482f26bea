"""CherryPy on its own server (cheroot via cherrypy.quickstart), Jinja2 templates, the
scenarios on psycopg 3 / sqlite3."""
import argparse
import logging
import os
import random
import socket
import sqlite3
import threading
from contextlib import contextmanager

import cherrypy
import jinja2
from cherrypy._cpwsgi_server import CPWSGIServer
from psycopg_pool import ConnectionPool

HERE = os.path.dirname(os.path.abspath(__file__))
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
)


class Database:
    """The scenario database from FWBENCH_DB_*: a psycopg 3 pool, or one sqlite3 connection
    per cheroot thread. Nothing is opened for hello-only runs (no FWBENCH_DB_KIND)."""

    def __init__(self, env):
        self.kind = env.get("FWBENCH_DB_KIND")
        if self.kind == "postgres":
            self.param = "%s"
            self.pool = ConnectionPool(
                min_size=1,
                max_size=10,
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


class Root:
    def __init__(self, database):
        self.database = database

    @cherrypy.expose
    def hello(self):
        return templates.get_template("hello.html").render(message="Hello world!")

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def json(self):
        return [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def db(self):
        ((rid, number),) = self.database.worlds([random.randint(1, 10000)])
        return {"id": rid, "randomNumber": number}

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def queries(self, n=None):
        rows = self.database.worlds([random.randint(1, 10000) for _ in range(queries_count(n))])
        return [{"id": rid, "randomNumber": number} for rid, number in rows]

    @cherrypy.expose
    def fortunes(self):
        rows = self.database.fortunes()
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda r: r[1])
        return templates.get_template("fortunes.html").render(
            fortunes=[{"id": i, "message": m} for i, m in rows]
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    # production: no autoreload, no checker, no tracebacks, no screen logging (so no access log)
    cherrypy.config.update({
        "environment": "production",
        "server.socket_host": args.host,
        "server.socket_port": args.port,
    })
    # keep errors on stderr
    cherrypy.log.error_log.addHandler(logging.StreamHandler())

    if args.workers > 1:
        # CherryPy serves one process; for more, pre-fork over one listening socket
        # handed to cheroot the way systemd socket activation does (fd 3 + LISTEN_PID).
        sock = socket.create_server((args.host, args.port), backlog=1024)
        os.dup2(sock.fileno(), 3)
        os.environ["LISTEN_PID"] = str(os.getpid())
        for _ in range(args.workers - 1):
            if os.fork() == 0:
                break

    # cheroot keeps at most 10 idle keep-alive connections and answers the rest with
    # "Connection: close"; CherryPy has no config key for it, so hand it the server instance.
    server = CPWSGIServer(cherrypy.server)
    server.keep_alive_conn_limit = None
    cherrypy.server.instance = server

    # opened after the fork: each worker process has its own pool / connections
    cherrypy.quickstart(Root(Database(os.environ)))


if __name__ == "__main__":
    main()
