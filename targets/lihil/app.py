from lihil import Lihil, Route, WebSocket, WebSocketRoute

hello = Route("/hello")


@hello.get
async def get_hello() -> dict[str, str]:
    return {"message": "Hello world!"}


ws_echo = WebSocketRoute("/ws-echo")


@ws_echo.endpoint
async def echo(ws: WebSocket) -> None:
    """ws-echo: every message back as it came (text as text, binary as binary)."""
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await ws.send_text(message["text"])
        else:
            await ws.send_bytes(message["bytes"])


app = Lihil(hello, ws_echo)
