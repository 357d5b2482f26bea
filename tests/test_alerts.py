"""What ``fwbench check`` tells (analysis.alerts, analysis.check, commands.check):
acknowledgements, one alert per drop, regressions.json, the Markdown alert checked against its
expected text, exit statuses, and the webhook against a real HTTP receiver on 127.0.0.1
(signed; a receiver that is down keeps the alert for the next check and does not change the
exit status)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from analysis import alerts
from analysis.check import run_check
from analysis.gate import Finding
from analysis.history import History
from benchmarks.synthetic import store_nights, synthetic_machine
from commands.check import parse_pairs
from loadgen.config import Ack, Check, Config, ConfigError, Pair, Paths

SECRET = "s3cret-for-the-test"
FP = str(synthetic_machine()["fingerprint"])


def finding(**kw: object) -> Finding:
    base: dict[str, object] = dict(
        gate="within", target="app-new", baseline="app", load="closed-64", connections=64,
        metric="rps", before=10_000.0, after=9_000.0, change_pct=-10.0, worse_pct=10.0,
        pvalue=0.0004, pvalue_raw=0.0002, n_before=7, n_after=7, change_date="2026-03-01",
        change_run_id="r1", fingerprint="fp", regression=True, alerting=True,
    )  # fmt: skip
    base.update(kw)
    return Finding(**base)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_acknowledge_silences_until_the_date() -> None:
    f = finding()
    acks = (Ack(target="app-new", metric="rps", reason="new ORM", until="2026-03-31"),)
    [still] = alerts.acknowledge([f], acks, date(2026, 3, 31))
    assert still.acknowledged == "new ORM (until 2026-03-31)" and not still.alerts
    [expired] = alerts.acknowledge([f], acks, date(2026, 4, 1))
    assert expired.acknowledged == "" and expired.alerts
    [other] = alerts.acknowledge([f], (Ack(target="app-new", metric="p50"),), date(2026, 3, 1))
    assert other.alerts
    [forever] = alerts.acknowledge([f], (Ack(target="app-new"),), date(2030, 1, 1))
    assert forever.acknowledged == "acknowledged"


def test_exit_status() -> None:
    assert alerts.exit_status([], []) == 0
    assert alerts.exit_status([finding(regression=False)], []) == 0
    assert alerts.exit_status([finding()], ["pair x: not in this run"]) == 1
    assert alerts.exit_status([finding(regression=False)], ["not enough nights"]) == 2
    assert alerts.exit_status([finding(alerting=False, metric="p99")], []) == 0
    assert alerts.exit_status([finding(acknowledged="known")], []) == 0


EXPECTED_MARKDOWN = """\
# fwbench check: 2 regressions (1 new)

run r1

## New

| target | load | metric | gate | before | after | change | p-value | evidence | since |
|---|---|---|---|---|---|---|---|---|---|
| app-new vs app | closed-64, c64 | requests/s | within run | 10,000 | 9,000 | -10.0 % \
| 4.0e-04 | 7 + 7 trials | 2026-03-01 |

## Still there (alerted before)

| target | load | metric | gate | before | after | change | p-value | evidence | since |
|---|---|---|---|---|---|---|---|---|---|
| flask | closed-64, c64 | p50 latency (ms) | history | 6.400 ms | 7.100 ms | +10.9 % \
| 1.0e-05 | 30 + 4 nights | 2026-02-26 |

## Acknowledged

| target | load | metric | gate | before | after | change | p-value | evidence | since |
|---|---|---|---|---|---|---|---|---|---|
| django | closed-64, c64 | requests/s | history | 5,000 | 4,500 | -10.0 % | 2.0e-06 \
| 25 + 5 nights | 2026-02-25 |

- django rps: Django 5.2 upgrade

## Not checked

- pair a:b: b not in this run

## Checked, no alert

| target | load | metric | gate | before | after | change | p-value | evidence | since |
|---|---|---|---|---|---|---|---|---|---|
| app-new vs app | closed-64, c64 | p50 latency (ms) | within run | 6.400 ms | 6.500 ms | +1.6 % \
| 0.41 | 7 + 7 trials | 2026-03-01 |

## p99 latency (reported, never alerted: too noisy)

| target | load | metric | gate | before | after | change | p-value | evidence | since |
|---|---|---|---|---|---|---|---|---|---|
| app-new vs app | closed-64, c64 | p99 latency (ms) | within run | 20.000 ms | 31.000 ms \
| +55.0 % | 0.002 | 7 + 7 trials | 2026-03-01 |
""".replace(" \\\n", " ")


def test_markdown_alert_matches_the_expected_text() -> None:
    new = finding()
    old = finding(gate="history", target="flask", baseline="", metric="p50", before=6.4,
                  after=7.1, change_pct=10.9375, worse_pct=10.9375, pvalue=1e-5, n_before=30,
                  n_after=4, change_date="2026-02-26", change_run_id="n26")  # fmt: skip
    acked = finding(gate="history", target="django", baseline="", before=5000.0, after=4500.0,
                    pvalue=2e-6, n_before=25, n_after=5, change_date="2026-02-25",
                    acknowledged="Django 5.2 upgrade")  # fmt: skip
    quiet = finding(metric="p50", before=6.4, after=6.5, change_pct=1.5625, worse_pct=1.5625,
                    pvalue=0.41, regression=False)  # fmt: skip
    p99 = finding(metric="p99", before=20.0, after=31.0, change_pct=55.0, pvalue=0.002,
                  alerting=False)  # fmt: skip
    reg = alerts.Registered(frozenset({new.key}), {old.key: "2026-02-28T02:00:00+00:00"})
    text = alerts.markdown([new, old, acked, quiet, p99], ["pair a:b: b not in this run"], reg,
                           context={"run": "r1"})  # fmt: skip
    assert text == EXPECTED_MARKDOWN
    clean = alerts.markdown([quiet], [], alerts.Registered(frozenset(), {}), context={})
    assert clean.startswith("# fwbench check: no regression\n")
    assert clean.endswith("1 comparison checked, none got worse.\n")


def test_regressions_json_fields(tmp_path: Path) -> None:
    new, quiet = finding(), finding(metric="p50", regression=False)
    hist = finding(gate="history", baseline="", n_before=30, n_after=4)
    reg = alerts.Registered(frozenset({new.key}), {hist.key: "2026-02-28"})
    doc = alerts.regressions_document([new, quiet, hist], [], reg, context={"run": "r1"},
                                      delivery="sent 1 alert(s)")  # fmt: skip
    assert doc["schema"] == "fwbench.regressions/1"
    assert (doc["status"], doc["exit_code"], doc["run"]) == ("regression", 1, "r1")
    first, second = doc["regressions"]
    for key in ("target", "metric", "before", "after", "change_pct", "pvalue", "change_date"):
        assert key in first
    assert first["trials"] == {"baseline": 7, "candidate": 7} and first["new"] is True
    assert second["nights"] == {"before": 30, "after": 4}
    assert (second["new"], second["first_alerted"]) == (False, "2026-02-28")
    assert [f["metric"] for f in doc["reported"]] == ["p50"]
    json_path, md_path = alerts.write_outputs(tmp_path / "out", doc, "# text\n")
    assert json.loads(json_path.read_text()) == doc and md_path.read_text() == "# text\n"


def test_one_drop_alerts_once(tmp_path: Path) -> None:
    f = finding(gate="history", change_run_id="n30")
    with History(tmp_path / "h.sqlite") as h:
        positions = {f.series: {f"n{i}": i for i in range(40)}}
        first = alerts.register(h, [f], deliver=False, positions=positions)
        assert first.new == {f.key}
        moved = finding(gate="history", change_run_id="n32")  # the change point moved 2 nights
        again = alerts.register(h, [moved], deliver=False, positions=positions)
        assert again.new == set() and moved.key in again.known
        far = finding(gate="history", change_run_id="n38")  # another drop, later
        assert alerts.register(h, [far], deliver=False, positions=positions).new == {far.key}
        assert alerts.register(h, [finding()], deliver=False).new == {finding().key}
        assert alerts.register(h, [finding()], deliver=False).new == set()
        assert len(h.alerts()) == 3


def test_parse_pairs() -> None:
    assert parse_pairs("a:b, c:d") == (Pair("a", "b"), Pair("c", "d"))
    for bad in ("a", "a:", "a:a", ","):
        with pytest.raises(ConfigError):
            parse_pairs(bad)


# --- the history gate through run_check, and the webhook --------------------------------------


def config(tmp_path: Path, **check: object) -> Config:
    paths = Paths(
        targets_dir=str(tmp_path),
        envs_dir=str(tmp_path / "envs"),
        reports_dir=str(tmp_path / "reports"),
        history=str(tmp_path / "h.sqlite"),
    )
    return Config(paths=paths, check=Check(**check), root=str(tmp_path))  # type: ignore[arg-type]


def seed(tmp_path: Path, drop_nights: int = 3, first: date = date(2026, 2, 1)) -> None:
    rng = np.random.default_rng(3)
    flat = 10_000 * (1 + rng.normal(0, 0.01, 25))
    low = 9_000 * (1 + rng.normal(0, 0.01, drop_nights))
    steady = 5_000 * (1 + rng.normal(0, 0.01, 25 + drop_nights))
    with History(tmp_path / "h.sqlite") as h:
        store_nights(h, {"flask": [*flat, *low], "django": list(steady)}, first_night=first)


class Receiver:
    """A real HTTP receiver on 127.0.0.1 that records what it is sent."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/hook"


def written(tmp_path: Path) -> str:
    return "".join(
        p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()
        and p.suffix in (".json", ".md")
    )  # fmt: skip


def test_history_gate_finds_the_drop_and_the_nights(tmp_path: Path) -> None:
    seed(tmp_path)
    r = run_check(config(tmp_path), history_gate=True, today=date(2026, 3, 1))
    assert r.status == 1
    assert sorted(f.metric for f in r.findings if f.alerts) == ["p50", "rps"]  # p50 rose too
    [f] = [f for f in r.findings if f.alerts and f.metric == "rps"]
    assert (f.target, f.gate, f.fingerprint) == ("flask", "history", FP)
    assert f.change_date == "2026-02-26" and f.n_after == 3 and f.n_before == 25
    assert f.change_pct == pytest.approx(-10, abs=1.5)
    assert r.json_path == tmp_path / "reports" / "check" / "regressions.json"
    assert "flask" in r.markdown and f.key in r.registered.new
    assert [g.metric for g in r.findings if not g.alerting] == ["p99"]  # reported only


def test_not_enough_history_is_exit_2(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert run_check(cfg, history_gate=True).status == 2  # nothing stored
    with History(tmp_path / "h.sqlite") as h:
        store_nights(h, {"flask": [1.0, 1.0, 1.0]}, first_night=date(2026, 3, 1))
    r = run_check(cfg, history_gate=True)
    assert r.status == 2
    assert r.problems == (
        f"history: not enough nights on machine {FP}: the longest series has 3, "
        "the history gate needs 6",
    )
    with pytest.raises(ConfigError):
        run_check(cfg)  # neither a run nor --history


def test_acknowledged_drop_is_clean(tmp_path: Path) -> None:
    seed(tmp_path)
    acks = (Ack(target="flask", metric="rps", reason="known"),
            Ack(target="flask", metric="p50", reason="known"))  # fmt: skip
    r = run_check(config(tmp_path, acknowledge=acks), history_gate=True)
    assert r.status == 0
    doc = json.loads(r.json_path.read_text())
    assert doc["regressions"] == [] and len(doc["acknowledged"]) == 2


def test_webhook_down_keeps_the_alert_and_retries_next_time(
    tmp_path: Path, receiver: Receiver
) -> None:
    seed(tmp_path)
    cfg = config(tmp_path)
    down = {alerts.URL_ENV: dead_url(), alerts.SECRET_ENV: SECRET}
    r1 = run_check(cfg, history_gate=True, env=down)
    assert r1.status == 1  # the receiver being down changes nothing here
    assert r1.delivery.error.startswith("could not reach the receiver")
    assert r1.delivery.pending == 2  # rps and p50
    with History(tmp_path / "h.sqlite") as h:
        pending = h.alerts(delivery="pending")
        assert len(pending) == 2 and all(a.attempts == 1 for a in pending)
        assert all(down[alerts.URL_ENV] not in a.last_error for a in pending)
    assert "kept for the next check" in json.loads(r1.json_path.read_text())["webhook"]

    up = {alerts.URL_ENV: receiver.url, alerts.SECRET_ENV: SECRET}
    r2 = run_check(cfg, history_gate=True, env=up)  # the same drop, checked again
    assert r2.status == 1
    assert r2.registered.new == set()  # not announced again...
    assert r2.delivery.sent == 2  # ...but the alerts kept from last time went out now
    [(headers, body)] = receiver.got
    assert headers["content-type"] == "application/json"
    assert alerts.verify_signature(body, SECRET, headers[alerts.SIGNATURE_HEADER.lower()])
    payload = json.loads(body)
    assert payload["schema"] == "fwbench.alerts/1"
    assert {(a["target"], a["metric"]) for a in payload["alerts"]} == {
        ("flask", "rps"),
        ("flask", "p50"),
    }
    assert all(a["first_seen"] and a["change_date"] == "2026-02-26" for a in payload["alerts"])

    r3 = run_check(cfg, history_gate=True, env=up)  # nothing new: nothing sent
    assert r3.status == 1 and r3.delivery.sent == 0 and len(receiver.got) == 1
    with History(tmp_path / "h.sqlite") as h:  # a fourth night at the new level: same drop
        store_nights(h, {"flask": [9_000.0], "django": [5_000.0]}, first_night=date(2026, 3, 1),
                     tag="n4")  # fmt: skip
    r4 = run_check(cfg, history_gate=True, env=up)
    assert r4.status == 1 and r4.registered.new == set() and len(receiver.got) == 1
    everything = written(tmp_path)
    assert SECRET not in everything and receiver.url not in everything
    assert down[alerts.URL_ENV] not in everything


def test_a_receiver_answering_500_keeps_the_alert(tmp_path: Path) -> None:
    seed(tmp_path)
    failing = Receiver(status=500)
    try:
        env = {alerts.URL_ENV: failing.url}  # no secret: no signature header
        r = run_check(config(tmp_path), history_gate=True, env=env)
        assert r.status == 1 and r.delivery.error == "receiver answered HTTP 500"
        [(headers, _)] = failing.got
        assert alerts.SIGNATURE_HEADER.lower() not in headers
        failing.status = 200
        r = run_check(config(tmp_path), history_gate=True, env=env)
        assert r.delivery.sent == 2 and len(failing.got) == 2
    finally:
        failing.close()


def test_no_webhook_configured(tmp_path: Path) -> None:
    seed(tmp_path)
    r = run_check(config(tmp_path), history_gate=True, env={})
    assert r.status == 1 and not r.delivery.configured
    with History(tmp_path / "h.sqlite") as h:
        assert {a.delivery for a in h.alerts()} == {"none"}
    with pytest.raises(alerts.DeliveryError, match="http"):
        alerts.post("file:///etc/passwd", b"{}", "")
