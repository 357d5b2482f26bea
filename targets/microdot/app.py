from microdot.asgi import Microdot

app = Microdot()


@app.get("/hello/")
async def hello(request):
    return {"message": "Hello world!"}
