"""The raw client's sans-IO WebSocket core, without sockets: bytes in, messages out."""

from __future__ import annotations

import random

import pytest

from loadgen.websocket import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ClientCore,
    HandshakeError,
    Message,
    ProtocolError,
    accept_for,
    check_handshake,
    encode_frame,
    handshake_request,
    mask,
    new_key,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3's example


def answer(key: str = KEY, extra: str = "", status: str = "101 Switching Protocols") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_for(key)}\r\n{extra}\r\n"
    ).encode()


def server(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A frame as a server sends it: unmasked."""
    return encode_frame(opcode, payload, None, fin)


def upgraded() -> ClientCore:
    core = ClientCore(KEY)
    assert core.feed(answer()) == 0
    assert core.upgraded and not core.partial
    return core


def client_frames(data: bytes) -> list[tuple[bool, int, bytes]]:
    """Decode the client's frames as a server would, insisting that each is masked."""
    frames = []
    pos = 0
    while pos < len(data):
        first, second = data[pos], data[pos + 1]
        assert second & 0x80, "client frames must be masked"
        n = second & 0x7F
        pos += 2
        if n == 126:
            n = int.from_bytes(data[pos : pos + 2])
            pos += 2
        elif n == 127:
            n = int.from_bytes(data[pos : pos + 8])
            pos += 8
        key = data[pos : pos + 4]
        pos += 4
        frames.append((bool(first & 0x80), first & 0x0F, mask(data[pos : pos + n], key)))
        pos += n
    return frames


# --- handshake --------------------------------------------------------------------------------


def test_accept_value_is_the_rfc_example() -> None:
    assert accept_for(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_keys_are_random_16_bytes() -> None:
    keys = {new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(k) == 24 and k.endswith("==") for k in keys)
    assert ClientCore().key != ClientCore().key


def test_handshake_request_bytes() -> None:
    req = handshake_request("/ws-echo/", "127.0.0.1:8000", KEY)
    assert req == (
        b"GET /ws-echo/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert ClientCore(KEY).request("/a", "h") == handshake_request("/a", "h", KEY)
    with pytest.raises(ValueError, match="path"):
        handshake_request("/a b", "h", KEY)


def test_a_right_101_passes() -> None:
    check_handshake(answer(), KEY)
    # Names and values case-insensitively, Connection as a token list.
    check_handshake(
        b"HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
        b"sec-websocket-accept: " + accept_for(KEY).encode() + b"\r\n\r\n",
        KEY,
    )


@pytest.mark.parametrize(
    ("head", "kind", "phrase"),
    [
        (answer(status="404 Not Found"), "status", "answered 404 Not Found instead of 101"),
        (answer(status="200 OK"), "status", "answered 200 OK"),
        (answer(key=new_key()), "parse", "wrong Sec-WebSocket-Accept"),
        (answer().replace(b"Upgrade: websocket\r\n", b""), "parse", "Upgrade: None"),
        (answer().replace(b"Connection: Upgrade", b"Connection: close"), "parse", "Connection"),
        (answer(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"), "parse", "extensions"),
        (answer(extra="Sec-WebSocket-Protocol: chat\r\n"), "parse", "protocol"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "parse", "not HTTP/1.1"),
        (answer(extra="nonsense\r\n"), "parse", "malformed header"),
    ],
)
def test_a_wrong_answer_is_named(head: bytes, kind: str, phrase: str) -> None:
    with pytest.raises(HandshakeError, match=phrase) as info:
        check_handshake(head, KEY)
    assert info.value.kind == kind
    with pytest.raises(HandshakeError):
        ClientCore(KEY).feed(head)


def test_handshake_split_at_every_byte_with_frames_after_the_head() -> None:
    data = answer() + server(OP_TEXT, b"hi") + server(OP_BINARY, b"\x00\xff")
    core = ClientCore(KEY)
    done = sum(core.feed(data[i : i + 1]) for i in range(len(data)))
    assert done == 2
    assert core.messages == [Message(b"hi", True), Message(b"\x00\xff", False)]
    assert not core.partial


def test_an_endless_head_is_refused() -> None:
    core = ClientCore(KEY)
    core.feed(b"HTTP/1.1 101 Switching Protocols\r\n")
    with pytest.raises(HandshakeError, match="no end of the answer head"):
        core.feed(b"X-Filler: " + b"a" * 20000 + b"\r\n")


# --- client frames ----------------------------------------------------------------------------


def test_masking_is_an_xor_with_the_key_repeated() -> None:
    rng = random.Random(1)
    for n in (0, 1, 3, 4, 5, 125, 126, 1000):
        payload = rng.randbytes(n)
        key = rng.randbytes(4)
        slow = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        assert mask(payload, key) == slow
        assert mask(slow, key) == payload


@pytest.mark.parametrize(
    ("n", "head"),
    [
        (0, b"\x81\x80"),
        (125, b"\x81\xfd"),
        (126, b"\x81\xfe\x00\x7e"),
        (65535, b"\x81\xfe\xff\xff"),
    ],
)
def test_client_frame_lengths(n: int, head: bytes) -> None:
    frame = ClientCore().message(b"a" * n, True)
    assert frame.startswith(head)
    assert len(frame) == len(head) + 4 + n
    assert client_frames(frame) == [(True, OP_TEXT, b"a" * n)]


def test_64_bit_length_and_fresh_keys() -> None:
    core = ClientCore()
    big = bytes(range(256)) * 300
    frame = core.message(big, False)
    assert frame[:2] == b"\x82\xff" and int.from_bytes(frame[2:10]) == len(big)
    assert client_frames(frame) == [(True, OP_BINARY, big)]
    keys = {core.message(b"x", True)[2:6] for _ in range(20)}
    assert len(keys) > 15  # a fresh random key per frame


def test_ping_and_close_frames() -> None:
    core = ClientCore()
    assert client_frames(core.ping(b"p")) == [(True, OP_PING, b"p")]
    with pytest.raises(ValueError, match="125"):
        core.ping(b"x" * 126)
    assert client_frames(core.close(1000, "bye")) == [(True, OP_CLOSE, b"\x03\xe8bye")]
    assert core.close_sent


# --- server frames ----------------------------------------------------------------------------

MESSAGES = [
    (OP_TEXT, b""),
    (OP_TEXT, "héllo wörld ✓".encode()),
    (OP_BINARY, bytes(range(256))),
    (OP_BINARY, b"b" * 125),
    (OP_TEXT, b"c" * 126),
    (OP_BINARY, b"d" * 65535),
    (OP_BINARY, b"e" * 65536),
    (OP_TEXT, b"f" * 70000),
]


def expected() -> list[Message]:
    return [Message(p, op == OP_TEXT) for op, p in MESSAGES]


def test_every_length_form_byte_by_byte() -> None:
    core = upgraded()
    frames = [server(op, p) for op, p in MESSAGES]
    stream = b"".join(frames)
    boundaries = {sum(map(len, frames[:k])) for k in range(len(frames) + 1)}
    done = 0
    for i in range(len(stream)):
        done += core.feed(stream[i : i + 1])
        assert core.partial == (i + 1 not in boundaries)
    assert done == len(MESSAGES)
    assert core.messages == expected()


def test_every_length_form_in_one_chunk_and_random_splits() -> None:
    stream = b"".join(server(op, p) for op, p in MESSAGES)
    core = upgraded()
    assert core.feed(stream) == len(MESSAGES)
    assert core.messages == expected()
    rng = random.Random(7)
    for _ in range(20):
        core = upgraded()
        pos = 0
        while pos < len(stream):
            step = rng.choice((1, 2, 3, 9, 130, 5000, 70000))
            core.feed(stream[pos : pos + step])
            pos += step
        assert core.messages == expected()


def test_fragmented_messages_with_control_frames_between_fragments() -> None:
    snow = "☃".encode()  # split across two fragments: UTF-8 is checked on the whole message
    stream = (
        server(OP_TEXT, b"ab" + snow[:1], fin=False)
        + server(OP_PING, b"are you there")
        + server(OP_CONTINUATION, snow[1:], fin=False)
        + server(OP_PONG, b"pong!")
        + server(OP_CONTINUATION, b"cd")
        + server(OP_BINARY, b"\x01", fin=False)
        + server(OP_CONTINUATION, b"\x02")
    )
    for step in (1, len(stream)):
        core = upgraded()
        done = 0
        for pos in range(0, len(stream), step):
            done += core.feed(stream[pos : pos + step])
        assert done == 2
        assert core.messages == [
            Message(b"ab" + snow + b"cd", True),
            Message(b"\x01\x02", False),
        ]
        assert core.pongs == [b"pong!"]
        assert client_frames(bytes(core.outgoing)) == [(True, OP_PONG, b"are you there")]


def test_partial_while_a_fragmented_message_is_open() -> None:
    core = upgraded()
    core.feed(server(OP_TEXT, b"a", fin=False))
    assert core.partial
    core.feed(server(OP_CONTINUATION, b"b"))
    assert not core.partial and core.messages == [Message(b"ab", True)]


def test_server_close_is_answered_and_ends_the_connection() -> None:
    core = upgraded()
    core.feed(server(OP_TEXT, b"last") + server(OP_CLOSE, b"\x03\xe9going away"))
    assert core.closed and core.close_code == 1001 and core.close_reason == "going away"
    assert core.messages == [Message(b"last", True)]
    assert client_frames(bytes(core.outgoing)) == [(True, OP_CLOSE, b"\x03\xe9")]
    with pytest.raises(ProtocolError, match="after the server's close"):
        core.feed(server(OP_TEXT, b"more"))


def test_close_without_a_code_and_after_the_clients_close() -> None:
    core = upgraded()
    core.feed(server(OP_CLOSE, b""))
    assert core.closed and core.close_code is None
    assert client_frames(bytes(core.outgoing)) == [(True, OP_CLOSE, b"\x03\xe8")]
    core = upgraded()
    core.close()
    core.feed(server(OP_CLOSE, b"\x03\xe8"))
    assert core.closed and core.close_code == 1000 and not core.outgoing  # no second close


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (encode_frame(OP_TEXT, b"hi", b"abcd"), "masked frame from the server"),
        (b"\xc1\x00", "reserved bits"),
        (b"\x91\x00", "reserved bits"),
        (server(0x3, b""), "unknown data opcode 0x3"),
        (server(0xB, b""), "unknown control opcode 0xb"),
        (server(OP_PING, b"", fin=False), "fragmented control frame"),
        (server(OP_PING, b"x" * 126), "control frame of 126 bytes"),
        (server(OP_CONTINUATION, b"x"), "continuation frame with no message begun"),
        (server(OP_TEXT, b"a", fin=False) + server(OP_TEXT, b"b"), "new message inside"),
        (server(OP_TEXT, b"\xff\xfe"), "invalid UTF-8"),
        (server(OP_TEXT, b"a", False) + server(OP_CONTINUATION, b"\xe2\x98"), "invalid UTF-8"),
        (server(OP_CLOSE, b"\x03"), "1-byte payload"),
        (server(OP_CLOSE, b"\x03\xed"), "invalid code 1005"),
        (server(OP_CLOSE, b"\x03\xe8\xff"), "not UTF-8"),
        (b"\x82\x7f" + (1 << 63).to_bytes(8), "top bit"),
        (b"\x82\x7f" + (1 << 40).to_bytes(8), "message over"),
    ],
)
def test_protocol_violations_are_errors(data: bytes, phrase: str) -> None:
    core = upgraded()
    with pytest.raises(ProtocolError, match=phrase) as info:
        for i in range(len(data)):  # found however the bytes arrive
            core.feed(data[i : i + 1])
    assert info.value.kind == "parse"


def test_a_fragmented_message_over_the_limit_is_an_error() -> None:
    core = ClientCore(KEY, max_message=10)
    core.feed(answer() + server(OP_BINARY, b"x" * 6, fin=False))
    with pytest.raises(ProtocolError, match="message over 10 bytes"):
        core.feed(server(OP_CONTINUATION, b"y" * 6))
