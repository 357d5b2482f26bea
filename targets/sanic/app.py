import os
import random
from pathlib import Path

import aiosqlite
import asyncpg
import jinja2
from sanic import Sanic
from sanic.response import html, json

app = Sanic("hello")

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    enable_async=True,
)


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

    async def close(self):
        await self.pool.close()


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

    async def close(self):
        await self.conn.close()


@app.before_server_start
async def open_database(app):
    """The scenario database from FWBENCH_DB_* (none for hello-only runs), per worker."""
    env = os.environ
    kind = env.get("FWBENCH_DB_KIND")
    app.ctx.db = None
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
        app.ctx.db = PostgresWorlds(pool)
    elif kind == "sqlite":
        app.ctx.db = SQLiteWorlds(await aiosqlite.connect(env["FWBENCH_DB_PATH"]))


@app.after_server_stop
async def close_database(app):
    if app.ctx.db is not None:
        await app.ctx.db.close()


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@app.websocket("/ws-echo", strict_slashes=False)
async def ws_echo(request, ws):
    """ws-echo: every message back as it came (str as text, bytes as binary)."""
    async for message in ws:
        await ws.send(message)


@app.get("/hello", strict_slashes=False)
async def hello(request):
    return json({"message": "Hello world!"})


@app.get("/json", strict_slashes=False)
async def json_items(request):
    return json(
        [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]
    )


@app.get("/db", strict_slashes=False)
async def single_query(request):
    ((rid, number),) = await request.app.ctx.db.worlds([random.randint(1, 10000)])
    return json({"id": rid, "randomNumber": number})


@app.get("/queries", strict_slashes=False)
async def multiple_queries(request):
    n = queries_count(request.args.get("n"))
    rows = await request.app.ctx.db.worlds([random.randint(1, 10000) for _ in range(n)])
    return json([{"id": rid, "randomNumber": number} for rid, number in rows])


@app.get("/fortunes", strict_slashes=False)
async def fortunes(request):
    rows = await request.app.ctx.db.fortunes()
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda r: r[1])
    page = await templates.get_template("fortunes.html").render_async(
        fortunes=[{"id": i, "message": m} for i, m in rows]
    )
    return html(page)
