from ravyn import Ravyn, WebSocket, get, websocket


@get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "Hello world!"}


@websocket("/ws-echo")
async def ws_echo(socket: WebSocket) -> None:
    """ws-echo: every message back as it came (text as text, binary as binary)."""
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await socket.send_text(message["text"])
        else:
            await socket.send_bytes(message["bytes"])


app = Ravyn(routes=[hello, ws_echo], enable_openapi=False)
