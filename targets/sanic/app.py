from sanic import Sanic
from sanic.response import json

app = Sanic("hello")


@app.get("/hello", strict_slashes=False)
async def hello(request):
    return json({"message": "Hello world!"})
