"""What a correct answer of each scenario looks like (pure; the contract is
:mod:`loadgen.records.scenarios`), shared by the verifier and the clients' sampled checks.

In the spirit of TechEmpower's verification rules, plus what they missed: exact shapes and
types (``id`` and ``randomNumber`` whole numbers, not strings nor floats), ids in range, the
value of each row (the suite fills ``world`` with known numbers, so an answer that does not
come from the table is caught; ``offset`` is what the verifier added to every row to see
that answers follow the database, not a cache), the ``?n=`` clamp, the fortunes' sort, escaping
and UTF-8, and the Content-Type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

from loadgen.records.scenarios import (
    EXTRA_FORTUNE,
    WORLD_ROWS,
    json_payload,
    json_payload_bytes,
    sorted_fortunes,
    world_number,
)

SCRIPT_ROW = '<script>alert("This should not be shown");</script>'


def content_type_problem(scenario: str, content_type: str) -> str | None:
    """The media type each scenario must answer with (charset utf-8 for HTML)."""
    ct = content_type.lower().replace(" ", "")
    if scenario == "fortunes":
        if not ct.startswith("text/html"):
            return f"Content-Type is {content_type!r}, expected text/html; charset=utf-8"
        if "charset=" in ct and "charset=utf-8" not in ct:
            return f"Content-Type is {content_type!r}: the charset must be utf-8"
        return None
    if not ct.startswith("application/json"):
        return f"Content-Type is {content_type!r}, expected application/json"
    return None


def _load(body: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(body.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "body is not UTF-8"
    except json.JSONDecodeError as exc:
        return None, f"body is not JSON ({exc.msg})"


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def world_problem(obj: Any, offset: int = 0) -> str | None:
    """One ``{"id", "randomNumber"}`` row, with the number the table holds for that id."""
    problem = world_shape_problem(obj)
    if problem:
        return problem
    rid, num = obj["id"], obj["randomNumber"]
    want = world_number(rid) + offset
    if num != want:
        return f"row {rid}: randomNumber {num}, the table holds {want}"
    return None


def world_shape_problem(obj: Any) -> str | None:
    """One row's shape and range only: keys, whole numbers, id in 1..10,000 (not the value the
    table holds: the load clients' sampled check, which a verifier's change of the table must
    not fail)."""
    if not isinstance(obj, dict):
        return f"a row is {type(obj).__name__}, expected an object"
    keys = set(obj)
    if keys != {"id", "randomNumber"}:
        return f"a row has keys {sorted(keys)}, expected ['id', 'randomNumber']"
    rid, num = obj["id"], obj["randomNumber"]
    if not _whole(rid) or not _whole(num):
        return f"id and randomNumber must be whole numbers, got {rid!r} and {num!r}"
    if not 1 <= rid <= WORLD_ROWS:
        return f"id {rid} is out of 1..{WORLD_ROWS}"
    return None


def json_problem(body: bytes) -> str | None:
    obj, err = _load(body)
    if err:
        return err
    if obj != json_payload():
        return "JSON body is not the json scenario's 100 objects"
    return None


def db_problem(body: bytes, offset: int = 0) -> str | None:
    obj, err = _load(body)
    if err:
        return err
    if isinstance(obj, list):
        return "db answers one object, not a list"
    return world_problem(obj, offset)


def queries_problem(body: bytes, expected: int, offset: int = 0) -> str | None:
    """``expected``: the clamped count (:func:`loadgen.records.scenarios.clamp_queries`)."""
    obj, err = _load(body)
    if err:
        return err
    if not isinstance(obj, list):
        return f"queries answers a list, got {type(obj).__name__}"
    if len(obj) != expected:
        return f"{len(obj)} rows, expected {expected}"
    for row in obj:
        problem = world_problem(row, offset)
        if problem:
            return problem
    return None


class _Rows(HTMLParser):
    """The cells of every table row (``<td>`` text, entities decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def fortunes_problem(body: bytes) -> str | None:
    """Every fortune plus the request-time one, sorted by message, escaped, in UTF-8."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if SCRIPT_ROW in text:
        return "the <script> fortune is not escaped"
    if "<table" not in text.lower():
        return "no <table> in the page"
    parser = _Rows()
    parser.feed(text)
    parser.close()
    rows = [r for r in parser.rows if r]
    want = [[str(i), m] for i, m in sorted_fortunes()]
    got = [r[:2] for r in rows]
    if len(got) == len(want) - 1 and not any(m == EXTRA_FORTUNE for _i, m in got):
        return f"the fortune added at request time ({EXTRA_FORTUNE!r}) is missing"
    if len(got) != len(want):
        return f"{len(got)} fortune rows, expected {len(want)}"
    for g, w in zip(got, want, strict=True):
        if g != w:
            if sorted(got) == sorted(want):
                return "the fortunes are not sorted by message"
            return f"row {g!r}, expected {w!r}"
    return None


def sampled_problem(scenario: str, body: bytes, n: int = 1) -> str | None:
    """The check of an answer sampled under load (and of a fresh server's first answer): as
    :func:`answer_problem` for ``json`` and ``fortunes``; for ``db`` and ``queries`` the shape,
    the row count and the ids' range only (the verifier checks the values)."""
    if scenario not in ("db", "queries"):
        return answer_problem(scenario, body)
    obj, err = _load(body)
    if err:
        return err
    if scenario == "db":
        return (
            "db answers one object, not a list"
            if isinstance(obj, list)
            else (world_shape_problem(obj))
        )
    if not isinstance(obj, list):
        return f"queries answers a list, got {type(obj).__name__}"
    if len(obj) != n:
        return f"{len(obj)} rows, expected {n}"
    for row in obj:
        problem = world_shape_problem(row)
        if problem:
            return problem
    return None


def sampled_check(scenario: str, n: int = 1) -> Callable[[bytes], bool]:
    """:func:`sampled_problem` as a yes/no body check for the load clients."""
    if scenario == "json":
        fast = {json_payload_bytes()}

        def json_ok(body: bytes) -> bool:
            return body in fast or json_problem(body) is None

        return json_ok

    def ok(body: bytes) -> bool:
        return sampled_problem(scenario, body, n) is None

    return ok


def answer_problem(
    scenario: str, body: bytes, content_type: str = "", *, n: int = 1, offset: int = 0
) -> str | None:
    """None when ``body`` (and ``content_type``, when given) is a right answer of ``scenario``;
    ``n``: the clamped ``?n=`` of a ``queries`` request."""
    if content_type:
        problem = content_type_problem(scenario, content_type)
        if problem:
            return problem
    if scenario == "json":
        return json_problem(body)
    if scenario == "db":
        return db_problem(body, offset)
    if scenario == "queries":
        return queries_problem(body, n, offset)
    if scenario == "fortunes":
        return fortunes_problem(body)
    raise ValueError(f"no check for scenario {scenario!r}")
