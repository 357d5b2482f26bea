"""The sans-IO HTTP/2 client core, against hyper-h2's server side joined by a fake link."""

from __future__ import annotations

import struct
from array import array

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest

from loadgen.http2 import H2Client
from loadgen.http2_wire import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    H2ParseError,
    encode_header_block,
    frame,
    hpack_int,
)

HELLO = b"<!DOCTYPE html><html><body><p>Hello world!</p></body></html>\n"


class Server:
    """hyper-h2's server side; what it received as events, what it sends as bytes."""

    def __init__(self, **settings: int) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        codes = {name: h2.settings.SettingCodes[name.upper()] for name in settings}
        initial = {codes[name]: value for name, value in settings.items()}
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values=initial)
        self.conn.initiate_connection()
        self.requests: list[tuple[int, dict[bytes, bytes], bytes]] = []
        self.bodies: dict[int, bytes] = {}
        self.events: list[h2.events.Event] = []
        self.pending: dict[int, bytes] = {}

    def receive(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            self.events.append(event)
            if isinstance(event, h2.events.RequestReceived):
                self.requests.append((event.stream_id, dict(event.headers), b""))
                self.bodies[event.stream_id] = b""
            elif isinstance(event, h2.events.DataReceived):
                self.bodies[event.stream_id] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.flush()

    def answer(self, sid: int, status: int = 200, body: bytes = HELLO) -> None:
        headers = [(b":status", str(status).encode()), (b"content-length", b"%d" % len(body))]
        self.conn.send_headers(sid, headers, end_stream=not body)
        if body:
            self.pending[sid] = body
            self.flush()

    def flush(self) -> None:
        """Send the answer bodies as far as the client's windows allow."""
        for sid, body in list(self.pending.items()):
            while body:
                room = min(self.conn.local_flow_control_window(sid), len(body))
                size = min(room, self.conn.max_outbound_frame_size)
                if size <= 0:
                    break
                self.conn.send_data(sid, body[:size], end_stream=size == len(body))
                body = body[size:]
            self.pending[sid] = body
            if not body:
                del self.pending[sid]

    def send(self) -> bytes:
        return bytes(self.conn.data_to_send())


def connect(server: Server | None = None, **kw: object) -> tuple[H2Client, Server]:
    kw.setdefault("authority", "example.test:8000")
    client = H2Client(**kw)  # type: ignore[arg-type]
    server = server or Server()
    server.receive(client.start())
    client.feed(server.send(), 0)
    server.receive(bytes(client.out))
    client.out.clear()
    return client, server


def feed_split(client: H2Client, data: bytes, step: int, now: int = 0) -> int:
    done = 0
    for i in range(0, len(data), step):
        done += client.feed(data[i : i + step], now)
    return done


def test_the_request_header_block_uses_static_entries_and_literals_only() -> None:
    block = encode_header_block("/hello/", "example.test:8000", headers=[("X-Trace", "1")])
    decoded = hpack.Decoder().decode(block, raw=True)
    assert decoded == [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/hello/"),
        (b":authority", b"example.test:8000"),
        (b"x-trace", b"1"),
    ]
    assert encode_header_block("/", "h", "https", "POST", body=b"ab")[:3] == b"\x83\x87\x84"
    with pytest.raises(ValueError, match="connection-specific"):
        encode_header_block("/", "h", headers=[("Connection", "close")])
    with pytest.raises(ValueError, match="path"):
        encode_header_block("hello", "h")
    assert hpack_int(1337, 5, 0) == bytes([31, 154, 10])  # RFC 7541 C.1.2


def test_requests_and_answers_between_the_client_and_a_server() -> None:
    client, server = connect(path="/hello/", streams=4)
    assert isinstance(server.events[0], h2.events.RemoteSettingsChanged)
    assert client.free() == 4
    client.lats = lats = array("q")
    client.lats_u = lats_u = array("q")
    server.receive(b"".join(client.request(10 * i, 20 * i) for i in range(4)))
    assert client.free() == 0
    assert [sid for sid, _, _ in server.requests] == [1, 3, 5, 7]
    assert server.requests[0][1][b":path"] == b"/hello/"
    assert server.requests[0][1][b":authority"] == b"example.test:8000"
    for sid in (3, 1, 7, 5):
        server.answer(sid)
    assert client.feed(server.send(), 100) == 4
    assert client.ok == client.done == 4 and client.free() == 4
    assert sorted(lats) == [70, 80, 90, 100] and sorted(lats_u) == [40, 60, 80, 100]


@pytest.mark.parametrize("step", [1, 7, 100])
def test_any_split_of_the_byte_stream(step: int) -> None:
    client = H2Client(authority="x", streams=3, keep_answers=True)
    server = Server()
    server.receive(client.start())
    server.receive(b"".join(client.request(0, 0) for _ in range(3)))
    server.answer(1, 200, b"one")
    server.answer(3, 404, b"")
    server.answer(5, 200, b"x" * 40_000)
    assert feed_split(client, server.send(), step) == 3
    answers = {a.stream: a for a in client.answers}
    assert answers[1].body == b"one" and answers[1].error is None
    assert (":status", "200") in answers[1].headers
    assert answers[3].status == 404 and answers[3].error == "status"
    assert answers[5].body == b"x" * 40_000
    assert client.counts() == {"ok": 2, "status": 1, "body": 0, "reset": 0}


def test_body_checks_are_sampled() -> None:
    client, server = connect(streams=1, kind="html", check_every=3)
    for _ in range(6):
        server.receive(client.request(0, 0))
        server.answer(server.requests[-1][0], 200, b"nope")
        client.feed(server.send(), 0)
    assert client.done == 6 and client.body_errors == 2  # answers 1 and 4


def test_a_header_block_split_over_continuation_frames_and_padding() -> None:
    client, _ = connect(streams=2, keep_answers=True)
    client.request(0, 0)
    client.request(0, 0)
    encoder = hpack.Encoder()
    block = encoder.encode([(b":status", b"200"), (b"x-long", b"v" * 50)])
    padded_head = bytes([3]) + block[:10] + b"\0\0\0"
    data = (
        frame(HEADERS, PADDED, 1, padded_head)
        + frame(CONTINUATION, 0, 1, block[10:20])
        + frame(CONTINUATION, END_HEADERS, 1, block[20:])
        + frame(DATA, PADDED | END_STREAM, 1, bytes([4]) + b"body" + b"\0" * 4)
    )
    assert feed_split(client, data, 5) == 1
    answer = client.answers[0]
    assert answer.body == b"body" and ("x-long", "v" * 50) in answer.headers
    # A frame of another stream inside a header block breaks the protocol.
    block = encoder.encode([(b":status", b"200")])
    bad = frame(HEADERS, 0, 3, block) + frame(DATA, END_STREAM, 3, b"x")
    with pytest.raises(H2ParseError, match="inside a header block"):
        client.feed(bad, 0)


def test_trailers_and_informational_answers() -> None:
    client, _ = connect(streams=1, keep_answers=True)
    client.request(0, 0)
    encoder = hpack.Encoder()
    data = (
        frame(HEADERS, END_HEADERS, 1, encoder.encode([(b":status", b"103")]))
        + frame(HEADERS, END_HEADERS, 1, encoder.encode([(b":status", b"200")]))
        + frame(DATA, 0, 1, b"ab")
        + frame(HEADERS, END_HEADERS | END_STREAM, 1, encoder.encode([(b"x-t", b"1")]))
    )
    assert client.feed(data, 0) == 1
    assert client.answers[0].status == 200 and client.answers[0].body == b"ab"


def test_repeated_header_blocks_are_decoded_once_and_the_table_kept_in_step() -> None:
    client, server = connect(streams=1)
    client.lats = []
    for i in range(6):
        server.receive(client.request(0, 0))
        sid = server.requests[-1][0]
        # hyper-h2 indexes new fields: the first answer inserts, the rest reference the table;
        # a changing value (a date) inserts again.
        headers = [(b":status", b"200"), (b"server", b"h2"), (b"date", b"d%d" % (i // 2))]
        server.conn.send_headers(sid, headers)
        server.conn.send_data(sid, b"hi", end_stream=True)
        assert client.feed(server.send(), 0) == 1
    assert client.ok == 6 and len(client._cache) == 1


def test_blocks_that_insert_into_the_table_are_remembered_and_their_insertions_replayed() -> None:
    # As nginx's: literals with incremental indexing, the same bytes answer after answer.
    client, _ = connect(streams=8)
    a = b"\x48\x03404"  # :status 404, inserted into the dynamic table
    p = b"\x48\x03200"  # :status 200, inserted
    blocks = [a, p, p, a, p, b"\xc0", b"\xc2"]  # then the 3rd and 5th newest entries
    data = b""
    for i, block in enumerate(blocks):
        client.request(0, 0)
        data += frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, block)
    assert feed_split(client, data, 1000) == 7
    assert len(client._free) == 2  # a and p: decoded once each
    # The table was kept in step: 0xc0 is the third newest entry (200), 0xc2 the fifth (404).
    assert client.counts() == {"ok": 4, "status": 3, "body": 0, "reset": 0}


def test_flow_control_windows_are_given_back_in_batches() -> None:
    client, server = connect(streams=1, window=65535, connection_window=65535)
    server.receive(client.request(0, 0))
    # More than both windows: the server waits for our WINDOW_UPDATEs.
    server.answer(1, 200, b"z" * 200_000)
    total = 0
    for _ in range(50):
        total += client.feed(server.send(), 0)
        if total:
            break
        updates = bytes(client.out)
        client.out.clear()
        assert updates, "the client owes the server window"
        server.receive(updates)
    assert total == 1 and client.ok == 1
    kinds = [e for e in server.events if isinstance(e, h2.events.WindowUpdated)]
    assert {e.stream_id for e in kinds} == {0, 1}


def test_request_bodies_wait_for_the_servers_window() -> None:
    body = b"b" * 100_000
    client, server = connect(streams=2, method="POST", body=body)
    server.receive(client.request(0, 0))
    assert server.bodies[1] == body[:65535]  # the default windows
    assert server.requests[0][1][b"content-length"] == b"100000"
    for _ in range(10):
        client.feed(server.send(), 0)
        if client.out:
            server.receive(bytes(client.out))
            client.out.clear()
    assert server.bodies[1] == body


def test_ping_settings_and_max_concurrent_streams() -> None:
    client, _ = connect(Server(max_concurrent_streams=2), streams=8)
    assert client.free() == 2
    assert client.feed(frame(PING, 0, 0, b"12345678"), 0) == 0
    assert bytes(client.out) == frame(PING, 1, 0, b"12345678")
    client.out.clear()
    client.feed(frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 5)), 0)
    assert bytes(client.out) == frame(SETTINGS, 1, 0) and client.free() == 5


def test_rst_stream_and_goaway_count_resets_and_close() -> None:
    client, server = connect(streams=4)
    for _ in range(4):
        client.request(0, 0)
    client.feed(frame(RST_STREAM, 0, 3, struct.pack(">I", 2)), 0)
    assert client.resets == 1 and client.free() == 1
    client.feed(frame(GOAWAY, 0, 0, struct.pack(">II", 5, 0)), 0)
    assert client.closing and client.goaway == (5, 0)
    assert client.resets == 2 and sorted(client.streams) == [1, 5] and client.free() == 0
    server.receive(client.start())  # a reconnect: fresh state, counters kept
    assert (client.resets, client.closing, client.streams) == (2, False, {})


def test_the_connection_window_update_when_half_consumed() -> None:
    client, _ = connect(streams=1, connection_window=100_000)
    client.request(0, 0)
    encoder = hpack.Encoder()
    client.feed(frame(HEADERS, END_HEADERS, 1, encoder.encode([(b":status", b"200")])), 0)
    client.feed(frame(DATA, 0, 1, b"d" * 16_000) * 3, 0)
    assert not client.out  # 48 000 bytes: less than half the window
    client.feed(frame(DATA, 0, 1, b"d" * 16_000), 0)
    assert frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 64_000))[:9] in bytes(client.out)


def test_an_http1_server_is_a_clear_parse_error() -> None:
    client = H2Client(authority="x")
    assert client.start().startswith(PREFACE)
    with pytest.raises(H2ParseError, match=r"answered .HTTP/1\.1 400 Bad Request."):
        client.feed(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 0)
    client.start()
    assert client.feed(b"HTT", 0) == 0  # not enough to say yet
    with pytest.raises(H2ParseError, match=r"HTTP/1\.0 200"):
        client.feed(b"P/1.0 200 OK\r\n\r\n", 0)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (frame(DATA, END_STREAM, 9, b"x"), "did not open"),
        (frame(DATA, END_STREAM, 1, b"x"), "before the answer's HEADERS"),
        (frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff"), "HPACK"),
        (frame(PING, 0, 0, b"123"), "PING"),
        (frame(SETTINGS, 0, 0, b"12345"), "multiple of 6"),
        (frame(5, END_HEADERS, 1, b"\0\0\0\2"), "PUSH_PROMISE"),
        (b"\x01\x00\x00" + bytes([DATA, 0]) + b"\0\0\0\1", "larger than our MAX_FRAME_SIZE"),
        (frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x40\x01a\x01b"), "without :status"),
    ],
)
def test_protocol_errors(data: bytes, match: str) -> None:
    client, _ = connect(streams=1)
    client.request(0, 0)
    with pytest.raises(H2ParseError, match=match):
        client.feed(data, 0)


def test_the_client_checks_what_it_is_given() -> None:
    with pytest.raises(ValueError, match="streams"):
        H2Client(streams=0)
    with pytest.raises(ValueError, match="window"):
        H2Client(window=0)
