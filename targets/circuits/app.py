"""circuits.web on its own Server, Jinja2 templates; the scenario database through the sync
drivers (stdlib sqlite3 or psycopg 3), one connection per process (circuits handles every
request on one thread), opened at the first request (after the fork)."""
import argparse
import os
import random
import socket

import jinja2
from circuits import Component
from circuits.net.events import write
from circuits.web import Controller, Server
from circuits.web.controllers import exposeJSON
from circuits.web.websockets import WebSocketsDispatcher

HERE = os.path.dirname(os.path.abspath(__file__))
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=True,
)


_connection = None
_placeholder = "?"


def database():
    """This process's connection to the scenario database (FWBENCH_DB_*), made on first use."""
    global _connection, _placeholder
    if _connection is None:
        env = os.environ
        if env.get("FWBENCH_DB_KIND") == "postgres":
            import psycopg

            _connection = psycopg.connect(
                host=env["FWBENCH_DB_HOST"],
                port=env["FWBENCH_DB_PORT"],
                dbname=env["FWBENCH_DB_NAME"],
                user=env["FWBENCH_DB_USER"],
                password=env.get("FWBENCH_DB_PASSWORD", ""),
                autocommit=True,
            )
            _placeholder = "%s"
        else:
            import sqlite3

            _connection = sqlite3.connect(env["FWBENCH_DB_PATH"], isolation_level=None)
    return _connection


def random_worlds(n):
    db = database()
    sql = f"SELECT id, randomnumber FROM world WHERE id = {_placeholder}"
    rows = [db.execute(sql, (random.randint(1, 10000),)).fetchone() for _ in range(n)]
    return [{"id": i, "randomNumber": number} for i, number in rows]


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


class Root(Controller):
    def hello(self):
        self.response.headers["Content-Type"] = "text/html; charset=utf-8"
        return templates.get_template("hello.html").render(message="Hello world!")

    @exposeJSON("json")
    def json_items(self):
        return [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]

    @exposeJSON("db")
    def single_query(self):
        return random_worlds(1)[0]

    @exposeJSON("queries")
    def multiple_queries(self, n=None, *args, **kwargs):
        return random_worlds(queries_count(n))

    def fortunes(self):
        rows = database().execute("SELECT id, message FROM fortune").fetchall()
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda r: r[1])
        self.response.headers["Content-Type"] = "text/html; charset=utf-8"
        return templates.get_template("fortunes.html").render(
            fortunes=[{"id": i, "message": m} for i, m in rows]
        )


class Echo(Component):
    """ws-echo: WebSocketsDispatcher fires each message as a read event on the "wsserver"
    channel (str for text, bytearray for binary); a write back sends it with that type."""

    channel = "wsserver"

    def read(self, sock, data):
        self.fire(write(sock, data))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    options = {}
    if args.workers > 1:
        # circuits runs one process; for more, fork and let each bind with SO_REUSEPORT
        options["socket_options"] = [(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)]
        for _ in range(args.workers - 1):
            if os.fork() == 0:
                break

    (
        Server((args.host, args.port), **options)
        + Root()
        + WebSocketsDispatcher("/ws-echo")
        + Echo()
    ).run()


if __name__ == "__main__":
    main()
