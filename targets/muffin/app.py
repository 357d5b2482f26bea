import muffin

app = muffin.Application()


@app.route("/hello/", methods=["GET"])
async def hello(request):
    return {"message": "Hello world!"}


@app.route("/ws-echo/")
async def ws_echo(request):
    """ws-echo: every message back as it came (text as text, binary as binary). receive()
    decodes binary frames to str; raw=True keeps the ASGI message and its frame type."""
    async with muffin.ResponseWebSocket(request) as ws:
        while True:
            message = await ws.receive(raw=True)
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            await ws.send(text if text is not None else message["bytes"])
    return ws
