"""The report of a run with HTTP/2 and WebSocket settings (synthetic records): a ranking per
protocol, HTTP/1.1 against HTTP/2 side by side with whether the difference is beyond the
trials' spread, the WebSocket echo table; each protocol a series of its own (in the summary and
in the history); a target that does not declare a protocol is not applicable there, neither
ranked nor failed. A run with neither (the committed fixture) has no such section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analysis.exporters import render_json, render_markdown
from analysis.history import History
from analysis.html import render_html
from analysis.load import load_runs
from analysis.protocols import PROTOCOLS_TITLE, protocol_report
from analysis.summary import Summary, summarize
from benchmarks.synthrun import SynthLoad, SynthTarget, make_run
from commands.common import nothing_measured

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-small"
LOADS = (
    SynthLoad(name="hello-64"),
    SynthLoad(name="h2c-64"),
    SynthLoad(name="h2-64", connections=(8,)),  # 8 connections × 8 streams: 64 in flight
    SynthLoad(name="ws-64", scenario="ws-echo"),
)
PROTOCOL_OF = {"h2c-64": "h2c", "h2-64": "h2"}
H2C_SPEEDUP = 1.5  # "both" answers h2c this much faster: beyond any spread of 3 % noise
TARGETS = (
    SynthTarget("both", "Both", rps=10_000, scenarios=(("ws-echo", 0.5),)),
    SynthTarget(
        "h1only", "H1only", rps=8_000, not_applicable=(("ws-echo", "no WebSocket support"),)
    ),
)
NOT_SPOKEN = "does not declare the protocol {} (target.toml: protocols)"


def _protocol_run(run_dir: Path) -> Path:
    """A synthetic run whose h2c-64 and h2-64 settings are HTTP/2 (h1only: not applicable
    there) and whose ws-64 setting is ws-echo with 64-byte messages."""
    make_run(run_dir, TARGETS, loads=LOADS, trials=3)
    header = json.loads((run_dir / "run.json").read_text())
    for table in header["config"]["run"]["load"]:
        if table["name"] in PROTOCOL_OF:
            table["protocol"], table["streams"] = PROTOCOL_OF[table["name"]], 8
    header["verdicts"][0]["protocols"] = {p: {"ok": True, "reason": ""} for p in ("h2c", "h2")}
    (run_dir / "run.json").write_text(json.dumps(header, indent=2, sort_keys=True) + "\n")
    lines = []
    for line in (run_dir / "trials.jsonl").read_text().splitlines():
        rec: dict[str, Any] = json.loads(line)
        protocol = PROTOCOL_OF.get(rec["load"])
        if protocol:
            rec["protocol"], rec["streams"] = protocol, 8
            if rec["target"] == "h1only":
                rec |= {"status": "not_applicable", "failure": NOT_SPOKEN.format(protocol)}
                rec |= {"requests": 0, "rps": 0.0, "latency_ms": None, "hist": ""}
            elif protocol == "h2c":
                rec["rps"] *= H2C_SPEEDUP
        if rec["scenario"] == "ws-echo":
            rec["message_size"] = 64
        lines.append(json.dumps(rec, sort_keys=True))
    (run_dir / "trials.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _protocol_run(tmp_path_factory.mktemp("proto") / "run")


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> Summary:
    return summarize(load_runs([run_dir]))


def test_each_protocol_is_a_setting_of_its_own(summary: Summary) -> None:
    assert [(x.load, x.protocol) for x in summary.settings] == [
        ("hello-64", "http1"), ("h2c-64", "h2c"), ("h2-64", "h2"), ("ws-64", "http1"),
    ]  # fmt: skip
    h2c = next(r for r in summary.rankings if r.setting.protocol == "h2c")
    assert h2c.setting.label() == "h2c-64 · raw client · hello · h2c · 64 connections × 8 streams"
    assert [row.group.target for row in h2c.ranked] == ["both"]
    by = {(g.target, g.setting.load): g for g in summary.groups}
    assert by[("h1only", "h2c-64")].state == "not_applicable"
    assert by[("h1only", "h2c-64")].reason == "not applicable: " + NOT_SPOKEN.format("h2c")
    assert by[("h1only", "ws-64")].state == "not_applicable"
    assert by[("h1only", "hello-64")].state == "ranked"
    ok = summary.ok_trials(by[("both", "h2c-64")])
    assert set(ok["protocol"]) == {"h2c"} and len(ok) == 3  # never the HTTP/1.1 trials


def test_not_applicable_protocols_are_no_failure(summary: Summary, run_dir: Path) -> None:
    assert not any("h1only" in w for w in summary.warnings), summary.warnings
    assert nothing_measured(run_dir / "trials.jsonl") is None


def test_a_ranking_per_protocol_and_the_side_by_side_table(summary: Summary) -> None:
    report = protocol_report(summary)
    assert report is not None
    assert [r.protocol for r in report.rankings] == ["http1", "h2c", "h2"]
    http1 = report.rankings[0]
    assert [g.target for g in http1.groups] == ["both", "h1only"]  # by requests/s
    assert [g.state for g in report.rankings[1].groups] == ["ranked", "not_applicable"]
    (versus,) = report.versus  # h1only has no HTTP/2 figure: not in the table
    assert versus.target == "both" and set(versus.h2) == {"h2c", "h2"}
    # h2 (8 × 8: as many in flight) and h2c (64 × 8: no HTTP/1.1 setting of 512 connections,
    # so as many connections) both against hello-64
    assert versus.h1.setting.load == "hello-64" and versus.h1.setting.connections == 64
    h2c_ratio, h2_ratio = versus.ratio("h2c"), versus.ratio("h2")
    assert h2c_ratio is not None and h2_ratio is not None
    assert h2c_ratio == pytest.approx(H2C_SPEEDUP, rel=0.1)
    assert versus.beyond_spread("h2c") is True  # 1.5x against 3 % noise
    d = report.to_dict()
    assert d["versus"][0]["h2c_beyond_spread"] is True
    assert d["versus"][0]["h2c_ratio"] == round(h2c_ratio, 4)


def test_the_websocket_table_says_messages_and_round_trips(summary: Summary) -> None:
    report = protocol_report(summary)
    assert report is not None
    ((setting, rows),) = report.websocket
    assert setting.scenario == "ws-echo"
    assert [(r.group.target, r.group.state, r.message_size) for r in rows] == [
        ("both", "ranked", 64), ("h1only", "not_applicable", None),
    ]  # fmt: skip
    lat = rows[0].group.latency_ms
    assert lat is not None and lat["p50"] <= lat["p99"] <= lat["p999"]


def test_every_format_has_the_section(summary: Summary) -> None:
    html = render_html(summary, [])
    assert '<section id="protocols">' in html and f"<h2>{PROTOCOLS_TITLE}</h2>" in html
    assert "<h3>HTTP/1.1 against HTTP/2</h3>" in html and "messages/s" in html
    md = render_markdown(summary)
    assert f"## {PROTOCOLS_TITLE}" in md and "### HTTP/2 cleartext (h2c)" in md
    assert "### WebSocket echo · ws-64 · raw client · ws-echo · 64 connections" in md
    data = json.loads(render_json(summary))
    assert [r["protocol"] for r in data["protocols"]["rankings"]] == ["http1", "h2c", "h2"]
    assert data["protocols"]["websocket"][0]["rows"][0]["message_size"] == 64


def test_a_run_without_http2_or_websocket_has_no_section() -> None:
    summary = summarize(load_runs([FIXTURE]))
    assert protocol_report(summary) is None
    assert 'id="protocols"' not in render_html(summary, [])
    assert PROTOCOLS_TITLE not in render_markdown(summary)
    assert "protocols" not in json.loads(render_json(summary))


def test_the_history_keeps_http2_apart_from_http1(run_dir: Path, tmp_path: Path) -> None:
    with History(tmp_path / "history.sqlite") as h:
        h.store_run(run_dir)
        fingerprint = summarize(load_runs([run_dir])).machine["fingerprint"]
        keys = set(h.series(fingerprint))
    assert ("both", "hello-64", 64) in keys
    assert ("both", "h2c-64 (h2c)", 64) in keys and ("both", "h2-64 (h2)", 8) in keys
    assert ("h1only", "h2c-64 (h2c)", 64) not in keys  # not applicable: no point
