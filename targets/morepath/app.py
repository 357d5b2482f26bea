import os
import random

import morepath
from more.jinja2 import Jinja2App
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


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


def database_url():
    """The scenario database from FWBENCH_DB_* (None: hello-only run, no database)."""
    kind = os.environ.get("FWBENCH_DB_KIND")
    if kind == "sqlite":
        return "sqlite:///" + os.environ["FWBENCH_DB_PATH"]
    if kind == "postgres":
        env = os.environ
        return (
            f"postgresql+psycopg://{env['FWBENCH_DB_USER']}:{env.get('FWBENCH_DB_PASSWORD', '')}"
            f"@{env['FWBENCH_DB_HOST']}:{env['FWBENCH_DB_PORT']}/{env['FWBENCH_DB_NAME']}"
        )
    return None


# SQLAlchemy's QueuePool: one connection per gunicorn thread; a session per request (view)
_url = database_url()
Session = sessionmaker(bind=create_engine(_url, pool_size=8, max_overflow=0)) if _url else None


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


class App(Jinja2App):
    pass


@App.template_directory()
def get_template_directory():
    return "templates"


@App.path(path="hello")
class Hello:
    pass


@App.html(model=Hello, template="hello.jinja2")
def hello(self, request):
    return {"message": "Hello world!"}


@App.path(path="json")
class JsonItems:
    pass


@App.json(model=JsonItems)
def json_items(self, request):
    return [
        {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
        for i in range(1, 101)
    ]


@App.path(path="db")
class SingleQuery:
    pass


@App.json(model=SingleQuery)
def single_query(self, request):
    with Session() as session:
        world = session.get(World, random.randint(1, 10000))
        return {"id": world.id, "randomNumber": world.randomnumber}


class Queries:
    def __init__(self, n):
        self.n = queries_count(n)


@App.path(model=Queries, path="queries")
def get_queries(n=None):
    return Queries(n)


@App.json(model=Queries)
def multiple_queries(self, request):
    with Session() as session:
        worlds = [session.get(World, random.randint(1, 10000)) for _ in range(self.n)]
        return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@App.path(path="fortunes")
class Fortunes:
    pass


@App.html(model=Fortunes, template="fortunes.jinja2")
def fortunes(self, request):
    with Session() as session:
        rows = list(session.scalars(select(Fortune)).all())
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda f: f.message)
    return {"fortunes": rows}


App.commit()
app = App()
