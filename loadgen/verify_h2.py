"""The verifier's HTTP/2 fetch: one request, blocking, and a clear reason when it is refused.

:func:`fetch_h2` speaks HTTP/2 to a server the way the load client will (``h2c``: prior
knowledge on cleartext TCP; ``h2``: TLS offering ALPN ``h2`` and ``http/1.1``), with the same
sans-IO core (:mod:`loadgen.http2`) on a plain socket, and returns the answer as a value. A
server that does not speak HTTP/2 there raises :class:`H2Refused` saying what it did instead:
chose ``http/1.1`` by ALPN, answered the preface in HTTP/1.1, closed the connection, sent a
GOAWAY or a RST_STREAM, or said nothing within the timeout. Failing to connect at all is an
``OSError``, as for HTTP/1.1.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

from loadgen.http2 import H2Client
from loadgen.http2_wire import H2ParseError
from loadgen.tls import client_context


class H2Refused(ValueError):
    """The server does not speak HTTP/2 on this protocol; the message says what it did."""


@dataclass(frozen=True)
class H2Answer:
    """One HTTP/2 answer (``headers``: lower-case names, pseudo-headers left out)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    alpn: str | None
    """The protocol the server chose by ALPN (``h2``); None for ``h2c``."""


def fetch_h2(
    host: str, port: int, protocol: str, path: str, authority: str, timeout: float
) -> H2Answer:
    """GET ``path`` over HTTP/2 (``protocol`` ``h2c`` or ``h2``); raises :class:`H2Refused`."""
    if protocol not in ("h2c", "h2"):
        raise ValueError(f"protocol must be h2c or h2, not {protocol!r}")
    deadline = time.monotonic() + timeout
    raw = socket.create_connection((host, port), timeout=timeout)
    sock: socket.socket = raw
    try:
        alpn = None
        if protocol == "h2":
            try:
                sock = client_context(["h2", "http/1.1"]).wrap_socket(raw, server_hostname=host)
            except (ssl.SSLError, TimeoutError) as exc:
                raise H2Refused(
                    f"asked for HTTP/2 over TLS and the handshake failed: {exc}"
                ) from None
            alpn = sock.selected_alpn_protocol()
            if alpn != "h2":
                raise H2Refused(
                    f"asked for HTTP/2 (ALPN h2) and the server chose {alpn or 'no protocol'}"
                )
        client = H2Client(
            path, authority, scheme="https" if protocol == "h2" else "http", keep_answers=True
        )
        sock.sendall(client.start() + client.request(0, 0))
        while not client.answers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise H2Refused(f"no HTTP/2 answer within {timeout:g} s")
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                raise H2Refused(f"no HTTP/2 answer within {timeout:g} s") from None
            except ConnectionError as exc:
                raise H2Refused(f"the server dropped the connection ({exc})") from None
            if not data:
                raise H2Refused(_closed(client))
            try:
                client.feed(data, 0)
            except H2ParseError as exc:
                raise H2Refused(str(exc)) from None
            if client.out:
                sock.sendall(bytes(client.out))
                client.out.clear()
            if client.resets:
                if client.goaway is not None:
                    raise H2Refused(f"the server refused the request: GOAWAY {_goaway(client)}")
                raise H2Refused("the server reset the request's stream (RST_STREAM)")
    finally:
        sock.close()
    answer = client.answers[0]
    headers = tuple((n, v) for n, v in answer.headers if not n.startswith(":"))
    return H2Answer(answer.status, headers, answer.body, alpn)


def _goaway(client: H2Client) -> str:
    assert client.goaway is not None
    return f"(last stream {client.goaway[0]}, error code {client.goaway[1]})"


def _closed(client: H2Client) -> str:
    if client.goaway is not None:
        return f"the server closed the connection after a GOAWAY {_goaway(client)}"
    return "the server closed the connection without an HTTP/2 answer"
