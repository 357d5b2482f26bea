import os
import random

from flask import Flask, jsonify, render_template, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

app = Flask(__name__)
db = SQLAlchemy()


def database_uri():
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


class World(db.Model):
    __tablename__ = "world"
    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]


class Fortune(db.Model):
    __tablename__ = "fortune"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str]


if (uri := database_uri()) is not None:
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    # SQLAlchemy's QueuePool of 8 connections per worker
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 8, "max_overflow": 0}
    db.init_app(app)


def queries_count(raw):
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(500, n))


@app.route("/hello/")
def hello():
    return render_template("hello.html", message="Hello world!")


@app.route("/json/")
def json_items():
    return jsonify(
        [
            {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
            for i in range(1, 101)
        ]
    )


@app.route("/db/")
def single_query():
    world = db.session.get(World, random.randint(1, 10000))
    return jsonify(id=world.id, randomNumber=world.randomnumber)


@app.route("/queries/")
def multiple_queries():
    n = queries_count(request.args.get("n"))
    worlds = [db.session.get(World, random.randint(1, 10000)) for _ in range(n)]
    return jsonify([{"id": w.id, "randomNumber": w.randomnumber} for w in worlds])


@app.route("/fortunes/")
def fortunes():
    rows = db.session.execute(db.select(Fortune)).scalars().all()
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda f: f.message)
    return render_template("fortunes.html", fortunes=rows)
