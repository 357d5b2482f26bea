from fastapi import FastAPI, WebSocket

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/hello/")
async def hello():
    return {"message": "Hello world!"}


@app.websocket("/ws-echo/")
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
