"""The report's HTTP/2 and WebSocket section (pure, over a :class:`Summary`).

Three tables, each only when the run measured what it shows (a run of HTTP/1.1 settings and
HTTP scenarios only has no such section: its report is unchanged):

- **by protocol**: for each protocol measured (``http1``, ``h2c``, ``h2``, each a series of its
  own: :class:`~analysis.summary.Setting` carries the protocol), a ranking of the targets of the
  protocol's first HTTP setting by median requests/s, with p99 latency; not ranked targets
  keep the reason (not applicable: the target does not declare the protocol);
- **HTTP/1.1 against HTTP/2**: every target ranked both on an HTTP/1.1 setting and on an
  HTTP/2 one of the same scenario, client and model, with as many requests in flight
  (connections × streams; else as many connections): requests/s of each, the
  ratio h2c/h1 (and h2/h1), and whether the difference is beyond the trials' spread: the two
  medians' 95 % bootstrap intervals (:func:`analysis.stats.bootstrap_ci`) do not overlap
  (:func:`analysis.stats.intervals_overlap`); one trial a side has no interval and says so;
- **WebSocket echo**: per ``ws-echo`` setting and target, echoed messages/s (a trial's
  ``requests`` are echoed messages), round-trip p50, p99 and p99.9, the message size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis import fmt, stats
from analysis.summary import Group, Setting, Summary
from loadgen.records.scenarios import PROTOCOLS, WS_SCENARIOS

PROTOCOLS_TITLE = "HTTP/2 and WebSocket"
PROTOCOL_NAMES = {"http1": "HTTP/1.1", "h2c": "HTTP/2 cleartext (h2c)", "h2": "HTTP/2 TLS (h2)"}
PROTOCOLS_NOTE = (
    "Each protocol is its own series: an HTTP/2 figure is never mixed into HTTP/1.1's. "
    "Ratio: the HTTP/2 median requests/s over the HTTP/1.1 one of the same target and scenario, "
    "with as many requests in flight (connections × streams); beyond spread: the two medians' "
    "95 % bootstrap intervals do not overlap. "
    "WebSocket: one request is one echoed message; latency is the round trip."
)
PROTOCOL_RANK_HEADERS = ["#", "target", "requests/s", "95% CI", "p99 ms", "setting"]
VERSUS_HEADERS = [
    "target", "HTTP/1.1 req/s", "h2c req/s", "h2 req/s", "h2c/h1", "h2/h1", "beyond spread",
]  # fmt: skip
WS_HEADERS = ["target", "messages/s", "95% CI", "p50 ms", "p99 ms", "p99.9 ms", "message"]


@dataclass(frozen=True)
class ProtocolRanking:
    """One protocol's targets under its first HTTP setting: ranked first, by requests/s."""

    protocol: str
    setting: Setting
    groups: tuple[Group, ...]


@dataclass(frozen=True)
class Versus:
    """One target on HTTP/1.1 and on HTTP/2 (h2c, h2; None: not measured there)."""

    target: str
    scenario: str
    connections: int
    streams: int
    h1: Group
    h2: dict[str, Group]  # protocol -> group

    def ratio(self, protocol: str) -> float | None:
        g = self.h2.get(protocol)
        if g is None or g.rps_median is None or not self.h1.rps_median:
            return None
        return g.rps_median / self.h1.rps_median

    def beyond_spread(self, protocol: str) -> bool | None:
        """True: the intervals are apart; False: they overlap; None: a side has no interval."""
        g = self.h2.get(protocol)
        if g is None or g.rps_ci is None or self.h1.rps_ci is None:
            return None
        return not stats.intervals_overlap(self.h1.rps_ci, g.rps_ci)


@dataclass(frozen=True)
class WsRow:
    group: Group
    message_size: int | None


@dataclass(frozen=True)
class ProtocolReport:
    rankings: tuple[ProtocolRanking, ...]
    versus: tuple[Versus, ...]
    websocket: tuple[tuple[Setting, tuple[WsRow, ...]], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rankings": [
                {
                    "protocol": r.protocol,
                    "setting": r.setting.label(),
                    "rows": [_group_dict(g) for g in r.groups],
                }
                for r in self.rankings
            ],
            "versus": [
                {
                    "target": v.target,
                    "scenario": v.scenario,
                    "connections": v.connections,
                    "streams": v.streams,
                    "http1_rps": _round(v.h1.rps_median),
                    **{f"{p}_rps": _round(v.h2[p].rps_median) for p in v.h2},
                    **{f"{p}_ratio": _round(v.ratio(p), 4) for p in v.h2},
                    **{f"{p}_beyond_spread": v.beyond_spread(p) for p in v.h2},
                }
                for v in self.versus
            ],
            "websocket": [
                {
                    "setting": s.label(),
                    "rows": [_group_dict(r.group) | {"message_size": r.message_size} for r in rows],
                }
                for s, rows in self.websocket
            ],
            "note": PROTOCOLS_NOTE,
        }


def _round(v: float | None, digits: int = 2) -> float | None:
    return None if v is None else round(v, digits)


def _group_dict(g: Group) -> dict[str, Any]:
    lat = g.latency_ms or {}
    return {
        "target": g.target,
        "state": g.state,
        "reason": g.reason,
        "rps_median": _round(g.rps_median),
        "p50_ms": _round(lat.get("p50"), 4),
        "p99_ms": _round(lat.get("p99"), 4),
        "p999_ms": _round(lat.get("p999"), 4),
    }


def _ordered(groups: list[Group]) -> tuple[Group, ...]:
    """Ranked groups by median requests/s (fastest first), then the others by name."""
    ranked = sorted(
        (g for g in groups if g.ranked), key=lambda g: (-(g.rps_median or 0.0), g.target)
    )
    return (*ranked, *sorted((g for g in groups if not g.ranked), key=lambda g: g.target))


def _counterpart(s: Summary, h2: Setting) -> Setting | None:
    """The HTTP/1.1 setting an HTTP/2 one is compared with: same scenario, client and model,
    as many requests in flight (connections × streams: 8 × 8 against 64 connections), else as
    many connections; the first in the report's order."""
    like = [
        x
        for x in s.settings
        if x.protocol == "http1"
        and (x.scenario, x.client, x.model) == (h2.scenario, h2.client, h2.model)
    ]
    for conns in (h2.connections * h2.streams, h2.connections):
        found = next((x for x in like if x.connections == conns), None)
        if found is not None:
            return found
    return None


def _message_size(s: Summary, setting: Setting, target: str) -> int | None:
    t = s.trials
    if not len(t):
        return None
    rows = t[(t["target"] == target) & (t["load"] == setting.load)]
    sizes = [int(v) for v in rows["message_size"].dropna()]
    return sizes[0] if sizes else None


def protocol_report(s: Summary) -> ProtocolReport | None:
    """The section's tables, or None when the run measured only HTTP/1.1 HTTP scenarios."""
    http = [x for x in s.settings if x.scenario not in WS_SCENARIOS]
    ws = [x for x in s.settings if x.scenario in WS_SCENARIOS]
    if not ws and all(x.protocol == "http1" for x in http):
        return None
    rankings = []
    for protocol in PROTOCOLS:
        first = next((x for x in http if x.protocol == protocol), None)
        if first is not None:
            groups = [g for g in s.groups if g.setting == first]
            rankings.append(ProtocolRanking(protocol, first, _ordered(groups)))
    versus: dict[tuple[str, Setting], Versus] = {}
    for x in http:
        h1 = _counterpart(s, x) if x.protocol != "http1" else None
        if h1 is None:
            continue
        for g in s.groups:
            base = s.group(g.target, h1)
            if g.setting != x or not g.ranked or base is None or not base.ranked:
                continue
            v = versus.setdefault(
                (g.target, h1), Versus(g.target, x.scenario, x.connections, x.streams, base, {})
            )
            v.h2.setdefault(x.protocol, g)
    websocket = [
        (x, tuple(WsRow(g, _message_size(s, x, g.target)) for g in _ordered(
            [g for g in s.groups if g.setting == x]
        )))
        for x in ws
    ]  # fmt: skip
    return ProtocolReport(tuple(rankings), tuple(versus.values()), tuple(websocket))


# --- rows as text (HTML and Markdown render the same cells) ---------------------------------


def _state(g: Group) -> str:
    return g.reason or g.state.replace("_", " ")


def ranking_rows(r: ProtocolRanking) -> list[list[str]]:
    rows = []
    for i, g in enumerate(r.groups, 1):
        if g.ranked:
            p99 = (g.latency_ms or {}).get("p99")
            rows.append([str(i), g.target, fmt.rps(g.rps_median), fmt.ci(g.rps_ci), fmt.ms(p99),
                         r.setting.label()])  # fmt: skip
        else:
            rows.append(["", g.target, fmt.DASH, fmt.DASH, fmt.DASH, _state(g)])
    return rows


def _spread(v: Versus) -> str:
    parts = []
    for p in v.h2:
        apart = v.beyond_spread(p)
        word = {True: "yes", False: "no (intervals overlap)", None: "no interval (1 trial)"}
        parts.append(f"{p}: {word[apart]}")
    return "; ".join(parts)


def versus_rows(report: ProtocolReport) -> list[list[str]]:
    return [
        [
            f"{v.target} ({v.scenario}, {v.connections}×{v.streams} against "
            f"{v.h1.setting.connections})",
            fmt.rps(v.h1.rps_median),
            fmt.rps(v.h2["h2c"].rps_median) if "h2c" in v.h2 else fmt.DASH,
            fmt.rps(v.h2["h2"].rps_median) if "h2" in v.h2 else fmt.DASH,
            fmt.ratio(v.ratio("h2c")),
            fmt.ratio(v.ratio("h2")),
            _spread(v),
        ]
        for v in report.versus
    ]


def ws_rows(rows: tuple[WsRow, ...]) -> list[list[str]]:
    out = []
    for r in rows:
        g, lat = r.group, r.group.latency_ms or {}
        size = fmt.DASH if r.message_size is None else f"{r.message_size:,} B"
        if g.ranked:
            out.append([g.target, fmt.rps(g.rps_median), fmt.ci(g.rps_ci), fmt.ms(lat.get("p50")),
                        fmt.ms(lat.get("p99")), fmt.ms(lat.get("p999")), size])  # fmt: skip
        else:
            out.append([g.target, fmt.DASH, fmt.DASH, fmt.DASH, fmt.DASH, fmt.DASH, _state(g)])
    return out
