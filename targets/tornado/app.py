import argparse
import asyncio
import json
import os
import random

import aiosqlite
import asyncpg
import tornado.httpserver
import tornado.netutil
import tornado.process
import tornado.web
import tornado.websocket

HERE = os.path.dirname(os.path.abspath(__file__))


class PostgresWorlds:
    """The scenario tables through an asyncpg pool."""

    def __init__(self, pool):
        self.pool = pool

    async def worlds(self, ids):
        async with self.pool.acquire() as conn:
            return [
                await conn.fetchrow("SELECT id, randomnumber FROM world WHERE id = $1", i)
                for i in ids
            ]

    async def fortunes(self):
        async with self.pool.acquire() as conn:
            return [tuple(r) for r in await conn.fetch("SELECT id, message FROM fortune")]


class SQLiteWorlds:
    """The scenario tables through one aiosqlite connection (its own thread runs the queries)."""

    def __init__(self, conn):
        self.conn = conn

    async def worlds(self, ids):
        rows = []
        for i in ids:
            async with self.conn.execute(
                "SELECT id, randomnumber FROM world WHERE id = ?", (i,)
            ) as cursor:
                rows.append(await cursor.fetchone())
        return rows

    async def fortunes(self):
        async with self.conn.execute("SELECT id, message FROM fortune") as cursor:
            return [tuple(r) for r in await cursor.fetchall()]


async def open_database():
    """The scenario database from FWBENCH_DB_* (None for hello-only runs)."""
    env = os.environ
    kind = env.get("FWBENCH_DB_KIND")
    if kind == "postgres":
        pool = await asyncpg.create_pool(
            host=env["FWBENCH_DB_HOST"],
            port=int(env["FWBENCH_DB_PORT"]),
            database=env["FWBENCH_DB_NAME"],
            user=env["FWBENCH_DB_USER"],
            password=env.get("FWBENCH_DB_PASSWORD"),
            min_size=1,
            max_size=10,
        )
        return PostgresWorlds(pool)
    if kind == "sqlite":
        return SQLiteWorlds(await aiosqlite.connect(env["FWBENCH_DB_PATH"]))
    return None


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


class HelloHandler(tornado.web.RequestHandler):
    def get(self):
        self.render("hello.html", message="Hello world!")


class JsonHandler(tornado.web.RequestHandler):
    def write_json(self, obj):
        # RequestHandler.write takes dicts only; lists are serialised here
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.write(json.dumps(obj))

    def get(self):
        self.write_json(
            [
                {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
                for i in range(1, 101)
            ]
        )


class DbHandler(JsonHandler):
    async def get(self):
        db = self.settings["db"]
        ((rid, number),) = await db.worlds([random.randint(1, 10000)])
        self.write({"id": rid, "randomNumber": number})


class QueriesHandler(JsonHandler):
    async def get(self):
        n = queries_count(self.get_query_argument("n", None))
        rows = await self.settings["db"].worlds([random.randint(1, 10000) for _ in range(n)])
        self.write_json([{"id": rid, "randomNumber": number} for rid, number in rows])


class FortunesHandler(tornado.web.RequestHandler):
    async def get(self):
        rows = await self.settings["db"].fortunes()
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda r: r[1])
        self.render("fortunes.html", fortunes=rows)


class EchoWebSocket(tornado.websocket.WebSocketHandler):
    """ws-echo: every message back as it came (str as text, bytes as binary)."""

    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


def make_app(db=None):
    return tornado.web.Application(
        [
            (r"/hello/?", HelloHandler),
            (r"/json/?", JsonHandler),
            (r"/db/?", DbHandler),
            (r"/queries/?", QueriesHandler),
            (r"/fortunes/?", FortunesHandler),
            (r"/ws-echo/?", EchoWebSocket),
        ],
        template_path=os.path.join(HERE, "templates"),
        db=db,
    )


async def serve(sockets):
    server = tornado.httpserver.HTTPServer(make_app(await open_database()))
    server.add_sockets(sockets)
    await asyncio.Event().wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    sockets = tornado.netutil.bind_sockets(args.port, address=args.host)
    if args.workers > 1:
        tornado.process.fork_processes(args.workers)
    asyncio.run(serve(sockets))


if __name__ == "__main__":
    main()
