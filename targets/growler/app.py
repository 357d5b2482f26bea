import argparse
import asyncio
import html
import os
import random
import socket

from growler import App
from growler.middleware import StringRenderer

HERE = os.path.dirname(os.path.abspath(__file__))


DB_KIND = os.environ.get("FWBENCH_DB_KIND")
WORLD_SQL_PG = "SELECT id, randomnumber FROM world WHERE id = $1"
WORLD_SQL_SQLITE = "SELECT id, randomnumber FROM world WHERE id = ?"
FORTUNE_SQL = "SELECT id, message FROM fortune"
# StringRenderer is str.format: no loops and no escaping, so the rows are formatted (and
# escaped) one by one into {rows} of templates/fortunes.html.tmpl
FORTUNE_ROW = "<tr><td>{id}</td><td>{message}</td></tr>\n"


class Database:
    """asyncpg's pool for PostgreSQL; one aiosqlite connection per worker for SQLite."""

    def __init__(self) -> None:
        self.pool = None
        self.sqlite = None
        self._lock = asyncio.Lock()
        self._opened = False

    async def ready(self) -> "Database":
        """Opened at the first request, in the worker's own event loop (after the fork)."""
        if not self._opened:
            async with self._lock:
                if not self._opened:
                    await self.open()
                    self._opened = True
        return self

    async def open(self) -> None:
        if DB_KIND == "postgres":
            import asyncpg

            self.pool = await asyncpg.create_pool(
                host=os.environ["FWBENCH_DB_HOST"],
                port=int(os.environ["FWBENCH_DB_PORT"]),
                database=os.environ["FWBENCH_DB_NAME"],
                user=os.environ["FWBENCH_DB_USER"],
                password=os.environ["FWBENCH_DB_PASSWORD"],
                min_size=4,
                max_size=16,
            )
        elif DB_KIND == "sqlite":
            import aiosqlite

            self.sqlite = await aiosqlite.connect(os.environ["FWBENCH_DB_PATH"])

    async def worlds(self, ids: list[int]) -> list[dict[str, int]]:
        if self.pool is not None:
            async with self.pool.acquire() as conn:
                stmt = await conn.prepare(WORLD_SQL_PG)
                rows = [await stmt.fetchrow(i) for i in ids]
        else:
            rows = []
            for i in ids:
                async with self.sqlite.execute(WORLD_SQL_SQLITE, (i,)) as cur:
                    rows.append(await cur.fetchone())
        return [{"id": r[0], "randomNumber": r[1]} for r in rows]

    async def fortunes(self) -> list[tuple[int, str]]:
        if self.pool is not None:
            async with self.pool.acquire() as conn:
                return [tuple(r) for r in await conn.fetch(FORTUNE_SQL)]
        async with self.sqlite.execute(FORTUNE_SQL) as cur:
            return [tuple(r) for r in await cur.fetchall()]


database = Database()


def random_ids(n):
    return [random.randint(1, 10000) for _ in range(n)]


def queries_count(raw):
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


def make_app():
    app = App("hello")
    app.use(StringRenderer(os.path.join(HERE, "templates")))

    @app.get("/hello/")
    def hello(req, res):
        res.render("hello", {"message": "Hello world!"})

    @app.get("/json/")
    def json_items(req, res):
        res.send_json([
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ])

    @app.get("/db/")
    async def single_query(req, res):
        db = await database.ready()
        res.send_json((await db.worlds(random_ids(1)))[0])

    @app.get("/queries/")
    async def multiple_queries(req, res):
        db = await database.ready()
        res.send_json(await db.worlds(random_ids(queries_count(req.param("n")))))

    @app.get("/fortunes/")
    async def fortunes(req, res):
        db = await database.ready()
        rows = await db.fortunes()
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda r: r[1])
        res.set_type("text/html; charset=utf-8")
        # Growler's Content-Length counts the characters of the page, not its UTF-8 bytes
        res.events.on("headers", lambda: res.set("Content-Length", str(len(res.message.encode()))))
        res.render("fortunes", {
            "rows": "".join(FORTUNE_ROW.format(id=i, message=html.escape(m)) for i, m in rows),
        })

    return app


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    # Bind once, then fork: every worker process accepts on the same socket.
    sock = socket.create_server((args.host, args.port), backlog=1024)
    for _ in range(args.workers - 1):
        if os.fork() == 0:
            break
    asyncio.set_event_loop(asyncio.new_event_loop())
    make_app().create_server_and_run_forever(sock=sock)


if __name__ == "__main__":
    main()
