"""The raw client's sans-IO HTTP/1.1 core, without sockets: bytes in, answers out."""

from __future__ import annotations

import pytest

from loadgen.http1 import (
    ERROR_KINDS,
    Answer,
    KnownAnswer,
    ParseError,
    ResponseParser,
    encode_request,
    host_header_value,
    parse_answers,
)

JSON_BODY = b'{"message":"Hello world!"}'


def response(
    body: bytes = JSON_BODY, status: str = "200 OK", headers: str = "", version: str = "1.1"
) -> bytes:
    return (
        f"HTTP/{version} {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


def chunked(parts: list[bytes]) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return head + chunks + b"0\r\n\r\n"


def test_request_bytes_are_built_once_and_exact() -> None:
    req = encode_request("/hello/", host_header_value("127.0.0.1", 8000))
    assert req == b"GET /hello/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
    assert host_header_value("::1", 8080) == "[::1]:8080"
    assert host_header_value("localhost", 80) == "localhost"
    with pytest.raises(ValueError):
        encode_request("hello", "x")
    with pytest.raises(ValueError):
        encode_request("/a b", "x")
    with pytest.raises(ValueError):
        encode_request("/", "x\r\nEvil: 1")


def test_request_with_method_headers_and_body() -> None:
    req = encode_request(
        "/items?x=1",
        "127.0.0.1:8000",
        method="POST",
        headers=[("Content-Type", "application/json"), ("X-Trace", "a\tb")],
        body=b'{"a": 1}',
    )
    assert req == (
        b"POST /items?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"Content-Type: application/json\r\nX-Trace: a\tb\r\nContent-Length: 8\r\n\r\n"
        b'{"a": 1}'
    )
    # POST, PUT and PATCH say Content-Length: 0 without a body; a GET stays as wrk sends it.
    assert encode_request("/", "h", method="PUT").endswith(b"\r\nContent-Length: 0\r\n\r\n")
    assert b"Content-Length" not in encode_request("/", "h", method="DELETE")
    assert encode_request("/", "h", body=b"", close=True).endswith(
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"method": "HEAD"}, "HEAD is not supported"),
        ({"method": "connect"}, "CONNECT is not supported"),
        ({"method": "GET /x HTTP/1.1\r\nX:"}, "method must be a token"),
        ({"method": ""}, "method must be a token"),
        ({"headers": [("Bad Name", "1")]}, "header name must be a token"),
        ({"headers": [("X-A", "1\r\nEvil: 2")]}, "control characters"),
        ({"headers": [("X-A", "1\nEvil: 2")]}, "control characters"),
        ({"headers": [("X-A", "\x85")]}, "control characters"),
        ({"headers": [("Host", "x")]}, "set by the client"),
        ({"headers": [("content-length", "9")]}, "set by the client"),
        ({"headers": [("Transfer-Encoding", "chunked")]}, "set by the client"),
        ({"path": "/h\u00e9llo"}, "path must be ASCII"),
        ({"path": "/a\x00"}, "control characters"),
        ({"host_header": "h\u00e9llo"}, "host header must be ASCII"),
        ({"host_header": "a b"}, "must not hold spaces"),
        ({"host_header": ""}, "host header is empty"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(kwargs: dict[str, object], words: str) -> None:
    args: dict[str, object] = {"path": "/", "host_header": "127.0.0.1:8000"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        encode_request(**args)  # type: ignore[arg-type]


def test_content_length_answer() -> None:
    assert parse_answers(response(), "json") == [Answer(200, True, JSON_BODY, None)]


def test_chunked_answer() -> None:
    data = chunked([b'{"message":', b'"Hello world!"}'])
    assert parse_answers(data, "json") == [Answer(200, True, JSON_BODY, None)]


@pytest.mark.parametrize("data", [response(), chunked([b'{"message":"Hello ', b'world!"}'])])
def test_split_at_every_byte(data: bytes) -> None:
    for cut in range(1, len(data)):
        parser = ResponseParser("json", check_every=1)
        assert parser.feed(data[:cut]) == 0
        assert parser.feed(data[cut:]) == 1, cut
        assert (parser.ok, parser.body_errors) == (1, 0)
    parser = ResponseParser("json", check_every=1)
    assert sum(parser.feed(data[i : i + 1]) for i in range(len(data))) == 1
    assert parser.ok == 1


def test_pipelined_answers_in_one_chunk_and_parser_reuse() -> None:
    data = response() + chunked([JSON_BODY]) + response(status="404 Not Found")
    parser = ResponseParser("json", check_every=1)
    assert parser.feed(data) == 3
    assert parser.counts() == {"ok": 2, "status": 1, "body": 0}
    assert parser.feed(response() * 2) == 2  # the same parser goes on, answer after answer
    assert parser.done == 5


def test_connection_close_answer() -> None:
    parser = ResponseParser(keep_answers=True)
    assert parser.feed(response()) == 1
    assert parser.must_close is False
    assert parser.feed(response(headers="Connection: close\r\n")) == 1
    assert [a.keep_alive for a in parser.answers] == [True, False]
    parser.reset()  # a new connection
    assert [parser.must_close, parser.feed(response()), parser.ok] == [False, 1, 3]


def test_http10_without_keep_alive_must_close() -> None:
    parser = ResponseParser()
    parser.feed(response(version="1.0"))
    assert parser.must_close


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTX/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_input_is_a_parse_error(garbage: bytes) -> None:
    parser = ResponseParser()
    with pytest.raises(ParseError):
        parser.feed(garbage)
    parser.reset()
    assert parser.feed(response()) == 1


def test_non_2xx_is_a_status_error() -> None:
    answers = parse_answers(
        response(b"oops", "500 Internal Server Error")
        + response(b"", "301 Moved")
        + response(b"", "204 No Content")
    )
    assert [(a.status, a.error) for a in answers] == [(500, "status"), (301, "status"), (204, None)]


def test_sampled_body_check() -> None:
    wrong = response(b'{"message":"nope"}')
    parser = ResponseParser("json", check_every=3)
    assert parser.feed(wrong * 10) == 10
    # The first answer of a connection is checked, then one in three: answers 1, 4, 7 and 10.
    assert parser.counts() == {"ok": 6, "status": 0, "body": 4}
    good = ResponseParser("json", check_every=1)
    good.feed(response() * 5)
    assert good.counts() == {"ok": 5, "status": 0, "body": 0}


def test_html_body_check_and_no_capture_without_a_kind() -> None:
    page = b"<html><body><h1>Hello world!</h1></body></html>"
    parser = ResponseParser("html", check_every=1)
    parser.feed(response(page) + response(b"<p>Hi</p>"))
    assert parser.counts() == {"ok": 1, "status": 0, "body": 1}
    plain = ResponseParser(None)
    assert plain.on_body is None  # llhttp never hands bodies to Python
    plain.feed(response(b"anything"))
    assert plain.ok == 1


class Counting(ResponseParser):
    """A parser that counts the chunks reaching llhttp (the known-answer shortcut skips it)."""

    __slots__ = ("calls",)

    def _new_parser(self) -> None:
        super()._new_parser()
        feed_data = self.feed_data
        if not hasattr(self, "calls"):
            self.calls = 0

        def counted(data: bytes) -> None:
            self.calls += 1
            feed_data(data)

        self.feed_data = counted


def test_repeated_answers_skip_llhttp_with_the_same_verdict() -> None:
    parser = Counting("json", check_every=100)
    for _ in range(10):
        assert parser.feed(response()) == 1
    assert parser.calls == 2  # the second identical chunk is remembered
    assert parser.counts() == {"ok": 10, "status": 0, "body": 0}
    # A wrong body is remembered as wrong: every repeat counts as a body error, checked or not.
    wrong = ResponseParser("json", check_every=100)
    for _ in range(10):
        wrong.feed(response(b'{"message":"nope"}'))
    assert wrong.counts() == {"ok": 0, "status": 0, "body": 10}
    failing = ResponseParser()
    for _ in range(5):
        failing.feed(response(b"oops", "503 Service Unavailable"))
    assert failing.counts() == {"ok": 0, "status": 5, "body": 0}


def test_known_answer_is_not_used_inside_an_answer() -> None:
    parser = Counting()
    ok = response()
    parser.feed(ok)
    parser.feed(ok)  # remembered
    # The same bytes split differently, then an answer cut right after a whole copy of `ok`:
    assert parser.feed(ok[:10]) == 0
    assert parser.feed(ok[10:] + ok[:5]) == 1
    assert parser.feed(ok[5:]) == 1
    assert parser.feed(ok) == 1  # between answers again: known once more
    assert parser.done == 5 and parser.calls == 5
    # Varying answers (a Date header ticking) are parsed one by one, and still counted right.
    for i in range(4):
        parser.feed(response(headers=f"Date: {i}\r\n"))
    assert parser.ok == 9
    # Close answers are never remembered.
    closing = Counting()
    for _ in range(3):
        closing.feed(response(headers="Connection: close\r\n"))
        closing.reset()
    assert closing.calls == 3 and closing.ok == 3


def test_parsers_share_what_they_learn() -> None:
    shared = KnownAnswer()
    first, second = Counting(shared=shared), Counting(shared=shared)
    first.feed(response())
    first.feed(response())  # learnt, for both
    assert second.feed(response()) == 1
    assert second.calls == 0 and second.ok == 1
    half = response()[:7]
    assert second.feed(half) == 0  # inside an answer: the shared answer is not used
    assert second.feed(response()[7:]) == 1
    assert second.calls == 2 and second.ok == 2


def test_error_vocabulary() -> None:
    assert ERROR_KINDS == ("connect", "timeout", "reset", "status", "body", "parse")


def test_close_every_request_for_servers_without_keepalive() -> None:
    """A server that cannot keep alive closes after each answer, often without saying so:
    the requests ask for it, and every answer ends its connection (a reconnect, no error)."""
    request = encode_request("/hello/", "127.0.0.1:8000", close=True)
    assert request.endswith(b"Connection: close\r\n\r\n")
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"  # no Connection: close
    quiet = ResponseParser()
    quiet.feed(answer)
    assert not quiet.must_close
    closing = ResponseParser(close_every=True)
    assert closing.feed(answer) == 1
    assert closing.must_close and closing.ok == 1
    closing.reset()
    assert closing.feed(answer) == 1 and closing.must_close  # again on the next connection
