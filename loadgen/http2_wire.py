"""HTTP/2 on the wire, for the client core (:mod:`loadgen.http2`): frame types and flags,
frames, HPACK integers, the request's header block, and the one error the core raises.

Nothing here keeps state: these are the pieces a connection is built from, checked on their own
(RFC 9113 for frames, RFC 7541 for HPACK; the request block uses static-table entries and
literals without indexing only, so it never touches the server's HPACK table).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from loadgen.http1 import encode_request

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE = range(9)
CONTINUATION: Final = 9
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20

MIN_FRAME: Final = 16384
"""The largest frame every peer must accept (and the largest we accept)."""
MAX_STREAM_ID: Final = (1 << 31) - 1

U32 = struct.Struct(">I")
_FORBIDDEN = frozenset({"connection", "keep-alive", "proxy-connection", "upgrade", "te"})


class H2ParseError(Exception):
    """The server broke HTTP/2 (error kind ``"parse"``); the message says how."""


def frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-byte header, then ``payload``."""
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + U32.pack(stream) + payload


def hpack_int(value: int, prefix: int, first: int) -> bytes:
    """An HPACK integer with a ``prefix``-bit prefix, OR-ed into ``first`` (RFC 7541 5.1)."""
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hstr(text: str) -> bytes:
    raw = text.encode("latin-1")
    return hpack_int(len(raw), 7, 0) + raw  # no Huffman coding


def encode_header_block(
    path: str,
    authority: str,
    scheme: str = "http",
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """The HPACK header block of a request: static-table entries and literals without indexing.

    The same checks as :func:`loadgen.http1.encode_request` (no header or request smuggled);
    header names are sent in lower case, connection-specific ones are refused (RFC 9113 8.2.2).
    Raises ValueError.
    """
    encode_request(path, authority, method=method, headers=headers, body=body)
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https: {scheme!r}")
    block = bytearray()
    indexed = {"GET": b"\x82", "POST": b"\x83"}
    block += indexed.get(method) or hpack_int(2, 4, 0) + _hstr(method)
    block += b"\x86" if scheme == "http" else b"\x87"
    block += b"\x84" if path == "/" else hpack_int(4, 4, 0) + _hstr(path)
    block += hpack_int(1, 4, 0) + _hstr(authority)
    for name, value in headers:
        if name.lower() in _FORBIDDEN:
            raise ValueError(f"header {name} is connection-specific: HTTP/2 forbids it")
        block += b"\x00" + _hstr(name.lower()) + _hstr(value)
    if body is not None or method in ("POST", "PUT", "PATCH"):
        block += hpack_int(28, 4, 0) + _hstr(str(len(body or b"")))  # content-length
    return bytes(block)


def payload(data: bytes, start: int, stop: int, flags: int, priority: int = 0) -> bytes:
    """A DATA or HEADERS frame's payload without its padding (and priority fields)."""
    pad = 0
    if flags & PADDED:
        if start >= stop:
            raise H2ParseError("PADDED frame without its pad length")
        pad = data[start]
        start += 1
    if priority:
        start += 5
    if stop - pad < start:
        raise H2ParseError("padding longer than the frame")
    return data[start : stop - pad]
