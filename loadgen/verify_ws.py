"""The verifier's check of a WebSocket echo endpoint (scenario ``ws-echo``), on plain sockets.

:func:`ws_echo_problem` talks to the endpoint as a careful client (the sans-IO core
:mod:`loadgen.websocket`, over a blocking socket, one connection) and returns None when every
step is right, else one phrase naming the first step that is not. The steps, in order:

1. the opening handshake: 101, ``Upgrade: websocket``, ``Connection: upgrade`` and the right
   ``Sec-WebSocket-Accept``;
2. text echoes, exact: an ASCII message and a non-ASCII UTF-8 one;
3. a binary echo of all 256 byte values, exact;
4. messages over 125 bytes (a 16-bit length) and over 65535 bytes (a 64-bit length);
5. a message sent in three fragments: the echo is the whole message (framed in any way);
6. a ping: the pong carries the same payload;
7. the close handshake: the client's close (1000) is answered with a close frame, then the
   server closes the TCP connection.

Each step waits at most ``timeout`` seconds. A ping from the server meanwhile is answered.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from loadgen.websocket import (
    OP_CONTINUATION,
    OP_TEXT,
    ClientCore,
    HandshakeError,
    Message,
    ProtocolError,
    encode_frame,
)

TEXT_ASCII = "Hello, WebSocket! fwbench ws-echo"
TEXT_UTF8 = "héllo wörld, привет, 你好, ✓ 🎉"
BINARY = bytes(range(256))
PING = b"fwbench-ping"


class _Problem(Exception):
    """A step went wrong: its message is the phrase returned."""


class _Link:
    """One blocking connection and its WebSocket core."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.core = ClientCore()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, doing: str) -> bool:
        """Read one chunk and feed it to the core (answering pings); False at end of stream."""
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise _Problem(f"no answer within {self.timeout:g} s to {doing}") from None
        if not data:
            return False
        try:
            self.core.feed(data)
        except HandshakeError as exc:
            raise _Problem(f"the WebSocket handshake failed: {exc}") from None
        except ProtocolError as exc:
            raise _Problem(f"protocol error in the answer to {doing}: {exc}") from None
        if self.core.outgoing:
            self.send(bytes(self.core.outgoing))
            self.core.outgoing.clear()
        return True

    def wait(self, doing: str, done: Callable[[], object]) -> None:
        """Read until ``done()`` is true, within ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Problem(f"no answer within {self.timeout:g} s to {doing}")
            self.sock.settimeout(left)
            if not self.read(doing):
                raise _Problem(f"the server closed the connection before answering {doing}")

    def echo(self, frames: bytes, sent: Message, what: str) -> None:
        """Send ``frames`` (one message) and check that its echo is ``sent``, exactly."""
        core = self.core
        self.send(frames)
        self.wait(f"the {what}", lambda: core.messages or core.closed)
        if not core.messages:
            raise _Problem(f"the server closed the WebSocket instead of echoing the {what}")
        got = core.messages.pop(0)
        if core.messages:
            raise _Problem(f"the {what} was answered with {1 + len(core.messages)} messages")
        if got.text != sent.text:
            kinds = ("binary", "text")
            raise _Problem(f"the {what} was echoed as {kinds[got.text]}, not {kinds[sent.text]}")
        if got.payload != sent.payload:
            raise _Problem(
                f"the echo of the {what} differs: {len(got.payload)} bytes "
                f"{_preview(got.payload)} for {len(sent.payload)} bytes {_preview(sent.payload)}"
            )


def _preview(data: bytes) -> str:
    return repr(data[:24]) + ("..." if len(data) > 24 else "")


def ws_echo_problem(host: str, port: int, path: str, authority: str, timeout: float) -> str | None:
    """None when the WebSocket echo endpoint at ``path`` is right, else what is wrong."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc}"
    try:
        with sock:
            _steps(_Link(sock, timeout), path, authority)
    except _Problem as exc:
        return str(exc)
    except OSError as exc:
        return f"the connection failed: {exc}"
    return None


def _steps(link: _Link, path: str, authority: str) -> None:
    core = link.core
    link.send(core.request(path, authority))
    link.wait("the WebSocket handshake", lambda: core.upgraded)
    for payload, text, what in (
        (TEXT_ASCII.encode(), True, "ASCII text message"),
        (TEXT_UTF8.encode(), True, "non-ASCII UTF-8 text message"),
        (BINARY, False, "binary message of all 256 byte values"),
        (bytes(range(200)) * 5, False, "binary message of 1000 bytes"),
        (b"fwbench " * 9000, True, "text message of 72000 bytes"),
    ):
        link.echo(core.message(payload, text), Message(payload, text), what)
    parts = (b"first part, ", b"second part, ", b"third part")
    frames = (
        encode_frame(OP_TEXT, parts[0], b"\x01\x02\x03\x04", fin=False)
        + encode_frame(OP_CONTINUATION, parts[1], b"\x05\x06\x07\x08", fin=False)
        + encode_frame(OP_CONTINUATION, parts[2], b"\x09\x0a\x0b\x0c")
    )
    link.echo(frames, Message(b"".join(parts), True), "text message sent in three fragments")
    link.send(core.ping(PING))
    link.wait("a ping", lambda: core.pongs or core.messages or core.closed)
    if core.messages or core.closed:
        raise _Problem("the server answered a ping with something else than a pong")
    if core.pongs[0] != PING:
        raise _Problem(f"the pong's payload is {core.pongs[0]!r}, not the ping's {PING!r}")
    link.send(core.close(1000))
    link.wait("the close frame", lambda: core.closed)
    if core.close_code not in (1000, None):
        raise _Problem(f"the server answered the close frame with code {core.close_code}")
    deadline = time.monotonic() + link.timeout
    while time.monotonic() < deadline:
        link.sock.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            if not link.sock.recv(65536):
                return
        except TimeoutError:
            break
    raise _Problem(
        f"the server answered the close frame but kept the TCP connection open "
        f"for {link.timeout:g} s"
    )
