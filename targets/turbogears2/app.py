"""TurboGears2 in minimal mode: one root controller, Kajiki templates, SQLAlchemy models."""
import os
import random

from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, sessionmaker
from tg import MinimalApplicationConfigurator, TGController, expose, json_encode
from tg.configurator.components.sqlalchemy import SQLAlchemyConfigurationComponent
from tg.jsonify import JSONEncoder
from tg.util import Bunch

HERE = os.path.dirname(os.path.abspath(__file__))

DBSession = scoped_session(sessionmaker(autoflush=False))


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


def init_model(engine):
    DBSession.configure(bind=engine)


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


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


# TurboGears renders only dicts through @expose("json") (lists are refused as a JSON-hijacking
# guard); the list answers are encoded with TurboGears' own encoder, lists allowed.
LIST_ENCODER = JSONEncoder(allow_lists=True)


def world_json(world):
    return {"id": world.id, "randomNumber": world.randomnumber}


class RootController(TGController):
    @expose("kajiki:hello.xhtml")
    def hello(self):
        return dict(message="Hello world!")

    @expose(content_type="application/json")
    def json(self):
        return json_encode(
            [
                {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
                for i in range(1, 101)
            ],
            encoder=LIST_ENCODER,
        )

    @expose("json")
    def db(self):
        return world_json(DBSession.get(World, random.randint(1, 10000)))

    @expose(content_type="application/json")
    def queries(self, n=None):
        worlds = [
            world_json(DBSession.get(World, random.randint(1, 10000)))
            for _ in range(queries_count(n))
        ]
        return json_encode(worlds, encoder=LIST_ENCODER)

    @expose("kajiki:fortunes.xhtml")
    def fortunes(self):
        rows = DBSession.scalars(select(Fortune)).all()
        rows.append(Fortune(id=0, message="Additional fortune added at request time."))
        rows.sort(key=lambda f: f.message)
        return dict(fortunes=rows)


config = MinimalApplicationConfigurator()
config.update_blueprint({
    "root_controller": RootController(),
    "renderers": ["kajiki", "json"],
    "auto_reload_templates": False,
    "paths": {"templates": [os.path.join(HERE, "templates")]},
})
if (url := database_url()) is not None:
    # SQLAlchemy's QueuePool: one connection per gunicorn thread; the session is removed
    # after every request by TurboGears' DBSessionRemoverMiddleware
    config.register(SQLAlchemyConfigurationComponent)
    config.update_blueprint({
        "use_sqlalchemy": True,
        "sqlalchemy.url": url,
        "sqlalchemy.pool_size": 8,
        "sqlalchemy.max_overflow": 0,
        "model": Bunch(DBSession=DBSession, init_model=init_model),
    })
app = config.make_wsgi_app()
