from blacksheep import Application, get, json

app = Application()


@get("/hello/")
async def hello():
    return json({"message": "Hello world!"})
