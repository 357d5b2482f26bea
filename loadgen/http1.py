"""Sans-IO HTTP/1.1 client core of the raw load client: bytes in, answers out, no sockets.

Theory of operation
-------------------
A load client sends the same request millions of times, so everything that can be done once is
done once: :func:`encode_request` builds the request bytes when a run starts and the transport
writes that one ``bytes`` object again and again.

Answers are parsed by :class:`ResponseParser`, a thin wrapper over llhttp (through
``httptools.HttpResponseParser``). llhttp calls back into Python only for the events we ask for:
the end of each message, and the body chunks when a body check is configured. Headers are never
handed to Python; the status code and the keep-alive decision are read from the C parser when a
message completes. One parser serves a whole connection, answer after answer, and it copes with
any split of the byte stream: an answer cut at every byte, or several pipelined answers in one
chunk.

Every completed answer is classified at once, into one counter:

* ``ok``: a 2xx status (and a right body when this answer was sampled for a body check);
* ``"status"``: any status outside 200-299;
* ``"body"``: a 2xx answer whose sampled body fails :func:`loadgen.checks.body_ok`.

Body checks are sampled: every ``check_every``-th answer of a connection is checked, the others
cost one list append for their body chunk. Malformed input raises :class:`ParseError` (error kind
``"parse"``); the connection is then unusable and the transport opens a new one. An answer that
says ``Connection: close`` (or an HTTP/1.0 answer without keep-alive) sets :attr:`must_close`: the
transport closes the socket, reconnects, counts a reconnect and calls :meth:`ResponseParser.reset`.

The transport kinds of error (``"connect"``, ``"timeout"``, ``"reset"``) are named here too so
that every part of the client counts with one vocabulary, :data:`ERROR_KINDS`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httptools

from loadgen.checks import Kind, body_ok

ErrorKind = Literal["connect", "timeout", "reset", "status", "body", "parse"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("connect", "timeout", "reset", "status", "body", "parse")

DEFAULT_CHECK_EVERY = 100
"""Check the body of one answer in this many, per connection (about 1 %)."""


class ParseError(Exception):
    """The peer sent bytes that are not a valid HTTP/1.1 response (error kind ``"parse"``)."""


def host_header_value(host: str, port: int) -> str:
    """The ``Host`` header for ``host``:``port`` (IPv6 literals in brackets, port 80 omitted)."""
    name = host
    try:
        if ipaddress.ip_address(host).version == 6:
            name = f"[{host}]"
    except ValueError:
        pass
    return name if port == 80 else f"{name}:{port}"


def encode_request(path: str, host_header: str) -> bytes:
    """The bytes of one keep-alive ``GET`` request, built once per run.

    HTTP/1.1 connections are persistent unless a side says ``Connection: close``, so the request
    carries only the request line and ``Host``, exactly as wrk sends it.
    """
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    for text, what in ((path, "path"), (host_header, "host header")):
        if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            raise ValueError(f"{what} must not hold spaces or control characters: {text!r}")
    return f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\n\r\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class Answer:
    """One completed answer, as a plain value (kept only when a parser is asked to keep them)."""

    status: int
    keep_alive: bool
    body: bytes | None
    """The body when this answer was captured for a check, else None."""
    error: ErrorKind | None
    """``"status"`` or ``"body"`` for a bad answer, None for a good one."""


class ResponseParser:
    """Parses the answers arriving on one connection and counts them by outcome.

    Feed it every chunk read from the socket with :meth:`feed`; it returns how many answers the
    chunk completed. Counters only grow (a run subtracts a snapshot taken at the start of its
    measured window), so they can be read at any time.
    """

    __slots__ = (
        "_check_every",
        "_check_in",
        "_chunks",
        "_feed_data",
        "_keep_alive",
        "_kind",
        "_parser",
        "_status_code",
        "answers",
        "body_errors",
        "done",
        "keep",
        "must_close",
        "ok",
        "on_body",
        "status_errors",
    )

    def __init__(
        self,
        kind: Kind | None = None,
        check_every: int = DEFAULT_CHECK_EVERY,
        keep_answers: bool = False,
    ) -> None:
        """``kind`` names the body check (None: bodies are never looked at).

        ``check_every``: check one answer in this many (1 checks them all). ``keep_answers``:
        keep an :class:`Answer` for every completed answer in :attr:`answers` (tests, debugging;
        it captures every body).
        """
        if check_every < 1:
            raise ValueError("check_every must be at least 1")
        self._kind = kind
        self._check_every = check_every
        # The first answer of a connection is checked, then one in ``check_every``.
        self._check_in = 1
        self._chunks: list[bytes] = []
        self.keep = keep_answers
        self.answers: list[Answer] = []
        # llhttp looks the callbacks up once, when the parser is made: without ``on_body`` it
        # never builds body objects at all. With a check configured, a body chunk costs one
        # C-level list append.
        self.on_body: Callable[[bytes], None] | None = (
            self._chunks.append if kind is not None or keep_answers else None
        )
        self.done = 0
        """Answers completed (any outcome)."""
        self.ok = 0
        self.status_errors = 0
        self.body_errors = 0
        self.must_close = False
        """The last answer asked for the connection to be closed."""
        self._new_parser()

    def _new_parser(self) -> None:
        # llhttp reads ``on_body`` (None: no body callback) and ``on_message_complete`` here.
        parser = httptools.HttpResponseParser(self)
        self._parser = parser
        self._feed_data: Callable[[bytes], None] = parser.feed_data
        self._status_code: Callable[[], int] = parser.get_status_code
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive

    def reset(self) -> None:
        """Start over on a new connection: fresh parser state, counters kept."""
        self._chunks.clear()
        self.must_close = False
        self._new_parser()

    def feed(self, data: bytes) -> int:
        """Parse ``data``; return the number of answers it completed.

        Raises :class:`ParseError` on malformed input; the parser must then be :meth:`reset`
        (on a new connection) before it is fed again.
        """
        before = self.done
        try:
            self._feed_data(data)
        except httptools.HttpParserError as exc:
            raise ParseError(str(exc) or type(exc).__name__) from exc
        return self.done - before

    def on_message_complete(self) -> None:
        """llhttp callback: one answer is complete; classify and count it."""
        self.done += 1
        status = self._status_code()
        if not self._keep_alive():
            self.must_close = True
        if self.on_body is None:
            if 200 <= status < 300:
                self.ok += 1
            else:
                self.status_errors += 1
            return
        self._complete_with_body(status)

    def _complete_with_body(self, status: int) -> None:
        chunks = self._chunks
        error: ErrorKind | None = None
        body: bytes | None = None
        if not 200 <= status < 300:
            error = "status"
            self.status_errors += 1
        if self._kind is not None:
            self._check_in -= 1
            if self._check_in <= 0:
                self._check_in = self._check_every
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if error is None and not body_ok(self._kind, body):
                    error = "body"
                    self.body_errors += 1
        if error is None:
            self.ok += 1
        if self.keep:
            if body is None:
                body = b"".join(chunks)
            self.answers.append(Answer(status, not self.must_close, body, error))
        chunks.clear()

    def counts(self) -> dict[ErrorKind | Literal["ok"], int]:
        """The counters by outcome."""
        return {"ok": self.ok, "status": self.status_errors, "body": self.body_errors}


def parse_answers(
    data: bytes, kind: Kind | None = None, check_every: int = 1
) -> list[Answer]:
    """Every answer in ``data`` as plain values (a convenience for tests and tools)."""
    parser = ResponseParser(kind, check_every, keep_answers=True)
    parser.feed(data)
    return parser.answers
