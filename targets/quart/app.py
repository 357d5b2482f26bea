from quart import Quart, render_template

app = Quart(__name__)


@app.get("/hello/")
async def hello():
    return await render_template("hello.html", message="Hello world!")
