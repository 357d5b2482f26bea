import argparse
import os
import random
import socket

import aiohttp_jinja2
import aiosqlite
import asyncpg
import jinja2
from aiohttp import web

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


DB = web.AppKey("db", object)


async def database(app):
    """cleanup_ctx: the scenario database from FWBENCH_DB_* (none for hello-only runs)."""
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
        app[DB] = PostgresWorlds(pool)
        yield
        await pool.close()
    elif kind == "sqlite":
        conn = await aiosqlite.connect(env["FWBENCH_DB_PATH"])
        app[DB] = SQLiteWorlds(conn)
        yield
        await conn.close()
    else:
        yield


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@aiohttp_jinja2.template("hello.html")
async def hello(request):
    return {"message": "Hello world!"}


async def json_items(request):
    return web.json_response(
        [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]
    )


async def single_query(request):
    (row,) = await request.app[DB].worlds([random.randint(1, 10000)])
    return web.json_response({"id": row[0], "randomNumber": row[1]})


async def multiple_queries(request):
    n = queries_count(request.query.get("n"))
    rows = await request.app[DB].worlds([random.randint(1, 10000) for _ in range(n)])
    return web.json_response([{"id": r[0], "randomNumber": r[1]} for r in rows])


@aiohttp_jinja2.template("fortunes.html")
async def fortunes(request):
    rows = await request.app[DB].fortunes()
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda r: r[1])
    return {"fortunes": [{"id": i, "message": m} for i, m in rows]}


async def ws_echo(request):
    """ws-echo: every message back as it came (text as text, binary as binary)."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == web.WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == web.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


def make_app():
    app = web.Application()
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(os.path.join(HERE, "templates")))
    app.cleanup_ctx.append(database)
    app.router.add_get("/hello/", hello)
    app.router.add_get("/hello", hello)
    app.router.add_get("/json/", json_items)
    app.router.add_get("/db/", single_query)
    app.router.add_get("/queries/", multiple_queries)
    app.router.add_get("/fortunes/", fortunes)
    app.router.add_get("/ws-echo/", ws_echo)
    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    # Bind once, then fork: every worker process accepts on the same socket.
    sock = socket.create_server((args.host, args.port), backlog=1024)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    web.run_app(make_app(), sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    main()
