import os
from random import randint

from emmett import App, request, websocket
from emmett.orm import Database, Field, Model, rowmethod
from emmett.tools import service

app = App(__name__)


@app.route("/hello", methods=["get"], template="hello.html")
async def hello():
    return {"message": "Hello world!"}


@app.websocket("/ws-echo")
async def ws_echo():
    """ws-echo: every message back as it came (str as text, bytes as binary)."""
    while True:
        await websocket.send(await websocket.receive())


JSON_ITEMS = [
    {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
    for i in range(1, 101)
]


@app.route("/json", methods=["get"])
@service.json
async def json_items():
    return JSON_ITEMS


# The scenario database (Emmett's ORM on pyDAL): FWBENCH_DB_KIND picks SQLite (the file at
# FWBENCH_DB_PATH) or PostgreSQL (psycopg 3); without it (hello-only runs) no database is
# configured and only the routes above are served.
DB_KIND = os.environ.get("FWBENCH_DB_KIND")
if DB_KIND == "postgres":
    env = os.environ
    app.config.db.uri = (
        f"postgres:psycopg3://{env['FWBENCH_DB_USER']}:{env['FWBENCH_DB_PASSWORD']}"
        f"@{env['FWBENCH_DB_HOST']}:{env['FWBENCH_DB_PORT']}/{env['FWBENCH_DB_NAME']}"
    )
    app.config.db.pool_size = 16
elif DB_KIND == "sqlite":
    app.config.db.uri = "sqlite://" + os.environ["FWBENCH_DB_PATH"]
    app.config.db.pool_size = 4


class World(Model):
    tablename = "world"
    randomnumber = Field.int()

    @rowmethod("serialize")
    def _serialize(self, row):
        return {"id": row.id, "randomNumber": row.randomnumber}


class Fortune(Model):
    tablename = "fortune"
    message = Field.text()


def clamp(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


if DB_KIND:
    db = Database(app, auto_migrate=False)
    db.define_models(World, Fortune)

    @app.route("/db", methods=["get"], pipeline=[db.pipe])
    @service.json
    async def single_query():
        return World.get(randint(1, 10000)).serialize()

    @app.route("/queries", methods=["get"], pipeline=[db.pipe])
    @service.json
    async def multiple_queries():
        n = clamp(request.query_params.n)
        return [World.get(randint(1, 10000)).serialize() for _ in range(n)]

    @app.route("/fortunes", methods=["get"], pipeline=[db.pipe], template="fortunes.html")
    async def fortunes():
        rows = Fortune.all().select()
        extra = Fortune.new(message="Additional fortune added at request time.")
        extra.id = 0
        rows.append(extra)
        rows.sort(lambda f: f.message)
        return {"fortunes": rows}
