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
cost one list append for their body chunk. Repeats of one answer are counted without llhttp (see
:class:`ResponseParser`, "known answers"): against nginx, the client parses a couple of answers
per connection per second, and compares bytes for the rest. Malformed input raises
:data:`ParseError` (error kind ``"parse"``); the connection is then unusable and the transport
opens a new one. An answer that says ``Connection: close`` (or an HTTP/1.0 answer without
keep-alive) sets :attr:`ResponseParser.must_close`: the transport closes the socket, reconnects,
counts a reconnect and calls :meth:`ResponseParser.reset`.

The transport kinds of error (``"connect"``, ``"timeout"``, ``"reset"``) are named here too so
that every part of the client counts with one vocabulary, :data:`ERROR_KINDS`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import httptools

from loadgen.checks import Kind, body_ok

ErrorKind = Literal["connect", "timeout", "reset", "status", "body", "parse"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("connect", "timeout", "reset", "status", "body", "parse")

DEFAULT_CHECK_EVERY = 100
"""Check the body of one answer in this many, per connection (about 1 %)."""


ParseError: type[Exception] = httptools.HttpParserError
"""Raised on bytes that are not a valid HTTP/1.1 response (error kind ``"parse"``).

It is httptools' own error class, so the hot path can call the C parser without a wrapper.
"""


def host_header_value(host: str, port: int) -> str:
    """The ``Host`` header for ``host``:``port`` (IPv6 literals in brackets, port 80 omitted)."""
    name = host
    try:
        if ipaddress.ip_address(host).version == 6:
            name = f"[{host}]"
    except ValueError:
        pass
    return name if port == 80 else f"{name}:{port}"


def _never() -> bool:
    return False


def encode_request(
    path: str,
    host_header: str,
    close: bool = False,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """The bytes of one keep-alive request, built once per run (``GET`` with no body by default).

    HTTP/1.1 connections are persistent unless a side says ``Connection: close``, so a ``GET``
    carries only the request line and ``Host``, exactly as wrk sends it. ``close`` asks for a
    new connection per request (for a server that cannot keep alive, as Growler). ``headers``
    are sent as given, after ``Host``; a ``body`` (and any ``POST``, ``PUT`` or ``PATCH``, with
    or without one) goes with a ``Content-Length``.

    Everything is checked here, so no request can smuggle a header or a second request: the
    method must be a token (not ``HEAD`` or ``CONNECT``, whose answers announce a body they do
    not carry, and the response parser reads bodies by their length); the path and the ``Host``
    value must be printable ASCII without spaces (percent-encode the rest); header names must be
    tokens and values free of control characters. ``Host``, ``Content-Length`` and
    ``Transfer-Encoding`` are set here, not through ``headers``. Raises ValueError.
    """
    tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if not method or any(ch not in tchar for ch in method):
        raise ValueError(f"method must be a token (letters, digits, !#$%&'*+-.^_`|~): {method!r}")
    if method.upper() in ("HEAD", "CONNECT"):
        raise ValueError(
            f"method {method.upper()} is not supported: its answers announce a body they do not "
            "carry"
        )
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    for text, what in ((path, "path"), (host_header, "host header")):
        if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
            raise ValueError(f"{what} must not hold spaces or control characters: {text!r}")
        if not text.isascii():
            raise ValueError(f"{what} must be ASCII (percent-encode the rest): {text!r}")
    if not host_header:
        raise ValueError("host header is empty")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}"]
    for name, value in headers:
        if not name or any(ch not in tchar for ch in name):
            raise ValueError(f"header name must be a token: {name!r}")
        if name.lower() in ("host", "content-length", "transfer-encoding"):
            raise ValueError(f"header {name} is set by the client, not as a header")
        if any((ord(ch) < 0x20 and ch != "\t") or 0x7F <= ord(ch) <= 0x9F for ch in value):
            raise ValueError(f"header {name} must not hold control characters: {value!r}")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    if close:
        lines.append("Connection: close")
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + (body or b"")


@dataclass(frozen=True, slots=True)
class Answer:
    """One completed answer, as a plain value (kept only when a parser is asked to keep them)."""

    status: int
    keep_alive: bool
    body: bytes | None
    """The body when this answer was captured for a check, else None."""
    error: ErrorKind | None
    """``"status"`` or ``"body"`` for a bad answer, None for a good one."""


class KnownAnswer:
    """The answer last remembered by any of the parsers that share this object.

    The connections of one client process all talk to one server: when one of them has learnt
    the answer of the moment, the others take it over at their first copy of it, and all of them
    compare incoming bytes with one object, hot in the CPU cache, instead of one each.
    """

    __slots__ = ("data", "error")

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.error: ErrorKind | None = None


class ResponseParser:
    """Parses the answers arriving on one connection and counts them by outcome.

    Feed it every chunk read from the socket with :meth:`feed`; it returns how many answers the
    chunk completed. Counters only grow (a run subtracts a snapshot taken at the start of its
    measured window), so they can be read at any time.

    Known answers: a server under load sends the same bytes again and again (with nginx, only
    the ``Date`` header changes, once a second). When two chunks in a row each held exactly one
    whole answer, from one message boundary to the next, and were byte-identical, the parser
    remembers that answer with its verdict (good, ``"status"`` or ``"body"``: its body is checked
    then if its sample did not check it). From then on, a chunk equal to it is counted with that
    verdict at the cost of one ``bytes`` comparison, without running llhttp: the same bytes
    from the same parser state make the same events. Answers that vary are parsed one by one
    and their bodies sampled as usual. Parsers given one :class:`KnownAnswer` share what they
    learn.
    """

    __slots__ = (
        "_body_ok",
        "_check_every",
        "_check_in",
        "_checked",
        "_chunks",
        "_close_every",
        "_keep_alive",
        "_known",
        "_known_error",
        "_open",
        "_previous",
        "_shared",
        "_status_code",
        "_verdict",
        "answers",
        "body_errors",
        "done",
        "feed_data",
        "keep",
        "must_close",
        "on_body",
        "status_errors",
    )

    def __init__(
        self,
        kind: Kind | None = None,
        check_every: int = DEFAULT_CHECK_EVERY,
        keep_answers: bool = False,
        shared: KnownAnswer | None = None,
        close_every: bool = False,
        check: Callable[[bytes], bool] | None = None,
    ) -> None:
        """``kind`` names the hello body check (None: bodies are never looked at); ``check``,
        when given, is the body check instead (a scenario's, e.g. ``json`` or ``db``).

        ``check_every``: check one answer in this many (1 checks them all). ``keep_answers``:
        keep an :class:`Answer` for every completed answer in :attr:`answers` (tests, debugging;
        it captures every body and turns the known-answer shortcut off). ``shared``: the known
        answer of a group of parsers reading from the same server with the same ``kind``.
        ``close_every``: every answer ends its connection (the requests said ``Connection:
        close``), whether or not the server says so.
        """
        if check_every < 1:
            raise ValueError("check_every must be at least 1")
        self._body_ok: Callable[[bytes], bool] | None = check
        if check is None and kind is not None:
            self._body_ok = functools.partial(body_ok, kind)
        self._check_every = check_every
        self._close_every = close_every
        # The first answer of a connection is checked, then one in ``check_every``.
        self._check_in = 1
        self.keep = keep_answers
        self.answers: list[Answer] = []
        # llhttp looks its callbacks up once, when a parser is made: without ``on_body`` it never
        # builds body objects at all. With a check configured, a body chunk costs one C-level
        # list append; the list is emptied when the next answer begins.
        checking = self._body_ok is not None
        self._chunks: list[bytes] | None = [] if checking or keep_answers else None
        self.on_body: Callable[[bytes], object] | None = (
            None if self._chunks is None else self._chunks.append
        )
        self.done = 0
        """Answers completed, whatever their outcome."""
        self.status_errors = 0
        self.body_errors = 0
        self.must_close = False
        """The last answer asked for the connection to be closed."""
        self._open = 0
        """Answers begun and not yet complete: 0 between two messages."""
        self._previous: bytes | None = None
        self._known: bytes | None = None
        self._known_error: ErrorKind | None = None
        self._shared = KnownAnswer() if shared is None else shared
        self._verdict: ErrorKind | None = None
        self._checked = False
        self._new_parser()

    def _new_parser(self) -> None:
        # llhttp reads its callbacks here: ``on_message_begin``, ``on_message_complete`` and
        # ``on_body`` (None: no body callback); no header ever reaches Python.
        parser = httptools.HttpResponseParser(self)
        self.feed_data: Callable[[bytes], None] = parser.feed_data
        """The C parser's own feed: no known-answer shortcut."""
        self._status_code: Callable[[], int] = parser.get_status_code
        self._keep_alive: Callable[[], bool] = (
            _never if self._close_every else parser.should_keep_alive
        )

    @property
    def ok(self) -> int:
        """Good answers: 2xx, with a right body where one was checked."""
        return self.done - self.status_errors - self.body_errors

    def reset(self) -> None:
        """Start over on a new connection: fresh parser state, counters kept."""
        if self._chunks is not None:
            self._chunks.clear()
        self.must_close = False
        self._open = 0
        self._previous = None
        self._new_parser()

    def feed(self, data: bytes) -> int:
        """Parse ``data``; return the number of answers it completed.

        Raises :data:`ParseError` on malformed input; the parser must then be :meth:`reset`
        (on a new connection) before it is fed again.
        """
        if data == self._known:
            self.done += 1
            if self._known_error is not None:
                self._count(self._known_error)
            return 1
        if not self._open:
            shared = self._shared
            if data == shared.data:  # learnt by another connection: take it over
                self._known = shared.data
                self._known_error = shared.error
                self.done += 1
                if shared.error is not None:
                    self._count(shared.error)
                return 1
        before = self.done
        between = not self._open
        self.feed_data(data)
        done = self.done - before
        if done == 1 and between and not self._open:
            # Exactly one whole answer, from one message boundary to the next.
            if data == self._previous and not self.must_close and not self.keep:
                self._remember(data)
            self._previous = data
        elif self._open:
            self._known = self._previous = None  # inside an answer: no shortcut
        return done

    def _remember(self, data: bytes) -> None:
        verdict = self._verdict
        check = self._body_ok
        unchecked = verdict is None and check is not None and not self._checked
        if unchecked and check is not None and not check(b"".join(self._chunks or ())):
            verdict = "body"
            self.body_errors += 1
        self._known = data
        self._known_error = verdict
        self._shared.data = data
        self._shared.error = verdict

    def _count(self, error: ErrorKind) -> None:
        if error == "status":
            self.status_errors += 1
        else:
            self.body_errors += 1

    def on_message_begin(self) -> None:
        """llhttp callback: an answer starts."""
        self._open += 1
        if self._chunks is not None:
            self._chunks.clear()

    def on_message_complete(self) -> None:
        """llhttp callback: one answer is complete; classify and count it."""
        self.done += 1
        self._open -= 1
        status = self._status_code()
        verdict: ErrorKind | None = None
        if not 200 <= status < 300:
            verdict = "status"
            self.status_errors += 1
        if not self._keep_alive():
            self.must_close = True
        chunks = self._chunks
        if chunks is not None:
            self._checked = False
            self._check_in -= 1
            if self._check_in <= 0 or self.keep:
                verdict = self._finish_captured(status, chunks, verdict)
        self._verdict = verdict

    def _finish_captured(
        self, status: int, chunks: list[bytes], verdict: ErrorKind | None
    ) -> ErrorKind | None:
        """Check (when sampled) and keep (when asked) a captured answer; return its verdict."""
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._check_in <= 0:
            self._check_in = self._check_every
            if self._body_ok is not None and verdict is None:
                self._checked = True
                if not self._body_ok(body):
                    verdict = "body"
                    self.body_errors += 1
        if self.keep:
            self.answers.append(Answer(status, not self.must_close, body, verdict))
        return verdict

    def counts(self) -> dict[str, int]:
        """The counters by outcome."""
        return {"ok": self.ok, "status": self.status_errors, "body": self.body_errors}


def parse_answers(data: bytes, kind: Kind | None = None, check_every: int = 1) -> list[Answer]:
    """Every answer in ``data`` as plain values (a convenience for tests and tools)."""
    parser = ResponseParser(kind, check_every, keep_answers=True)
    parser.feed(data)
    return parser.answers
