"""Sans-IO HTTP/2 client core of the raw load client: bytes in, answers out, no sockets.

Theory of operation
-------------------
One :class:`H2Client` is one HTTP/2 connection seen from the client: :meth:`H2Client.start`
gives the bytes that open it (the connection preface, our SETTINGS, a connection WINDOW_UPDATE),
:meth:`H2Client.request` the bytes of one request on a new stream (odd ids: 1, 3, 5 ...), and
:meth:`H2Client.feed` takes whatever the socket read, in any split, and returns how many
answers it completed. Control frames owed to the server (SETTINGS ACK, PING ACK,
WINDOW_UPDATE, request DATA released by a window) collect in :attr:`H2Client.out`, which the
transport writes and clears after each feed.

A load client sends the same request millions of times, so its header block is encoded once
per connection (literal fields without indexing and static-table entries only: it never
touches the server's HPACK table); a request costs one 9-byte frame header with its stream id
in front of those bytes. Answers are decoded with the ``hpack`` package, but a header block
whose decoding left the dynamic table as it was is remembered with its status: the next
identical block (most of them, under load) costs one dictionary look-up. Any block that changes
the table (a new ``date`` once a second) empties the memory, so a remembered block is always
read against the table it was decoded with.

Flow control: our SETTINGS announce a stream window of :data:`STREAM_WINDOW` and the connection
window is raised to :data:`CONNECTION_WINDOW`; both are given back in batches, with one
WINDOW_UPDATE when half of a window is consumed. Request bodies are sent within the server's
windows (and its MAX_FRAME_SIZE), the rest when its WINDOW_UPDATE arrives. The server's
MAX_CONCURRENT_STREAMS caps the streams in flight (:meth:`H2Client.free`); before its SETTINGS
arrive, at most 100 (the floor RFC 9113 recommends).

Each completed answer (END_STREAM) is classified into one counter, with the words of
:mod:`loadgen.http1`: ok (2xx, and a right body when sampled for the check), ``"status"``,
``"body"``; a stream the server resets (RST_STREAM), or refuses with GOAWAY (ids above its last
stream id), counts in :attr:`H2Client.resets`. A GOAWAY also sets :attr:`H2Client.closing`: no
new stream is opened, and the transport reconnects once the streams in flight are done.
Anything that breaks the protocol (a bad frame, an HPACK error, an HTTP/1.1 answer to the
preface) raises :class:`H2ParseError` (kind ``"parse"``): the connection is then unusable.

The clock is the transport's: ``request(origin, sent)`` stamps a stream; ``feed(data, now)``
appends ``now - origin`` to :attr:`H2Client.lats` (``now - sent`` to :attr:`H2Client.lats_u`)
for each completed answer: no list of completions is built between the two.
"""

from __future__ import annotations

import functools
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import hpack

from loadgen.checks import Kind, body_ok
from loadgen.http1 import DEFAULT_CHECK_EVERY, ErrorKind
from loadgen.http2_wire import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    MAX_STREAM_ID,
    MIN_FRAME,
    PADDED,
    PING,
    PREFACE,
    PRIORITY_FLAG,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    U32,
    WINDOW_UPDATE,
    H2ParseError,
    encode_header_block,
    frame,
    payload,
)

STREAM_WINDOW: Final = 1 << 20
"""The receive window of each stream we announce (SETTINGS_INITIAL_WINDOW_SIZE)."""
CONNECTION_WINDOW: Final = 1 << 24
"""The connection's receive window, raised from the default 65535 when a connection opens."""
DEFAULT_WINDOW: Final = 65535
EARLY_STREAMS: Final = 100
"""Streams opened before the server's SETTINGS say how many it allows."""
_CACHE_MAX: Final = 256
_PENDING_MAX: Final = 4096 // 32
"""Entries a 4096-byte HPACK table can hold (each costs 32 bytes and its strings)."""

_HEAD = struct.Struct(">HBBBI")  # length (16 high bits, 8 low bits), type, flags, stream id
_SETTING = struct.Struct(">HI")


class Sink(Protocol):
    """Where latencies go: an ``array('q')`` or a list."""

    def append(self, value: int, /) -> None: ...


@dataclass(frozen=True, slots=True)
class Answer:
    """One completed answer, as a plain value (kept only when a client is asked to keep them)."""

    stream: int
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    error: ErrorKind | None


class _Stream:
    """A request in flight."""

    __slots__ = ("chunks", "headers", "origin", "pending", "recv", "sent", "status", "window")

    def __init__(self, origin: int, sent: int, chunks: list[bytes] | None, window: int) -> None:
        self.origin = origin
        self.sent = sent
        self.status = 0
        self.chunks = chunks  # the body's, when captured (sampled or kept)
        self.recv = 0  # DATA bytes received since our last WINDOW_UPDATE of it
        self.window = window  # what we may still send on it
        self.pending = b""  # request body bytes waiting for window
        self.headers: tuple[tuple[str, str], ...] = ()


class H2Client:
    """One HTTP/2 client connection: requests out, answers in, counted by outcome.

    Counters only grow, across :meth:`start` (a reconnect) too; the connection state is new.
    """

    __slots__ = (
        "_block_frames",
        "_body",
        "_cache",
        "_capacity",
        "_check",
        "_check_every",
        "_check_in",
        "_cont",
        "_cont_flags",
        "_cont_sid",
        "_decoder",
        "_free",
        "_greeted",
        "_head",
        "_max_frame",
        "_next_id",
        "_peer_window",
        "_pending",
        "_recv_conn",
        "_rest",
        "_sampling",
        "_send_window",
        "_window",
        "_window_conn",
        "answers",
        "body_errors",
        "closing",
        "done",
        "goaway",
        "keep",
        "lats",
        "lats_u",
        "out",
        "resets",
        "status_errors",
        "streams",
        "want",
    )

    def __init__(
        self,
        path: str = "/",
        authority: str = "localhost",
        *,
        scheme: str = "http",
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
        streams: int = 1,
        kind: Kind | None = None,
        check: Callable[[bytes], bool] | None = None,
        check_every: int = DEFAULT_CHECK_EVERY,
        keep_answers: bool = False,
        window: int = STREAM_WINDOW,
        connection_window: int = CONNECTION_WINDOW,
    ) -> None:
        """``streams``: the most streams in flight we want; ``kind`` / ``check``: the body check
        (as :class:`loadgen.http1.ResponseParser`'s) on one answer in ``check_every``;
        ``keep_answers``: keep every answer (headers and body) in :attr:`answers`;
        ``window`` / ``connection_window``: our receive windows."""
        if streams < 1 or check_every < 1:
            raise ValueError("streams and check_every must be at least 1")
        if not 1 <= window <= MAX_STREAM_ID or connection_window < DEFAULT_WINDOW:
            raise ValueError("window must be 1..2**31-1, connection_window at least 65535")
        block = encode_header_block(path, authority, scheme, method, headers, body)
        self._check = check
        if check is None and kind is not None:
            self._check = functools.partial(body_ok, kind)
        self._check_every = check_every
        self._check_in = 1
        self.keep = keep_answers
        self._sampling = self._check is not None or keep_answers
        self.want = streams
        self._body = body
        # The request's HEADERS (and CONTINUATION) frames but their stream ids: the 5 bytes
        # before the id, and the bytes after it, per frame.
        end_stream = 0 if body else END_STREAM
        pieces = [block[i : i + MIN_FRAME] for i in range(0, len(block), MIN_FRAME)] or [b""]
        frames = []
        for i, piece in enumerate(pieces):
            ftype = HEADERS if i == 0 else CONTINUATION
            flags = (end_stream if i == 0 else 0) | (END_HEADERS if i == len(pieces) - 1 else 0)
            frames.append((len(piece).to_bytes(3, "big") + bytes((ftype, flags)), piece))
        self._head = frames[0][0]
        self._block_frames = frames
        self._window = window
        self._window_conn = connection_window
        self.lats: Sink = []
        """Where ``now - origin`` of each completed answer goes (an ``array('q')`` or list)."""
        self.lats_u: Sink | None = None
        self.done = 0
        self.status_errors = 0
        self.body_errors = 0
        self.resets = 0
        self.answers: list[Answer] = []
        self.out = bytearray()
        self._reset_state()

    def _reset_state(self) -> None:
        self.streams: dict[int, _Stream] = {}
        self._next_id = 1
        self._decoder = hpack.Decoder()
        self._cache: dict[bytes, int | None] = {}
        """Blocks read against the table as it is now: their status."""
        self._free: dict[bytes, tuple[int | None, tuple[tuple[bytes, bytes], ...]]] = {}
        """Blocks that refer to no dynamic-table entry: their status and what they insert."""
        self._pending: deque[tuple[bytes, bytes]] = deque(maxlen=_PENDING_MAX)
        """Insertions of remembered blocks, not yet made in the decoder's table."""
        self._greeted = False
        self._rest = b""
        self._cont: list[bytes] | None = None  # a header block awaiting CONTINUATION frames
        self._cont_sid = 0
        self._cont_flags = 0
        self._capacity = min(self.want, EARLY_STREAMS)
        self._peer_window = DEFAULT_WINDOW
        self._send_window = DEFAULT_WINDOW
        self._max_frame = MIN_FRAME
        self._recv_conn = 0
        self.closing = False
        self.goaway: tuple[int, int] | None = None
        """(last stream id, error code) of the server's GOAWAY."""
        self.out.clear()

    @property
    def ok(self) -> int:
        """Good answers: 2xx, with a right body where one was checked."""
        return self.done - self.status_errors - self.body_errors

    def counts(self) -> dict[str, int]:
        """The counters by outcome."""
        return {
            "ok": self.ok,
            "status": self.status_errors,
            "body": self.body_errors,
            "reset": self.resets,
        }

    # -- bytes out ---------------------------------------------------------------------------

    def start(self) -> bytes:
        """Open (or reopen) the connection: the bytes to write first. Counters are kept."""
        self._reset_state()
        settings = _SETTING.pack(2, 0) + _SETTING.pack(4, self._window)  # no push; our window
        raise_by = self._window_conn - DEFAULT_WINDOW
        update = frame(WINDOW_UPDATE, 0, 0, U32.pack(raise_by)) if raise_by else b""
        return PREFACE + frame(SETTINGS, 0, 0, settings) + update

    def free(self) -> int:
        """How many more requests may go out now."""
        if self.closing:
            return 0
        return self._capacity - len(self.streams)

    def request(self, origin: int, sent: int) -> bytes:
        """The bytes of one request on a new stream, stamped with ``origin`` and ``sent``.

        Call it only when :meth:`free` is positive. The body, if any, goes as far as the
        server's windows allow; the rest is queued and appears in :attr:`out` later.
        """
        sid = self._next_id
        self._next_id = sid + 2
        if self._next_id > MAX_STREAM_ID:
            self.closing = True  # stream ids used up: a new connection after this one
        chunks: list[bytes] | None = None
        if self._sampling:
            self._check_in -= 1
            if self._check_in <= 0 or self.keep:
                self._check_in = self._check_every
                chunks = []
        stream = _Stream(origin, sent, chunks, self._peer_window)
        self.streams[sid] = stream
        frames = self._block_frames
        if len(frames) == 1 and not self._body:
            return self._head + U32.pack(sid) + frames[0][1]
        raw = b"".join(head + U32.pack(sid) + piece for head, piece in frames)
        if self._body:
            stream.pending = self._body
            raw += self._send_data(sid, stream)
        return raw

    def _send_data(self, sid: int, stream: _Stream) -> bytes:
        """DATA frames of ``stream``'s pending body, as far as the windows allow."""
        out = []
        pending = stream.pending
        while pending:
            size = min(len(pending), self._send_window, stream.window, self._max_frame)
            if size <= 0:
                break
            out.append(frame(DATA, END_STREAM if size == len(pending) else 0, sid, pending[:size]))
            pending = pending[size:]
            self._send_window -= size
            stream.window -= size
        stream.pending = pending
        return b"".join(out)

    def _flush(self) -> None:
        """Send the request bodies that waited for window."""
        for sid, stream in self.streams.items():
            if stream.pending:
                self.out += self._send_data(sid, stream)

    # -- bytes in ----------------------------------------------------------------------------

    def feed(self, data: bytes, now: int) -> int:
        """Take bytes read from the socket (any split); return the answers they completed.

        ``now`` (the transport's clock) ends the latency of each completed answer. Raises
        :class:`H2ParseError` when the server breaks the protocol.
        """
        if self._rest:
            data = self._rest + data
            self._rest = b""
        if not self._greeted and not self._greet(data):
            self._rest = data
            return 0
        before = self.done
        unpack = _HEAD.unpack_from
        streams = self.streams
        cache = self._cache
        lats = self.lats
        lats_u = self.lats_u
        recv_conn = self._recv_conn
        in_block = self._cont is not None
        pos = 0
        end = len(data)
        while end - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(data, pos)
            length = hi << 8 | lo
            stop = pos + 9 + length
            if length > MIN_FRAME:
                raise H2ParseError(f"frame of {length} bytes, larger than our MAX_FRAME_SIZE")
            if stop > end:
                break
            sid &= MAX_STREAM_ID
            if in_block:
                self._continuation(ftype, flags, sid, data[pos + 9 : stop], now)
                in_block = self._cont is not None
            elif ftype == DATA:
                recv_conn += length
                if recv_conn >= self._window_conn >> 1:
                    self.out += frame(WINDOW_UPDATE, 0, 0, U32.pack(recv_conn))
                    recv_conn = 0
                stream = streams.get(sid)
                if stream is None:
                    self._closed_stream(sid, "DATA")
                elif stream.status < 200:
                    raise H2ParseError(f"DATA before the answer's HEADERS on stream {sid}")
                elif flags & END_STREAM and stream.chunks is None and stream.status < 300:
                    # The common case inline: a good answer's last frame, body not captured.
                    if flags & PADDED:
                        payload(data, pos + 9, stop, flags)  # checks the padding
                    del streams[sid]
                    self.done += 1
                    lats.append(now - stream.origin)
                    if lats_u is not None:
                        lats_u.append(now - stream.sent)
                else:
                    if stream.chunks is not None:
                        stream.chunks.append(payload(data, pos + 9, stop, flags))
                    elif flags & PADDED:
                        payload(data, pos + 9, stop, flags)
                    if flags & END_STREAM:
                        self._complete(sid, stream, now)
                    else:
                        stream.recv += length
                        if stream.recv >= self._window >> 1:
                            self.out += frame(WINDOW_UPDATE, 0, sid, U32.pack(stream.recv))
                            stream.recv = 0
            elif ftype == HEADERS:
                if flags & (PADDED | PRIORITY_FLAG):
                    block = payload(data, pos + 9, stop, flags, PRIORITY_FLAG & flags)
                else:
                    block = data[pos + 9 : stop]
                if flags & END_HEADERS:
                    # The common case inline: a remembered block, the final answer's status.
                    status = cache.get(block, -1)
                    if status == -1:
                        status = self._remembered(block)
                    stream = streams.get(sid)
                    if status is not None and status >= 200 and stream and not stream.status:
                        stream.status = status
                        if flags & END_STREAM:
                            self._complete(sid, stream, now)
                    else:
                        self._headers(sid, flags, block, now, status)
                else:
                    self._cont = [block]
                    self._cont_sid = sid
                    self._cont_flags = flags
                    in_block = True
            else:
                self._control(ftype, flags, sid, data[pos + 9 : stop])
            pos = stop
        self._recv_conn = recv_conn
        if pos < end:
            self._rest = data[pos:]
        return self.done - before

    def _greet(self, data: bytes) -> bool:
        """Check that the server opened with SETTINGS; False: not enough bytes yet."""
        if data.startswith(b"HTTP/") or (len(data) >= 4 and data[3] != SETTINGS):
            line = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0][:80].decode("latin-1")
            raise H2ParseError(f"sent the HTTP/2 preface and the server answered {line!r}")
        if len(data) < 9:
            return False
        if data[4] & ACK or U32.unpack_from(data, 5)[0]:
            raise H2ParseError("the server's first frame is not its SETTINGS")
        self._greeted = True
        return True

    def _closed_stream(self, sid: int, what: str) -> None:
        """A frame on a stream not in flight: fine if closed, an error if never opened."""
        if sid == 0 or not sid & 1 or sid >= self._next_id:
            raise H2ParseError(f"{what} on stream {sid}, which we did not open")

    def _continuation(self, ftype: int, flags: int, sid: int, payload: bytes, now: int) -> None:
        cont = self._cont
        assert cont is not None
        if ftype != CONTINUATION or sid != self._cont_sid:
            raise H2ParseError(f"frame type {ftype} on stream {sid} inside a header block")
        cont.append(payload)
        if flags & END_HEADERS:
            self._cont = None
            block = b"".join(cont)
            status = self._cache.get(block, -1)
            if status == -1:
                status = self._remembered(block)
            self._headers(sid, self._cont_flags, block, now, status)

    def _remembered(self, block: bytes) -> int | None:
        """The status of a remembered table-free block (its insertions queued), else -1."""
        hit = self._free.get(block)
        if hit is None:
            return -1
        if hit[1]:
            self._pending.extend(hit[1])
            self._cache.clear()  # the table has changed
        return hit[0]

    def _headers(self, sid: int, flags: int, block: bytes, now: int, status: int | None) -> None:
        """A whole header block; ``status`` is its remembered status, or -1: decode it."""
        headers: tuple[tuple[str, str], ...] = ()
        if status == -1:
            status, headers = self._decode(block)
        stream = self.streams.get(sid)
        if stream is None:
            self._closed_stream(sid, "HEADERS")  # decoded all the same: HPACK's table
            return
        if stream.status >= 200:  # trailers
            if not flags & END_STREAM:
                raise H2ParseError(f"trailers without END_STREAM on stream {sid}")
        elif status is None:
            raise H2ParseError(f"an answer without :status on stream {sid}")
        else:
            stream.status = status
            stream.headers = headers
            if status < 200:  # informational: the final answer follows
                if flags & END_STREAM:
                    raise H2ParseError(f"END_STREAM on a {status} answer (stream {sid})")
                return
        if flags & END_STREAM:
            self._complete(sid, stream, now)

    def _decode(self, block: bytes) -> tuple[int | None, tuple[tuple[str, str], ...]]:
        decoder = self._decoder
        table = decoder.header_table
        for name, value in self._pending:  # the remembered blocks' insertions, in order
            table.add(name, value)
        self._pending.clear()
        entries = table.dynamic_entries
        size = len(entries)
        first = entries[0] if size else None
        try:
            fields = decoder.decode(block, raw=True)
        except hpack.HPACKError as exc:
            raise H2ParseError(f"HPACK: {exc}") from None
        status: int | None = None
        for name, value in fields:
            if name == b":status":
                if len(value) != 3 or not value.isdigit():
                    raise H2ParseError(f"bad :status {bytes(value)!r}")
                status = int(value)
                break
        if self.keep:  # every block decoded: its headers are kept
            pass
        elif len(entries) == size and (entries[0] if size else None) is first:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[block] = status
        else:
            self._cache.clear()
            self._remember_free(block, fields, status)
        headers: tuple[tuple[str, str], ...] = ()
        if self.keep:
            headers = tuple(
                (bytes(n).decode("latin-1"), bytes(v).decode("latin-1")) for n, v in fields
            )
        return status, headers

    def _remember_free(self, block: bytes, fields: object, status: int | None) -> None:
        """Remember ``block`` if it refers to no dynamic-table entry (it decodes alike with an
        empty table), with the insertions it makes: its next copies cost a look-up, and their
        insertions are made in the table only before a block that needs it is decoded."""
        if block[:1] and block[0] & 0xE0 == 0x20:  # a table size update: not remembered
            return
        fresh = hpack.Decoder()
        try:
            if fresh.decode(block, raw=True) != fields:
                return
        except hpack.HPACKError:  # it refers to the dynamic table
            return
        if len(self._free) >= _CACHE_MAX:
            self._free.clear()
        self._free[block] = (status, tuple(reversed(fresh.header_table.dynamic_entries)))

    def _complete(self, sid: int, stream: _Stream, now: int) -> None:
        del self.streams[sid]
        self.done += 1
        self.lats.append(now - stream.origin)
        if self.lats_u is not None:
            self.lats_u.append(now - stream.sent)
        status = stream.status
        verdict: ErrorKind | None = None
        if not 200 <= status < 300:
            verdict = "status"
            self.status_errors += 1
        chunks = stream.chunks
        if chunks is not None:
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            check = self._check
            if verdict is None and check is not None and not check(body):
                verdict = "body"
                self.body_errors += 1
            if self.keep:
                self.answers.append(Answer(sid, status, stream.headers, body, verdict))

    def _control(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        """The frames that are not an answer's: SETTINGS, PING, GOAWAY, RST_STREAM..."""
        size = len(payload)
        if ftype == SETTINGS:
            if sid:
                raise H2ParseError("SETTINGS on a stream")
            if flags & ACK:
                if size:
                    raise H2ParseError("SETTINGS ACK with a payload")
                return
            if size % 6:
                raise H2ParseError(f"SETTINGS of {size} bytes (not a multiple of 6)")
            for i in range(0, size, 6):
                self._setting(*_SETTING.unpack_from(payload, i))
            self.out += frame(SETTINGS, ACK, 0)
            self._flush()
        elif ftype == PING:
            if sid or size != 8:
                raise H2ParseError("PING on a stream or not of 8 bytes")
            if not flags & ACK:
                self.out += frame(PING, ACK, 0, payload)
        elif ftype == WINDOW_UPDATE:
            if size != 4:
                raise H2ParseError("WINDOW_UPDATE not of 4 bytes")
            increment = U32.unpack(payload)[0] & MAX_STREAM_ID
            if not increment:
                raise H2ParseError(f"WINDOW_UPDATE of 0 on stream {sid}")
            if not sid:
                self._send_window += increment
                if self._send_window > MAX_STREAM_ID:
                    raise H2ParseError("connection window above 2**31-1")
            elif sid in self.streams:
                self.streams[sid].window += increment
            self._flush()
        elif ftype == RST_STREAM:
            if not sid or size != 4:
                raise H2ParseError("RST_STREAM on stream 0 or not of 4 bytes")
            if self.streams.pop(sid, None) is not None:
                self.resets += 1
            else:
                self._closed_stream(sid, "RST_STREAM")
        elif ftype == GOAWAY:
            if sid or size < 8:
                raise H2ParseError("GOAWAY on a stream or shorter than 8 bytes")
            last = U32.unpack_from(payload, 0)[0] & MAX_STREAM_ID
            self.goaway = (last, U32.unpack_from(payload, 4)[0])
            self.closing = True
            for refused in [s for s in self.streams if s > last]:
                del self.streams[refused]
                self.resets += 1
        elif ftype == PUSH_PROMISE:
            raise H2ParseError("PUSH_PROMISE, though our SETTINGS disabled push")
        elif ftype == CONTINUATION:
            raise H2ParseError(f"CONTINUATION without HEADERS on stream {sid}")
        # PRIORITY and frame types we do not know are ignored (RFC 9113 4.1, 5.5).

    def _setting(self, key: int, value: int) -> None:
        if key == 3:  # MAX_CONCURRENT_STREAMS
            self._capacity = min(self.want, value)
        elif key == 4:  # INITIAL_WINDOW_SIZE
            if value > MAX_STREAM_ID:
                raise H2ParseError("INITIAL_WINDOW_SIZE above 2**31-1")
            delta = value - self._peer_window
            self._peer_window = value
            for stream in self.streams.values():
                stream.window += delta
        elif key == 5:  # MAX_FRAME_SIZE
            if not MIN_FRAME <= value <= (1 << 24) - 1:
                raise H2ParseError(f"MAX_FRAME_SIZE {value} out of range")
            self._max_frame = value
        elif key == 2 and value > 1:
            raise H2ParseError(f"ENABLE_PUSH {value}")

    def overdue(self, limit: int) -> int:
        """How many requests in flight were sent before ``limit``."""
        return sum(1 for s in self.streams.values() if s.sent < limit)
