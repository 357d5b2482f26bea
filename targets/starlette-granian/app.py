import contextlib
import os
import random
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

metadata = sa.MetaData()
world = sa.Table(
    "world",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("randomnumber", sa.Integer, nullable=False),
)
fortune = sa.Table(
    "fortune",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message", sa.Text, nullable=False),
)
WORLD_BY_ID = sa.select(world.c.id, world.c.randomnumber).where(world.c.id == sa.bindparam("id"))
ALL_FORTUNES = sa.select(fortune.c.id, fortune.c.message)


def database_url():
    """The scenario database from FWBENCH_DB_* (None: hello-only run, no database)."""
    kind = os.environ.get("FWBENCH_DB_KIND")
    if kind == "sqlite":
        return "sqlite+aiosqlite:///" + os.environ["FWBENCH_DB_PATH"]
    if kind == "postgres":
        env = os.environ
        return (
            f"postgresql+asyncpg://{env['FWBENCH_DB_USER']}:{env.get('FWBENCH_DB_PASSWORD', '')}"
            f"@{env['FWBENCH_DB_HOST']}:{env['FWBENCH_DB_PORT']}/{env['FWBENCH_DB_NAME']}"
        )
    return None


@contextlib.asynccontextmanager
async def lifespan(app):
    url = database_url()
    if url is None:
        yield {}
        return
    engine = create_async_engine(url, pool_size=10, max_overflow=0)
    yield {"engine": engine}
    await engine.dispose()


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


async def hello(request):
    return JSONResponse({"message": "Hello world!"})


async def json_items(request):
    return JSONResponse(
        [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]
    )


async def single_query(request):
    async with request.state.engine.connect() as conn:
        row = (await conn.execute(WORLD_BY_ID, {"id": random.randint(1, 10000)})).one()
    return JSONResponse({"id": row.id, "randomNumber": row.randomnumber})


async def multiple_queries(request):
    n = queries_count(request.query_params.get("n"))
    async with request.state.engine.connect() as conn:
        rows = [
            (await conn.execute(WORLD_BY_ID, {"id": random.randint(1, 10000)})).one()
            for _ in range(n)
        ]
    return JSONResponse([{"id": r.id, "randomNumber": r.randomnumber} for r in rows])


async def fortunes(request):
    async with request.state.engine.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(ALL_FORTUNES)]
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda r: r[1])
    return templates.TemplateResponse(
        request, "fortunes.html", {"fortunes": [{"id": i, "message": m} for i, m in rows]}
    )


async def ws_echo(websocket):
    """ws-echo: every message back as it came (text as text, binary as binary)."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


app = Starlette(
    routes=[
        Route("/hello/", hello),
        Route("/json/", json_items),
        Route("/db/", single_query),
        Route("/queries/", multiple_queries),
        Route("/fortunes/", fortunes),
        WebSocketRoute("/ws-echo/", ws_echo),
    ],
    lifespan=lifespan,
)
