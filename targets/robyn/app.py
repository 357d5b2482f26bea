import argparse
import os
import random
import signal
import sys
from pathlib import Path

from robyn import Request, Robyn
from robyn.templating import JinjaTemplate

app = Robyn(__file__)
templates = JinjaTemplate(str(Path(__file__).parent / "templates"))


@app.get("/hello/")
async def hello():
    return {"message": "Hello world!"}


@app.websocket("/ws-echo/")
async def ws_echo(websocket):
    """ws-echo: every message back as it came (text as text, binary as binary).
    receive_text()/receive_bytes() convert a frame of the other type; _receive() gives the
    frame as it came (str for text, bytes for binary)."""
    while True:
        message = await websocket._receive()
        if isinstance(message, str):
            await websocket.send_text(message)
        else:
            await websocket.send_bytes(bytes(message))


DB_KIND = os.environ.get("FWBENCH_DB_KIND")
WORLD_SQL_PG = "SELECT id, randomnumber FROM world WHERE id = $1"
WORLD_SQL_SQLITE = "SELECT id, randomnumber FROM world WHERE id = ?"
FORTUNE_SQL = "SELECT id, message FROM fortune"

JSON_ITEMS = [
    {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
    for i in range(1, 101)
]


class Database:
    """asyncpg's pool for PostgreSQL; one aiosqlite connection per worker for SQLite."""

    def __init__(self) -> None:
        self.pool = None
        self.sqlite = None

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

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        if self.sqlite is not None:
            await self.sqlite.close()

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


db = Database()


@app.startup_handler
async def open_database():
    await db.open()


@app.shutdown_handler
async def close_database():
    await db.close()


def random_ids(n: int) -> list[int]:
    return [random.randint(1, 10000) for _ in range(n)]


def clamp(raw: str | None) -> int:
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@app.get("/json/")
async def json_items():
    return JSON_ITEMS


@app.get("/db/")
async def single_query():
    return (await db.worlds(random_ids(1)))[0]


@app.get("/queries/")
async def multiple_queries(request: Request):
    return await db.worlds(random_ids(clamp(request.query_params.get("n", None))))


@app.get("/fortunes/")
async def fortunes():
    rows = [{"id": i, "message": m} for i, m in await db.fortunes()]
    rows.append({"id": 0, "message": "Additional fortune added at request time."})
    rows.sort(key=lambda r: r["message"])
    return templates.render_template("fortunes.html", fortunes=rows)


def _exit_on_sigterm(signum, frame):
    sys.exit(0)


if __name__ == "__main__":
    # Robyn reads its own flags (--processes, --workers, --log-level, --disable-openapi)
    # from argv; host and port are arguments of start().
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args, _ = parser.parse_known_args()
    # With one process, Robyn's Rust server (actix) catches SIGTERM and stops serving,
    # but the Python event loop keeps the process alive forever. A Python handler
    # installed first is chained by the Rust side and ends the process.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # _check_port=False: with the port taken, Robyn would otherwise loop forever
    # prompting on stdin for another port instead of failing.
    app.start(host=args.host, port=args.port, _check_port=False)
