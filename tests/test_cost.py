"""The cost pass (instructions per request under callgrind): dump parsing, the record, the cost
gate within a run and over the history, the report and compare; end to end (``e2e``) on the
knob fixture targets and on starlette, including that the warm-up is not counted."""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from analysis.compare import CostChange
from analysis.gate import (
    HistoryParams,
    cost_level,
    cost_noise_problem,
    history_cost_gate,
    within_cost,
)
from analysis.history import CostPoint
from loadgen.config import Config, ConfigError, Pair, load_config
from loadgen.cost import (
    INSTALL_HINT,
    CostSpec,
    find_tool,
    parse_dump,
    read_window_dumps,
    window_figures,
)
from loadgen.records import (
    COST_SCHEMA,
    CostProcess,
    CostRecord,
    RecordError,
    append_cost,
    read_costs,
    spread_pct,
)

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 2743
cmd:  /envs/starlette/bin/uvicorn app:app --host 127.0.0.1
part: 1


desc: I1 cache:
desc: Timerange: Basic block 0 - 42592658
desc: Trigger: dump fwbench-starlette-w1

positions: line
events: Ir
summary: 0


totals: 206838560
fl=(1) ???
fn=(1) 0x0000000000001040
0 3
"""


def record(target: str, windows: tuple[float, ...], **kw: object) -> CostRecord:
    base = CostRecord(
        run_id="r1",
        target=target,
        started_at="2026-12-02T00:00:00+00:00",
        status="ok",
        failure="",
        requests_per_window=1000,
        windows=windows,
        processes=(CostProcess(1, "python", windows[0], 100.0),),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


# --- dumps ------------------------------------------------------------------------------------


def test_a_dump_gives_its_pid_trigger_and_totals() -> None:
    d = parse_dump(DUMP)
    assert (d.pid, d.instructions, d.trigger) == (2743, 206838560, "dump fwbench-starlette-w1")
    assert d.command.startswith("/envs/starlette/bin/uvicorn")


def test_a_dump_without_totals_falls_back_to_summary_and_garbage_is_refused() -> None:
    assert parse_dump("pid: 5\nsummary: 1234\n").instructions == 1234
    with pytest.raises(ValueError, match="no totals"):
        parse_dump("not a dump at all\n")


def test_window_dumps_are_taken_by_label_and_read_once(tmp_path: Path) -> None:
    (tmp_path / "callgrind.out.2743.1").write_text(DUMP)
    (tmp_path / "callgrind.out.2744.1").write_text(
        DUMP.replace("pid: 2743", "pid: 2744").replace("totals: 206838560", "totals: 1000")
    )
    (tmp_path / "callgrind.out.2743.2").write_text(DUMP.replace("-w1", "-w2"))
    (tmp_path / "callgrind.out.2743").write_text("still being written")  # the base file
    seen: set[Path] = set()
    w1 = read_window_dumps(tmp_path, "fwbench-starlette-w1", seen)
    assert sorted((d.pid, d.instructions) for d in w1) == [(2743, 206838560), (2744, 1000)]
    assert read_window_dumps(tmp_path, "fwbench-starlette-w1", seen) == []  # read once


def test_window_figures_sum_processes_and_split_them() -> None:
    windows, procs = window_figures(
        [{10: 990_000, 11: 10_000}, {10: 991_000, 11: 9_000}, {10: 989_000, 11: 11_000}],
        1000,
        {10: "gunicorn: worker", 11: "gunicorn: master"},
    )
    assert windows == (1000.0, 1000.0, 1000.0)
    assert [(p.pid, p.instructions_per_request, p.share_pct) for p in procs] == [
        (10, 990.0, 99.0),
        (11, 10.0, 1.0),
    ]


# --- the record -------------------------------------------------------------------------------


def test_a_record_round_trips_and_says_median_and_spread(tmp_path: Path) -> None:
    rec = record("starlette", (206_642.0, 206_716.0, 206_619.0))
    assert rec.instructions_per_request == 206_642.0
    assert rec.spread_pct == pytest.approx((206_716 - 206_619) / 206_642 * 100)
    path = tmp_path / "cost.jsonl"
    append_cost(path, rec)
    append_cost(path, rec.failed("start under valgrind: no good answer within 300 s"))
    back = list(read_costs(path))
    assert back[0] == rec
    assert back[1].status == "failed" and back[1].failure.startswith("start under valgrind")
    line = json.loads(path.read_text().splitlines()[0])
    assert line["schema"] == COST_SCHEMA and line["instructions_per_request"] == 206_642.0
    summary = rec.summary()
    for key in ("target", "instructions_per_request", "spread_pct", "windows"):
        assert key in summary
    assert summary["requests_per_window"] == 1000


def test_an_unknown_cost_version_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cost.jsonl"
    path.write_text(json.dumps({"schema": "fwbench.cost/9", "target": "x", "status": "ok"}) + "\n")
    with pytest.raises(RecordError, match=r"cost\.jsonl:1: .*fwbench\.cost/9"):
        list(read_costs(path))


def test_spread_is_max_minus_min_over_median() -> None:
    assert spread_pct([99.0, 100.0, 101.0]) == pytest.approx(2.0)
    assert spread_pct([]) == 0.0


# --- config -----------------------------------------------------------------------------------


def test_cost_keys_are_checked_like_the_others(tmp_path: Path) -> None:
    cfg = load_config(None)
    assert cfg.cost.requests == 1000 and cfg.check.cost_min_change_pct == 1.0
    assert cfg.run.cost is False and cfg.nightly.cost is False
    for text, key in (
        ("[cost]\nrepeats = 1\n", "cost.repeats"),
        ("[cost]\nrequests = 0\n", "cost.requests"),
        ("[check]\ncost_min_change_pct = 0\n", "check.cost_min_change_pct"),
        ("[nightly]\ncost = 1\n", "nightly.cost"),
        ("[cost]\nwindow = 3\n", "cost.window"),
    ):
        path = tmp_path / "bench.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert err.value.key == key
    (tmp_path / "bench.toml").write_text("[nightly]\ncost = true\n[cost]\nrequests = 500\n")
    ok = load_config(tmp_path / "bench.toml")
    assert ok.nightly.cost and ok.cost.requests == 500


def test_a_missing_valgrind_says_how_to_install_it() -> None:
    assert find_tool("no-such-valgrind-here") == INSTALL_HINT
    assert "apt-get install valgrind" in INSTALL_HINT


def test_fwbench_cost_without_valgrind_exits_2_with_the_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from commands import cost

    (tmp_path / "bench.toml").write_text('[cost]\nvalgrind = "no-such-valgrind-here"\n')
    args = argparse.Namespace(
        config=str(tmp_path / "bench.toml"),
        targets=None,
        requests=None,
        repeats=None,
        warmup=None,
        json=False,
    )
    assert cost.run(args) == 2
    assert "apt-get install valgrind" in capsys.readouterr().err


# --- the gate ---------------------------------------------------------------------------------

BASE = (206_642.0, 206_716.0, 206_619.0)  # spread 0.047 %


def test_the_cost_gate_catches_a_1_pct_rise_and_leaves_a_a_alone() -> None:
    pair = Pair("app", "app-new")
    up = tuple(w * 1.01 for w in BASE)
    findings, problems = within_cost(
        [record("app", BASE), record("app-new", up)], [pair], 1.0, run_id="r", date="d",
        fingerprint="f",
    )  # fmt: skip
    assert not problems
    (f,) = findings
    assert f.regression and f.alerts and f.metric == "cost"
    assert f.change_pct == pytest.approx(1.0, abs=0.01)
    same = tuple(w * 1.0003 for w in BASE)
    findings, _ = within_cost(
        [record("app", BASE), record("app-new", same)], [pair], 1.0, run_id="r", date="d",
        fingerprint="f",
    )  # fmt: skip
    assert not findings[0].regression
    faster = tuple(w * 0.95 for w in BASE)
    findings, _ = within_cost(
        [record("app", BASE), record("app-new", faster)], [pair], 1.0, run_id="r", date="d",
        fingerprint="f",
    )  # fmt: skip
    assert not findings[0].regression  # fewer instructions is no regression


def test_a_threshold_below_the_noise_is_refused_with_the_spread_named() -> None:
    noisy = (990_000.0, 1_005_000.0, 1_000_000.0)  # 1.5 % spread, as tornado's windows
    findings, problems = within_cost(
        [record("a", noisy), record("b", noisy)], [Pair("a", "b")], 1.0, run_id="r", date="d",
        fingerprint="f",
    )  # fmt: skip
    assert findings == []
    (msg,) = problems
    assert "cost_min_change_pct = 1 % is refused" in msg and "1.500 %" in msg
    assert cost_noise_problem(1.0, 0.05, "x") is None
    assert cost_level(1.0, 0.05) == pytest.approx(0.9)


def test_a_pair_side_not_counted_is_a_problem_and_no_cost_pass_is_nothing() -> None:
    failed = record("b", BASE).failed("start under valgrind: exited with code 1")
    findings, problems = within_cost(
        [record("a", BASE), failed], [Pair("a", "b")], 1.0, run_id="r", date="d", fingerprint="f"
    )
    assert findings == [] and "exited with code 1" in problems[0]
    assert within_cost([], [Pair("a", "b")], 1.0, run_id="r", date="d", fingerprint="f") == (
        [],
        [],
    )


def points(values: list[float], spread: float = 0.05) -> list[CostPoint]:
    start = date(2026, 11, 1)
    out = []
    for i, v in enumerate(values):
        night = (start + timedelta(days=i)).isoformat()
        out.append(CostPoint(f"run{i}", night, night + "T02:00:00+00:00", v, spread))
    return out


def test_the_history_gate_finds_a_held_1_pct_step_and_not_a_flat_series() -> None:
    flat = [206_600.0 + (i % 3) * 30 for i in range(20)]
    step = flat[:16] + [v * 1.012 for v in flat[16:]]
    params = HistoryParams()
    findings, problems = history_cost_gate(
        {"starlette": points(step), "flask": points([1_096_900.0] * 20)}, "fp", params, 1.0
    )
    assert problems == []
    (f,) = findings
    assert (f.target, f.metric, f.change_run_id) == ("starlette", "cost", "run16")
    findings, _ = history_cost_gate({"starlette": points(flat)}, "fp", params, 1.0)
    assert findings == []
    _, problems = history_cost_gate({"tornado": points(flat, spread=1.6)}, "fp", params, 1.0)
    assert "refused" in problems[0]


def test_compare_says_how_many_more_instructions() -> None:
    c = CostChange("app", 206_600.0, 210_319.0, 0.05, 0.04)
    assert c.words == "1.8 % more instructions per request (spread 0.05 % / 0.04 %)"
    same = CostChange("app", 206_600.0, 206_650.0, 0.05, 0.04)
    assert same.words.startswith("same within the spread")


# --- the report -------------------------------------------------------------------------------

FIXTURE_RUN = Path(__file__).resolve().parent / "fixtures" / "run-small"


def test_the_report_shows_cost_beside_rps_only_when_there_is_a_cost_pass(tmp_path: Path) -> None:
    from analysis.charts import all_charts, overlapping_texts
    from analysis.charts.cost import cost_and_rps
    from analysis.exporters import render_json, render_markdown
    from analysis.html import render_html
    from analysis.load import load_runs
    from analysis.summary import summarize

    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    append_cost(run / "cost.jsonl", record("starlette", BASE, run_id="20250106-030000-small"))
    append_cost(
        run / "cost.jsonl",
        record("bottle", BASE).failed("start under valgrind: exited with code 1"),
    )
    s = summarize(load_runs([run]))
    assert [c.target for c in s.costs] == ["starlette", "bottle"]
    assert s.costs[0].rps is not None  # beside requests/s of the first setting
    text = render_markdown(s)
    assert "## Cost per request (callgrind)" in text and "206,642" in text
    assert "bottle: start under valgrind" in text and "kernel work" in text
    assert json.loads(render_json(s))["cost"]["targets"][0]["instructions_per_request"]
    page = render_html(s, [])
    assert 'id="cost"' in page and "Limits:" in page
    fig = cost_and_rps(s)
    assert fig is not None and overlapping_texts(fig) == []
    assert "cost" in [c.name for c in all_charts(s)]
    plain = summarize(load_runs([FIXTURE_RUN]))
    assert plain.costs == () and "Cost per request" not in render_markdown(plain)


# --- end to end ---------------------------------------------------------------------------------


def _cost_config(cfg: Config) -> Config:
    return cfg.override(**{"cost.requests": 300, "cost.repeats": 2, "cost.warmup": 100})


AA_SPREAD_PCT = 1.0
needs_valgrind = pytest.mark.skipif(
    isinstance(find_tool(), str), reason="valgrind is not installed (make system-deps)"
)


@pytest.mark.e2e
@needs_valgrind
@pytest.mark.timeout(300)
def test_fwbench_cost_counts_and_the_gate_catches_the_extra_work(
    fixture_config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    """fx-knob-work is fx-knob-base plus 400 Python loop iterations per request: the cost gate
    alerts on it and stays quiet on fx-knob-base2 (the same server as base: A/A)."""
    from analysis.check import run_check
    from commands.common import discover_targets
    from commands.cost import measure_run

    # paced per target: 2 x each server's probed time per request (counting on)
    cfg = _cost_config(fixture_config).override(**{"cost.pace_factor": 2.0})
    targets = discover_targets(cfg, ["fx-knob-base", "fx-knob-work", "fx-knob-base2"])
    run_dir, records = measure_run(cfg, targets)
    by = {r.target: r for r in records}
    assert all(r.status == "ok" for r in records), [r.failure for r in records]
    for r in records:  # each its own pace, recorded with the probe it came from
        assert r.probe_ms_per_request is not None and r.probe_ms_per_request > 0
        assert r.interval_ms >= 2 * r.probe_ms_per_request
        assert r.interval_ms == round(r.interval_ms)
    base, work, aa = (by[n] for n in ("fx-knob-base", "fx-knob-work", "fx-knob-base2"))
    rise = (work.instructions_per_request or 0) / (base.instructions_per_request or 1) - 1
    aa_diff = (aa.instructions_per_request or 0) / (base.instructions_per_request or 1) - 1
    print(
        f"base {base.instructions_per_request:,.0f} (spread {base.spread_pct:.3f} %), "
        f"work {work.instructions_per_request:,.0f} (+{rise * 100:.2f} %), "
        f"A/A {aa_diff * 100:+.3f} %"
    )
    assert rise > 0.5 and abs(aa_diff) < 0.02
    assert (run_dir / "cost.jsonl").is_file() and (run_dir / "run.json").is_file()
    # A threshold well above this machine's noise (its A/A spread reached 0.47 % while other
    # work loaded it, and 1 % needs 4x that): the point here is the +300 % rise, not 1 %.
    cfg = cfg.override(**{"check.cost_min_change_pct": 10.0})
    bad = run_check(cfg, run_dir=run_dir, pairs=(Pair("fx-knob-base", "fx-knob-work"),))
    assert bad.status == 1, bad.markdown
    assert "instructions/request" in bad.markdown
    good = run_check(cfg, run_dir=run_dir, pairs=(Pair("fx-knob-base", "fx-knob-base2"),))
    assert good.status == 0, good.markdown


@pytest.mark.e2e
@needs_valgrind
@pytest.mark.timeout(400)
def test_count_excludes_the_warmup(fixture_config: Config, tmp_path: Path) -> None:
    """starlette (a real target): a warm-up ten times the default gives the same count per request,
    within the windows' spread (what is counted is only the windows)."""
    from loadgen.cost import measure
    from loadgen.envs import ensure_env
    from loadgen.launcher import LaunchOptions
    from loadgen.targets import load_target

    root = Path(__file__).resolve().parent.parent
    target = load_target(root / "targets" / "starlette")
    env = ensure_env(target, Path(fixture_config.paths.envs_dir))
    launch = LaunchOptions.from_config(fixture_config)
    figures = []
    for warmup in (500, 5000):  # the default warm-up, and ten times it
        spec = CostSpec(requests=1000, repeats=2, warmup=warmup)
        rec = measure(target, env, spec=spec, launch=launch, work_dir=tmp_path / f"w{warmup}")
        assert rec.status == "ok", rec.failure
        figures.append(rec)
    short, long = figures
    a, b = short.instructions_per_request or 0, long.instructions_per_request or 0
    print(f"warm-up 500: {a:,.0f} {short.windows}; warm-up 5000: {b:,.0f} {long.windows}")
    # Within the A/A spread of fresh servers (python -m benchmarks.cost_gate: 0.96 % over 20
    # starlette servers on this VM); had the 4,500 extra warm-up requests been counted, the
    # figure per request would be 2.5 times as large.
    assert abs(b / a - 1) * 100 <= AA_SPREAD_PCT


def test_stored_cost_nights_reach_the_history_gate_through_check(tmp_path: Path) -> None:
    """Cost records stored with their runs (schema 2) feed ``fwbench check --history``."""
    from analysis.check import run_check
    from analysis.history import History
    from benchmarks.synthetic import synthetic_header, synthetic_machine, synthetic_record
    from loadgen.config import Check, Paths

    machine = synthetic_machine()
    hist = tmp_path / "h.sqlite"
    with History(hist) as h:
        for i in range(20):
            night = date(2026, 11, 1) + timedelta(days=i)
            started = f"{night.isoformat()}T02:00:00+00:00"
            run_id = f"{night.strftime('%Y%m%d')}T020000Z-cost"
            level = 206_600.0 * (1.012 if i >= 16 else 1.0) + (i % 3) * 20
            trials = [synthetic_record(run_id, "starlette", 10_000.0, started_at=started,
                                       machine=machine)]  # fmt: skip
            costs = [record("starlette", (level, level + 40, level - 30), run_id=run_id)]
            h.store(synthetic_header(run_id, started, machine), trials, costs=costs)
        assert len(h.cost_series(machine["fingerprint"])["starlette"]) == 20
    paths = Paths(targets_dir=str(tmp_path), reports_dir=str(tmp_path / "r"), history=str(hist))
    cfg = Config(paths=paths, check=Check(), root=str(tmp_path))
    r = run_check(cfg, history_gate=True, today=date(2026, 12, 1))
    cost = [f for f in r.findings if f.metric == "cost"]
    assert r.status == 1 and [f.change_run_id for f in cost] == ["20261117T020000Z-cost"]
    assert "instructions/request" in r.markdown
    from analysis.trends import build

    with History(hist) as h:
        trends = build(h)
    assert trends is not None and "trend-cost" in [c.name for c in trends.charts]
    (series,) = [s for s in trends.series if s.name == "starlette (callgrind)"]
    (cp,) = series.change_points["cost"]
    assert series.points[cp.index].night == "2026-11-17" and 1.0 < cp.change_pct < 1.4
    assert "starlette (callgrind)" in trends.html and "instructions/request" in trends.html
    refused = run_check(
        replace(cfg, check=Check(cost_min_change_pct=0.05)), history_gate=True,
        today=date(2026, 12, 1),
    )  # fmt: skip
    assert any("cost_min_change_pct = 0.05 % is refused" in p for p in refused.problems)


@pytest.mark.e2e
@needs_valgrind
@pytest.mark.timeout(300)
def test_run_with_cost_adds_the_pass_after_the_matrix(
    fixture_config: Config, tmp_path: Path
) -> None:
    """``fwbench run --cost``: the matrix, then ``cost.jsonl`` in the same run folder; a target
    that failed verification gets a failed cost record with the reason, not a gap."""
    from analysis.load import load_runs
    from analysis.summary import summarize
    from loadgen.config import LoadSetting, Run
    from loadgen.records import run_costs
    from loadgen.runner import Runner
    from loadgen.targets import discover

    load = LoadSetting(name="short", connections=(2,), duration=1.0, warmup=0.3)
    cfg = replace(
        _cost_config(fixture_config),
        run=Run(targets=("fx-knob-base", "fx-crash"), trials=1, load=(load,), cost=True),
    )
    targets = discover(Path(cfg.paths.targets_dir)).select(list(cfg.run.targets))
    runner = Runner(cfg, targets, run_dir=tmp_path / "run")
    assert runner.execute() == 0
    costs = {c.target: c for c in run_costs(runner.run_dir)}
    assert costs["fx-knob-base"].status == "ok", costs["fx-knob-base"].failure
    assert costs["fx-crash"].status == "failed" and "verification" in costs["fx-crash"].failure
    s = summarize(load_runs([runner.run_dir], samples=False))
    assert [c.target for c in s.costs if c.ok] == ["fx-knob-base"]
    assert s.costs[0].rps is not None  # beside its requests/s


def test_a_paced_window_starts_each_request_on_its_slot() -> None:
    """``[cost] interval_ms``: request i starts i × interval after the first (a fixed pace, so
    work a server does per wall-clock second adds the same count on every server); requests
    whose slot had passed when the previous answer came are counted as late."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from loadgen.cost import KeepAliveClient

    starts: list[float] = []
    slow = {3}  # the answer to request 3 takes longer than the interval

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            starts.append(time.monotonic())
            if len(starts) in slow:
                time.sleep(0.12)
            body = b'{"message": "Hello world!"}'
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            self.wfile.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)  # one write

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = KeepAliveClient("127.0.0.1", server.server_address[1], "/", "json", 5.0)
        late = client.send(8, interval_s=0.05)
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(starts) == 8
    # never ahead of the pace: request i starts no earlier than its slot
    assert all(t - starts[0] >= i * 0.05 - 0.005 for i, t in enumerate(starts)), starts
    # the slow answer (request 3 ends ~220 ms) makes the slots at 150 and 200 ms late; the
    # pace is back from the slot at 250 ms on (a loaded machine may lose one more)
    assert 2 <= late <= 3, (late, starts)
    assert starts[-1] - starts[0] < 7 * 0.05 + 0.03, starts
    with pytest.raises(ConfigError) as err:
        Config().override(**{"cost.interval_ms": -1.0})
    assert err.value.key == "cost.interval_ms"


def test_a_target_s_pace_is_its_probed_time_times_the_factor_rounded_up() -> None:
    """``[cost] pace_factor``: the pace of each target follows its own time per request (Django
    under callgrind takes about 11 ms, Starlette 2-5 ms), never below ``interval_ms``."""
    from loadgen.cost import pace_ms

    spec = CostSpec(interval_ms=8.0, pace_factor=2.0)
    assert pace_ms(spec, 2.2) == 8.0  # 4.4 ms: the floor
    assert pace_ms(spec, 11.3) == 23.0  # 22.6 ms rounded up to a whole ms
    assert pace_ms(CostSpec(pace_factor=2.0), 0.2) == 1.0
    with pytest.raises(ConfigError) as err:
        Config().override(**{"cost.pace_factor": -1.0})
    assert err.value.key == "cost.pace_factor"
