import os
import random

from pyramid.config import Configurator
from pyramid.view import view_config
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


def dbsession(request):
    """request.dbsession: one SQLAlchemy session per request, closed when it is finished."""
    session = request.registry["dbsession_factory"]()
    request.add_finished_callback(lambda _request: session.close())
    return session


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@view_config(route_name="hello", renderer="templates/hello.jinja2")
def hello(request):
    return {"message": "Hello world!"}


@view_config(route_name="json", renderer="json")
def json_items(request):
    return [
        {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
        for i in range(1, 101)
    ]


@view_config(route_name="db", renderer="json")
def single_query(request):
    world = request.dbsession.get(World, random.randint(1, 10000))
    return {"id": world.id, "randomNumber": world.randomnumber}


@view_config(route_name="queries", renderer="json")
def multiple_queries(request):
    n = queries_count(request.GET.get("n"))
    worlds = [request.dbsession.get(World, random.randint(1, 10000)) for _ in range(n)]
    return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


@view_config(route_name="fortunes", renderer="templates/fortunes.jinja2")
def fortunes(request):
    rows = list(request.dbsession.scalars(select(Fortune)).all())
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda f: f.message)
    return {"fortunes": rows}


with Configurator() as config:
    config.include("pyramid_jinja2")
    if (url := database_url()) is not None:
        # SQLAlchemy's QueuePool: one connection per gunicorn thread
        engine = create_engine(url, pool_size=8, max_overflow=0)
        config.registry["dbsession_factory"] = sessionmaker(bind=engine)
        config.add_request_method(dbsession, reify=True)
    config.add_route("hello", "/hello/")
    config.add_route("json", "/json/")
    config.add_route("db", "/db/")
    config.add_route("queries", "/queries/")
    config.add_route("fortunes", "/fortunes/")
    config.scan()
app = config.make_wsgi_app()
