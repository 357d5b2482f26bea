from baize.asgi import JSONResponse, Router, request_response, websocket_session


@request_response
async def hello(request):
    return JSONResponse({"message": "Hello world!"})


@websocket_session
async def ws_echo(websocket):
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


app = Router(("/hello/", hello), ("/ws-echo/", ws_echo))
