from nexios import NexiosApp
from nexios.websockets import WebSocket

app = NexiosApp()


@app.get("/hello/")
async def hello(request, response):
    return response.json({"message": "Hello world!"})


@app.ws_route("/ws-echo/")
async def ws_echo(websocket: WebSocket):
    """ws-echo: every message back as it came (text as text, binary as binary)."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])
