"""The answer checks shared by the verifier and the clients."""

from __future__ import annotations

from loadgen.checks import body_ok, body_problem, content_type_problem, html_text


def test_json_exact() -> None:
    assert body_problem("json", b'{"message": "Hello world!"}') is None
    assert body_ok("json", b'{"message":"Hello world!"}')
    assert body_problem("json", b'{"message": "Hello World"}') is not None
    assert body_problem("json", b'{"message": "Hello world!", "x": 1}') is not None
    assert "not JSON" in (body_problem("json", b"Hello world!") or "")


def test_html_normalised() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>t</title></head>"
        b"<body>\n <h1>Hello   world!</h1></body></html>"
    )
    assert body_problem("html", page) is None
    assert html_text(page.decode()) == "Hello world!"
    assert body_problem("html", b"<p>Hello world</p>") is not None
    assert body_problem("html", b"\xff\xfe") == "body is not UTF-8"


def test_html_chrome_around_message_is_accepted() -> None:
    assert body_problem("html", b"<nav>Home</nav><p>Hello world!</p><footer>x</footer>") is None


def test_content_type() -> None:
    assert content_type_problem("json", "application/json") is None
    assert content_type_problem("html", "text/html; charset=utf-8") is None
    assert content_type_problem("html", "text/plain") is not None
    assert content_type_problem("json", None) == "no Content-Type header"
