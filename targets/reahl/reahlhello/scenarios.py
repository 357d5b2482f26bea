"""The scenarios beyond hello, the Reahl way: JSON answers are RemoteMethods with a JsonResult
(registered by a Widget on the /scenarios view), fortunes is a page built from widgets (a Table
with a column per Field).

The scenario database is not Reahl's own (reahlsystem.connection_uri, which holds the web
sessions and is made by the setup commands): it is the suite's, found through FWBENCH_DB_*, so
its rows are read through SQLAlchemy (the ORM under reahl-sqlalchemysupport) with an engine of
their own (a QueuePool of 8 per worker = gunicorn's threads), made at first use.
"""

import json
import os
import random
import threading

from reahl.component.modelinterface import Field, IntegerField
from reahl.web.fw import JsonResult, RemoteMethod, Widget
from reahl.web.ui import HTML5Page, StaticColumn, Table
from sqlalchemy import create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


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


_engine = None
_engine_lock = threading.Lock()


def database_url():
    env = os.environ
    if env.get("FWBENCH_DB_KIND") == "postgres":
        return (
            f"postgresql+psycopg://{env['FWBENCH_DB_USER']}:{env.get('FWBENCH_DB_PASSWORD', '')}"
            f"@{env['FWBENCH_DB_HOST']}:{env['FWBENCH_DB_PORT']}/{env['FWBENCH_DB_NAME']}"
        )
    return "sqlite:///" + env["FWBENCH_DB_PATH"]


def scenario_session():
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = create_engine(database_url(), pool_size=8, max_overflow=0)
    return Session(_engine)


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


def json_items():
    return [
        {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
        for i in range(1, 101)
    ]


def random_worlds(n):
    with scenario_session() as session:
        worlds = [session.get(World, random.randint(1, 10000)) for _ in range(n)]
        return [{"id": w.id, "randomNumber": w.randomnumber} for w in worlds]


def single_query():
    return random_worlds(1)[0]


def multiple_queries(n=None):
    return random_worlds(queries_count(n))


class JsonField(Field):
    """A Field whose input form is the JSON text of its value (what JsonResult sends)."""

    def unparse_input(self, parsed_value):
        return json.dumps(parsed_value)


def json_method(view, name, callable_object):
    # immutable: a GET, rolled back after; no CSRF header: these are called by the load
    # generator, not by a page's JavaScript
    result = JsonResult(JsonField())
    return RemoteMethod(
        view, name, callable_object, result, immutable=True, disable_csrf_check=True
    )


class ScenarioMethods(Widget):
    """Registers the JSON scenarios under the URL of the view it is on."""

    def __init__(self, view):
        super().__init__(view)
        view.add_resource(json_method(view, "json", json_items))
        view.add_resource(json_method(view, "db", single_query))
        view.add_resource(json_method(view, "queries", multiple_queries))


class ScenariosPage(HTML5Page):
    def __init__(self, view):
        super().__init__(view)
        self.body.add_child(ScenarioMethods(view))


class FortunesPage(HTML5Page):
    def __init__(self, view):
        super().__init__(view)
        with scenario_session() as session:
            fortunes = list(session.scalars(select(Fortune)))
            fortunes.append(Fortune(id=0, message="Additional fortune added at request time."))
            fortunes.sort(key=lambda f: f.message)
            columns = [
                StaticColumn(IntegerField(label="id"), "id"),
                StaticColumn(Field(label="message"), "message"),
            ]
            self.body.add_child(Table(view).with_data(columns, fortunes))
