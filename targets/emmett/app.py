from emmett import App

app = App(__name__)


@app.route("/hello", methods=["get"], template="hello.html")
async def hello():
    return {"message": "Hello world!"}
