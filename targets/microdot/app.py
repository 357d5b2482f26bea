from microdot.asgi import Microdot, with_websocket

app = Microdot()


@app.get("/hello/")
async def hello(request):
    return {"message": "Hello world!"}


@app.route("/ws-echo/")
@with_websocket
async def ws_echo(request, ws):
    """ws-echo: every message back as it came (str as text, bytes as binary)."""
    while True:
        await ws.send(await ws.receive())
