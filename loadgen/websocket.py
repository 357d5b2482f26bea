"""Sans-IO WebSocket client core (RFC 6455) of the raw load client: bytes in, messages out.

Theory of operation
-------------------
No sockets here, as in :mod:`loadgen.http1`: the transport writes the bytes this module makes
and feeds it the bytes it reads, split anywhere.

A connection starts with an HTTP/1.1 ``GET`` that asks to upgrade (:func:`handshake_request`,
with a random ``Sec-WebSocket-Key`` made by :func:`new_key`). :class:`ClientCore` reads the
answer's head and checks it (:func:`check_handshake`): status 101, ``Upgrade: websocket``,
``Connection: upgrade``, and ``Sec-WebSocket-Accept`` equal to the one computed from the key
(:func:`accept_for`); no extension or subprotocol, since the client asks for none. Anything else
raises :class:`HandshakeError`, whose :attr:`~HandshakeError.kind` is ``"status"`` for an
answer other than 101 and ``"parse"`` for a wrong 101. Bytes that follow the head in the same
read are frames, and parsed as such.

Frames from the server are decoded by :meth:`ClientCore.feed`, which returns how many data
messages the bytes completed and appends them to :attr:`ClientCore.messages`
(:class:`Message`: payload and text/binary). It copes with any split of the stream (a frame cut
at every byte, several frames in one read), with 7-, 16- and 64-bit lengths, with fragmented
messages (a first frame, continuation frames, FIN on the last) and with control frames
interleaved between fragments. A ping is answered: its pong goes to
:attr:`ClientCore.outgoing`, which the transport writes (and empties) after each feed. A close
frame is answered with a close frame (same code) unless the client closed first; after it,
:attr:`ClientCore.closed` is true and the transport closes the TCP connection. Every violation
raises :class:`ProtocolError` (error kind ``"parse"``): a masked frame (a server must not mask),
reserved bits set (no extension was negotiated), an unknown opcode, a fragmented or long
control frame, a continuation with no message begun or a new message inside a fragmented one,
a bad close payload, invalid UTF-8 in a text message, frames after the close, a message over
``max_message`` bytes.

Client frames must be masked (RFC 6455 5.3) with a 32-bit key. :func:`encode_frame` masks by
one XOR of two big integers (``int.from_bytes`` of the payload and of the key repeated), about
a hundred times faster than a Python loop over bytes; :meth:`ClientCore.message` uses a fresh
random key per frame. A load client sends the same few messages millions of times, so
:mod:`loadgen.rawclient.wsloop` encodes a small set of frames once per run, each with its own
random key, and cycles through them (see there: the RFC asks for an unpredictable key per frame,
to keep attacker-chosen payloads from poisoning intermediaries' caches; the load client's
payloads are its own, sent to a server on its own machine, and a server does the same unmasking
work whatever the key).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from loadgen.http1 import ErrorKind, encode_request

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The fixed string of RFC 6455 4.2.2 that the accept value is computed with."""
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
MAX_HEAD = 16 * 1024
"""The longest handshake answer head accepted."""
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024
"""The largest message (all its fragments) accepted from a server."""
CLOSE_NORMAL = 1000
_VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013))


class ProtocolError(ValueError):
    """The server broke RFC 6455 (error kind ``"parse"``): the connection is unusable."""

    kind: ErrorKind = "parse"


class HandshakeError(ProtocolError):
    """The answer to the opening handshake was not a right 101 (``kind``: ``"status"`` when the
    status is not 101, else ``"parse"``)."""

    def __init__(self, reason: str, kind: ErrorKind = "parse") -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Message:
    """One complete data message from the server (all its fragments joined)."""

    payload: bytes
    text: bool


def new_key() -> str:
    """A random ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded."""
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer to ``key``."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def handshake_request(
    path: str, host_header: str, key: str, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The bytes of the opening handshake: ``GET path`` asking to upgrade to a WebSocket.

    The path, host and extra headers are checked as :func:`loadgen.http1.encode_request` checks
    them (raises ValueError)."""
    upgrade = (
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    )
    return encode_request(path, host_header, headers=(*upgrade, *headers))


def check_handshake(head: bytes, key: str) -> None:
    """Check the answer head (status line to the blank line) to a handshake sent with ``key``.

    Raises :class:`HandshakeError` naming what is wrong."""
    lines = head.decode("latin-1").split("\r\n")
    words = lines[0].split(" ", 2)
    if len(words) < 2 or not words[0].startswith("HTTP/1.") or not words[1].isdigit():
        raise HandshakeError(f"the answer is not HTTP/1.1: {lines[0][:80]!r}")
    status = int(words[1])
    if status != 101:
        reason = words[2] if len(words) > 2 else ""
        raise HandshakeError(
            f"answered {status} {reason} instead of 101 Switching Protocols".replace("  ", " "),
            kind="status",
        )
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise HandshakeError(f"malformed header line in the 101 answer: {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    upgrade = fields.get("upgrade")
    if upgrade is None or upgrade.lower() != "websocket":
        raise HandshakeError(f"the 101 answer says Upgrade: {upgrade}, not websocket")
    connection = fields.get("connection", "")
    if "upgrade" not in (token.strip().lower() for token in connection.split(",")):
        raise HandshakeError(f"the 101 answer says Connection: {connection or None}, not upgrade")
    expected = accept_for(key)
    accept = fields.get("sec-websocket-accept")
    if accept != expected:
        raise HandshakeError(f"wrong Sec-WebSocket-Accept: {accept} (the key asks for {expected})")
    for name in ("sec-websocket-extensions", "sec-websocket-protocol"):
        if name in fields:
            raise HandshakeError(f"the server chose {name} {fields[name]!r}, which was not asked")


def mask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XOR the 4-byte ``key`` repeated (masking and unmasking are the same)."""
    n = len(payload)
    if not n:
        return b""
    keys = key * (n // 4 + 1)
    return (int.from_bytes(payload) ^ int.from_bytes(keys[:n])).to_bytes(n)


def encode_frame(opcode: int, payload: bytes, key: bytes | None, fin: bool = True) -> bytes:
    """One frame: masked with the 4-byte ``key`` (a client's), or unmasked for ``key`` None."""
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    masked = 0x80 if key is not None else 0
    if n < 126:
        head = bytes((first, masked | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, masked | 126, n)
    else:
        head = struct.pack("!BBQ", first, masked | 127, n)
    if key is None:
        return head + payload
    return head + key + mask(payload, key)


def _close_payload(code: int, reason: str) -> bytes:
    return code.to_bytes(2) + reason.encode()


class ClientCore:
    """The WebSocket state of one client connection: handshake, then frames from the server.

    Feed every chunk read with :meth:`feed`; write :attr:`outgoing` afterwards when it is not
    empty (and clear it). Make the bytes to send with :meth:`message`, :meth:`ping` and
    :meth:`close`, or with :func:`encode_frame`.
    """

    __slots__ = (
        "_buf",
        "_frag_op",
        "_frags",
        "_frags_size",
        "_need",
        "close_code",
        "close_reason",
        "close_sent",
        "closed",
        "key",
        "max_message",
        "messages",
        "outgoing",
        "partial",
        "pongs",
        "upgraded",
    )

    def __init__(self, key: str | None = None, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.key = new_key() if key is None else key
        self.max_message = max_message
        self.messages: list[Message] = []
        """Completed data messages, in order (the caller empties the list as it reads them)."""
        self.pongs: list[bytes] = []
        """Payloads of the pongs received."""
        self.outgoing = bytearray()
        """Bytes to write to the server: pongs and the close reply."""
        self.upgraded = False
        """The 101 answer was read and found right."""
        self.closed = False
        """The server's close frame was read."""
        self.close_sent = False
        self.close_code: int | None = None
        """The status code of the server's close frame (None: none, or one without a code)."""
        self.close_reason = ""
        self.partial = True
        """Bytes of an unfinished frame or message are held (or the handshake is not done):
        a whole chunk can only be a whole frame when this is false."""
        self._buf = bytearray()
        self._need = 2
        self._frag_op: int | None = None
        self._frags: list[bytes] = []
        self._frags_size = 0

    def request(
        self, path: str, host_header: str, headers: Sequence[tuple[str, str]] = ()
    ) -> bytes:
        """The opening handshake of this connection (with its key)."""
        return handshake_request(path, host_header, self.key, headers)

    def message(self, payload: bytes, text: bool) -> bytes:
        """One masked data frame holding ``payload`` (with a fresh random key)."""
        return encode_frame(OP_TEXT if text else OP_BINARY, payload, os.urandom(4))

    def ping(self, payload: bytes = b"") -> bytes:
        """A masked ping frame (payload at most 125 bytes)."""
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        return encode_frame(OP_PING, payload, os.urandom(4))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        """The client's masked close frame; the server's close then ends the connection."""
        self.close_sent = True
        return encode_frame(OP_CLOSE, _close_payload(code, reason), os.urandom(4))

    def feed(self, data: bytes) -> int:
        """Parse ``data``; return the number of data messages it completed (see
        :attr:`messages`). Raises :class:`ProtocolError` (or :class:`HandshakeError`)."""
        buf = self._buf
        if self.upgraded and not buf:
            # Nothing held: frames are read from ``data`` itself, what is left is kept.
            done, pos = self._frames(data)
            if pos < len(data):
                buf += data[pos:]
            self.partial = bool(buf) or self._frag_op is not None
            return done
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise HandshakeError(f"no end of the answer head in {MAX_HEAD} bytes")
                return 0
            check_handshake(bytes(buf[: end + 4]), self.key)
            del buf[: end + 4]
            self.upgraded = True
        done = 0
        if len(buf) >= self._need:
            done, pos = self._frames(buf)
            del buf[:pos]
        self.partial = bool(buf) or self._frag_op is not None
        return done

    def _frames(self, buf: bytes | bytearray) -> tuple[int, int]:
        """Decode every whole frame at the start of ``buf``; note how many bytes the next one
        needs; return the messages completed and the bytes used."""
        pos = 0
        end = len(buf)
        done = 0
        need = 2
        while end - pos >= 2:
            first = buf[pos]
            second = buf[pos + 1]
            if self.closed:
                raise ProtocolError("a frame after the server's close frame")
            if second & 0x80:
                raise ProtocolError("a masked frame from the server (servers must not mask)")
            if first & 0x70:
                raise ProtocolError("reserved bits set in a frame (no extension was agreed)")
            n = second & 0x7F
            head = 2
            if n == 126:
                head = 4
                if end - pos < head:
                    need = head
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4])
            elif n == 127:
                head = 10
                if end - pos < head:
                    need = head
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10])
                if n >> 63:
                    raise ProtocolError("a frame length with its top bit set")
            if first & 0x08 and n > 125:
                raise ProtocolError(f"a control frame of {n} bytes (at most 125)")
            if n + self._frags_size > self.max_message:
                raise ProtocolError(f"a message over {self.max_message} bytes")
            if end - pos < head + n:
                need = head + n
                break
            payload = bytes(buf[pos + head : pos + head + n])
            pos += head + n
            done += self._frame(first, payload)
        self._need = need
        return done, pos

    def _frame(self, first: int, payload: bytes) -> int:
        """Act on one whole frame; return 1 when it completed a data message."""
        opcode = first & 0x0F
        fin = first & 0x80
        if opcode >= 0x8:
            if not fin:
                raise ProtocolError("a fragmented control frame")
            if opcode == OP_PING:
                self.outgoing += encode_frame(OP_PONG, payload, os.urandom(4))
            elif opcode == OP_PONG:
                self.pongs.append(payload)
            elif opcode == OP_CLOSE:
                self._on_close(payload)
            else:
                raise ProtocolError(f"unknown control opcode {opcode:#x}")
            return 0
        if opcode == OP_CONTINUATION:
            if self._frag_op is None:
                raise ProtocolError("a continuation frame with no message begun")
            self._frags.append(payload)
            self._frags_size += len(payload)
            if not fin:
                return 0
            text = self._frag_op == OP_TEXT
            payload = b"".join(self._frags)
            self._frag_op = None
            self._frags = []
            self._frags_size = 0
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._frag_op is not None:
                raise ProtocolError("a new message inside a fragmented one")
            if not fin:
                self._frag_op = opcode
                self._frags = [payload]
                self._frags_size = len(payload)
                return 0
            text = opcode == OP_TEXT
        else:
            raise ProtocolError(f"unknown data opcode {opcode:#x}")
        if text:
            try:
                payload.decode()
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"invalid UTF-8 in a text message: {exc.reason}") from None
        self.messages.append(Message(payload, text))
        return 1

    def _on_close(self, payload: bytes) -> None:
        if len(payload) == 1:
            raise ProtocolError("a close frame with a 1-byte payload")
        code = None
        if payload:
            code = int.from_bytes(payload[:2])
            if code not in _VALID_CLOSE_CODES and not 3000 <= code <= 4999:
                raise ProtocolError(f"a close frame with the invalid code {code}")
            try:
                self.close_reason = payload[2:].decode()
            except UnicodeDecodeError:
                raise ProtocolError("a close reason that is not UTF-8") from None
        self.close_code = code
        self.closed = True
        if not self.close_sent:
            self.outgoing += self.close(CLOSE_NORMAL if code is None else code)
