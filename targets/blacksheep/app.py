import os
import random

from blacksheep import Application, Request, WebSocket, WebSocketDisconnectError, get, json, ws
from blacksheep.server.responses import view

app = Application()

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


@app.lifespan
async def database_lifespan():
    await db.open()
    yield
    await db.close()


def random_ids(n: int) -> list[int]:
    return [random.randint(1, 10000) for _ in range(n)]


def clamp(raw: str | None) -> int:
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@get("/hello/")
async def hello():
    return json({"message": "Hello world!"})


@get("/json/")
async def json_items():
    return json(JSON_ITEMS)


@get("/db/")
async def single_query():
    return json((await db.worlds(random_ids(1)))[0])


@get("/queries/")
async def multiple_queries(request: Request):
    raw = request.query.get("n")
    return json(await db.worlds(random_ids(clamp(raw[0] if raw else None))))


@get("/fortunes/")
async def fortunes():
    rows = [{"id": i, "message": m} for i, m in await db.fortunes()]
    rows.append({"id": 0, "message": "Additional fortune added at request time."})
    rows.sort(key=lambda r: r["message"])
    return view("fortunes", fortunes=rows)


@ws("/ws-echo/")
async def ws_echo(websocket: WebSocket):
    """ws-echo: every message back as it came (text as text, binary as binary)."""
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnectError:
        pass
