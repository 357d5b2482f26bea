import falcon
import falcon.asgi
import falcon.media


class HelloResource:
    async def on_get(self, req, resp):
        resp.media = {"message": "Hello world!"}


class Verbatim(falcon.media.TextBaseHandlerWS, falcon.media.BinaryBaseHandlerWS):
    """A WebSocket media handler that leaves the payload as it is (str or bytes)."""

    def serialize(self, media):
        return media

    def deserialize(self, payload):
        return payload


class EchoResource:
    """ws-echo: every message back as it came (text as text, binary as binary)."""

    async def on_websocket(self, req, ws):
        await ws.accept()
        while True:
            message = await ws.receive_media()
            if isinstance(message, str):
                await ws.send_media(message, falcon.WebSocketPayloadType.TEXT)
            else:
                await ws.send_media(message, falcon.WebSocketPayloadType.BINARY)


app = falcon.asgi.App()
# receive_text()/receive_data() each refuse the other frame type; receive_media() takes both,
# through media handlers that here pass the payload through untouched.
app.ws_options.media_handlers[falcon.WebSocketPayloadType.TEXT] = Verbatim()
app.ws_options.media_handlers[falcon.WebSocketPayloadType.BINARY] = Verbatim()
app.req_options.strip_url_path_trailing_slash = True
app.add_route("/hello", HelloResource())
app.add_route("/ws-echo", EchoResource())
