"""What a correct hello answer looks like: pure functions shared by the verifier and the clients.

Adapted from TechEmpower's verification rules: JSON targets must parse to exactly the expected
object; HTML targets' text, once tags and whitespace are normalised, must contain the message
(a framework's own page chrome, as Reahl's, may surround it).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Literal

MESSAGE = "Hello world!"
EXPECTED_JSON = {"message": MESSAGE}

Kind = Literal["html", "json"]
KINDS: tuple[Kind, ...] = ("html", "json")


class _TextOnly(HTMLParser):
    """Collects the text of an HTML document, skipping script, style and head content."""

    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._depth_skipped = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._depth_skipped += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._depth_skipped:
            self._depth_skipped -= 1

    def handle_data(self, data: str) -> None:
        if not self._depth_skipped:
            self.parts.append(data)


def html_text(body: str) -> str:
    """The visible text of an HTML body with runs of whitespace folded to one space."""
    parser = _TextOnly()
    parser.feed(body)
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def body_problem(kind: Kind, body: bytes) -> str | None:
    """None when ``body`` is a right answer for ``kind``, else a short reason."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if kind == "json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            return f"body is not JSON ({exc.msg})"
        if obj != EXPECTED_JSON:
            return f"JSON body is {_short(text)}, expected {json.dumps(EXPECTED_JSON)}"
        return None
    visible = html_text(text)
    if visible == MESSAGE:
        return None
    if MESSAGE in visible:
        # A framework's own chrome (navigation, footers) around the message: accepted.
        return None
    return f"HTML text is {_short(visible)!r}, expected {MESSAGE!r}"


def body_ok(kind: Kind, body: bytes) -> bool:
    """Fast yes/no form of :func:`body_problem` for a client's sampled checks."""
    if kind == "json" and body in _JSON_FAST:
        return True  # the common exact encodings: no parse on the hot path
    return body_problem(kind, body) is None


_JSON_FAST = frozenset(
    {
        b'{"message":"Hello world!"}',
        b'{"message": "Hello world!"}',
    }
)


def content_type_problem(kind: Kind, content_type: str | None) -> str | None:
    """None when the Content-Type header fits the kind."""
    if not content_type:
        return "no Content-Type header"
    media = content_type.split(";", 1)[0].strip().lower()
    wanted = "application/json" if kind == "json" else "text/html"
    if media != wanted:
        return f"Content-Type is {content_type!r}, expected {wanted}"
    return None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
