"""The scenarios beyond ``hello``: what every target serves, and the data they read.

This module is the contract between the suite and the targets (pure data, no I/O):

- ``json``: ``GET <path>`` answers :func:`json_payload` exactly (100 small objects, ~6 KB),
  ``Content-Type: application/json``.
- ``db``: ``GET <path>`` reads one row of ``world`` by a random id in 1..10,000 and answers
  ``{"id": <int>, "randomNumber": <int>}``.
- ``queries``: ``GET <path>?n=N`` answers a JSON list of N such rows, each by its own random
  id; N is clamped as TechEmpower does (:func:`clamp_queries`: missing, not a number or below
  1 → 1; above 500 → 500).
- ``fortunes``: ``GET <path>`` reads every row of ``fortune``, adds one at request time
  (id 0, :data:`EXTRA_FORTUNE`), sorts by message and renders them through the framework's
  template engine as :func:`fortunes_html` does (escaped; UTF-8), ``text/html; charset=utf-8``.

The database: tables ``world(id INTEGER PRIMARY KEY, randomnumber INTEGER NOT NULL)`` with
:data:`WORLD_ROWS` rows and ``fortune(id INTEGER PRIMARY KEY, message TEXT NOT NULL)`` with
:data:`FORTUNES`. A server finds it through its environment: ``FWBENCH_DB_KIND`` (``sqlite`` or
``postgres``), ``FWBENCH_DB_URL`` (``sqlite:////abs/path.sqlite`` or
``postgresql://user:password@127.0.0.1:port/name``), and ``FWBENCH_DB_PATH`` (SQLite's file) or
``FWBENCH_DB_HOST``, ``FWBENCH_DB_PORT``, ``FWBENCH_DB_NAME``, ``FWBENCH_DB_USER``,
``FWBENCH_DB_PASSWORD`` (PostgreSQL).
"""

from __future__ import annotations

import html
import json
from typing import Any, Literal

ScenarioName = Literal["hello", "json", "db", "queries", "fortunes"]
SCENARIOS: tuple[str, ...] = ("hello", "json", "db", "queries", "fortunes")
DB_SCENARIOS = frozenset({"db", "queries", "fortunes"})

PROTOCOLS: tuple[str, ...] = ("http1", "h2c", "h2")
"""The HTTP protocols a load setting can speak: HTTP/1.1, HTTP/2 over cleartext TCP with prior
knowledge (``h2c``), and HTTP/2 over TLS negotiated by ALPN (``h2``)."""
H2_PROTOCOLS = frozenset({"h2c", "h2"})
WS_SCENARIOS = frozenset({"ws-echo"})
"""``ws-echo``: ``GET <path>`` upgrades to a WebSocket (RFC 6455, over HTTP/1.1) that answers
every message with the same message, exactly: text as text, binary as binary. The server
answers a ping with a pong and completes the close handshake."""

WORLD_ROWS = 10_000
MAX_QUERIES = 500
EXTRA_FORTUNE = "Additional fortune added at request time."

FORTUNES: tuple[tuple[int, str], ...] = (
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. — Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be shown");</script>'),
    (12, "フレームワークのベンチマーク"),
)
"""The ``fortune`` table: TechEmpower's twelve rows (an HTML injection and a non-ASCII one)."""


def json_payload() -> list[dict[str, Any]]:
    """The ``json`` scenario's answer: 100 objects of four fields, about 6 KB serialised."""
    return [
        {"id": i, "name": f"item {i:03d}", "price": i * 1.25, "active": i % 2 == 0}
        for i in range(1, 101)
    ]


def json_payload_bytes() -> bytes:
    """One canonical serialisation (answers may differ in whitespace and key order only)."""
    return json.dumps(json_payload(), separators=(",", ":")).encode()


def world_number(row_id: int) -> int:
    """``world.randomnumber`` of a row: a fixed pseudo-random number in 1..10,000 (the same in
    every database the suite fills, so an answer can be checked against it)."""
    return (row_id * 7919 + 104_729) % WORLD_ROWS + 1


def clamp_queries(raw: str | None) -> int:
    """TechEmpower's rule for ``?n=``: missing, not a whole number, or below 1 → 1; above 500
    → 500."""
    try:
        n = int(raw or "")
    except ValueError:
        return 1
    return max(1, min(MAX_QUERIES, n))


def sorted_fortunes() -> list[tuple[int, str]]:
    """The rows a ``fortunes`` answer shows: the table plus the request-time row, by message."""
    return sorted([*FORTUNES, (0, EXTRA_FORTUNE)], key=lambda r: r[1])


def fortunes_html(rows: list[tuple[int, str]] | None = None) -> str:
    """The reference page (targets render it with their own engine; the verifier compares the
    table rows, not the whitespace)."""
    rows = sorted_fortunes() if rows is None else rows
    body = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in rows)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{body}</table></body></html>"
    )
