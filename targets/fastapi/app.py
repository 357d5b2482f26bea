import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def database_url() -> str | None:
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


class Base(DeclarativeBase):
    pass


class World(Base):
    __tablename__ = "world"
    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]


class Fortune(Base):
    __tablename__ = "fortune"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]


sessionmaker: async_sessionmaker[AsyncSession] | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global sessionmaker
    url = database_url()
    if url is None:
        yield
        return
    engine = create_async_engine(url, pool_size=10, max_overflow=0)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


async def get_session() -> AsyncIterator[AsyncSession]:
    assert sessionmaker is not None, "no FWBENCH_DB_KIND: this run has no database"
    async with sessionmaker() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)


def queries_count(raw: str | None) -> int:
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@app.get("/hello/")
async def hello():
    return {"message": "Hello world!"}


@app.get("/json/")
async def json_items():
    return [
        {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
        for i in range(1, 101)
    ]


@app.get("/db/")
async def single_query(session: Session):
    world = await session.get(World, random.randint(1, 10000))
    return {"id": world.id, "randomNumber": world.randomnumber}


@app.get("/queries/")
async def multiple_queries(session: Session, n: str | None = None):
    worlds = [
        await session.get(World, random.randint(1, 10000)) for _ in range(queries_count(n))
    ]
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@app.get("/fortunes/")
async def fortunes(request: Request, session: Session):
    rows = list((await session.scalars(select(Fortune))).all())
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda f: f.message)
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": rows})


@app.websocket("/ws-echo/")
async def ws_echo(websocket: WebSocket):
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
