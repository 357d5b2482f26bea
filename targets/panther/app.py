import contextlib
import logging
from pathlib import Path

from panther import Panther
from panther.app import API
from panther.response import Response
from panther.websocket import GenericWebsocket


@API()
async def hello():
    return Response(data={"message": "Hello world!"})


class EchoWebsocket(GenericWebsocket):
    """ws-echo: every message back as it came (str as text, bytes as binary)."""

    async def connect(self):
        await self.accept()

    async def receive(self, data: str | bytes):
        await self.send(data)


url_routing = {"hello/": hello, "ws-echo/": EchoWebsocket}

app = Panther(__name__, configs=__name__, urls=url_routing)

# Panther's logging config (applied on import) adds file handlers under ./logs/ and creates
# that folder: keep the logs on stderr only and leave no folder behind.
for name in ("panther", "monitoring", "query"):
    logger = logging.getLogger(name)
    logger.handlers = [h for h in logger.handlers if not isinstance(h, logging.FileHandler)]
with contextlib.suppress(OSError):  # not there, or not empty: leave it
    Path("logs").rmdir()
