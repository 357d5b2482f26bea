"""Profiles: collapsed stacks, the flame tree, the function table, the diff, the pages, the
records and config; end to end (``e2e``) a real target profiled by py-spy under load inside
``fwbench run --profile``, and its flame graph opened in headless Chromium."""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from analysis.flame import (
    build_tree,
    diff,
    diff_tree,
    frame_label,
    function_key,
    function_table,
    normalize,
)
from analysis.flamegraph import PAGE_CSP, ProfileView, diff_page, flame_page, flame_svg
from loadgen.config import Config, ConfigError, load_config
from loadgen.records import (
    PROFILE_FILE,
    ProfileRecord,
    RecordError,
    append_profile,
    format_collapsed,
    parse_collapsed,
    read_profiles,
    run_profiles,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_RUN = Path(__file__).resolve().parent / "fixtures" / "run-small"

# A hand-written profile: a server whose request handler calls a view and a renderer.
P = 'process 41:"/e/bin/python /e/bin/uvicorn app:app --port 8000"'
STACKS_TEXT = "\n".join(
    f"{P};{rest}" if rest else ""
    for rest in (
        "main (srv.py:10);handle (srv.py:20);view (app.py:5) 30",
        "main (srv.py:10);handle (srv.py:20);render (tpl.py:7) 50",
        "main (srv.py:10);handle (srv.py:20) 20",
        "",  # a blank line is skipped
        "main (srv.py:10) 100",
        "main (srv.py:10);handle (srv.py:20);view (app.py:5) 10",
    )
)


# --- collapsed stacks ---------------------------------------------------------------------------


def test_collapsed_stacks_are_parsed_and_equal_stacks_summed() -> None:
    stacks = parse_collapsed(STACKS_TEXT)
    assert len(stacks) == 4
    assert stacks[(P, "main (srv.py:10)", "handle (srv.py:20)", "view (app.py:5)")] == 40
    assert sum(stacks.values()) == 210
    assert parse_collapsed(format_collapsed(stacks)) == stacks  # written sorted, read back
    with pytest.raises(ValueError, match="line 2"):
        parse_collapsed("a;b 3\na;b three\n")


def test_frames_are_keyed_without_line_or_pid_and_labelled_short() -> None:
    assert function_key("view (app.py:5)") == "view (app.py)"
    assert function_key("<module> (uvicorn:1)") == "<module> (uvicorn)"
    assert function_key(P) == "process uvicorn app:app"
    assert frame_label(P) == "process 41: uvicorn app:app"
    assert function_key("no location") == "no location"


# --- the tree and the table ---------------------------------------------------------------------


def test_the_flame_tree_holds_total_and_self_samples() -> None:
    root = build_tree(parse_collapsed(STACKS_TEXT))
    assert root.value == 210
    main = root.find([P, "main (srv.py:10)"])
    handle = root.find([P, "main (srv.py:10)", "handle (srv.py:20)"])
    assert main is not None and handle is not None
    assert (main.value, main.self_value) == (210, 100)
    assert (handle.value, handle.self_value) == (110, 20)
    assert [c.name for c in handle.sorted_children()] == ["render (tpl.py:7)", "view (app.py:5)"]
    assert root.depth() == 5  # all, process, main, handle, view
    assert build_tree({("a",): 4}, scale=0.5).value == 2.0


def test_the_function_table_counts_self_and_total_once_per_stack() -> None:
    rows = {r.function: r for r in function_table(parse_collapsed(STACKS_TEXT))}
    assert (rows["main (srv.py:10)"].self_samples, rows["main (srv.py:10)"].total_samples) == (
        100,
        210,
    )
    assert (rows["render (tpl.py:7)"].self_samples, rows["render (tpl.py:7)"].total_samples) == (
        50,
        50,
    )
    assert rows["view (app.py:5)"].self_samples == 40
    # recursion: a stack holding f twice counts once in f's total
    rec = {r.function: r for r in function_table({("f", "g", "f"): 3, ("f",): 1})}
    assert (rec["f"].self_samples, rec["f"].total_samples) == (4, 4)
    assert (rec["g"].self_samples, rec["g"].total_samples) == (0, 3)
    first = function_table(parse_collapsed(STACKS_TEXT))[0]
    assert first.function == "main (srv.py:10)"  # most self samples first


# --- the differential view ----------------------------------------------------------------------


def test_diff_says_which_functions_gained_or_lost_samples_per_request() -> None:
    good = {("m (s.py:1)", "f (x.py:3)"): 10, ("m (s.py:1)", "g (y.py:1)"): 10}
    # The bad side answered twice the requests; f moved in its file (a new release) and does
    # four times the work per request; g does half.
    bad = {("m (s.py:1)", "f (x.py:9)"): 80, ("m (s.py:1)", "g (y.py:1)"): 10}
    rows = diff(good, bad, good_requests=1000, bad_requests=2000)
    assert [r.function for r in rows] == ["f (x.py)", "g (y.py)", "m (s.py)"]
    f, g, m = rows
    assert (f.good, f.bad, f.change) == pytest.approx((10.0, 40.0, 30.0))
    assert f.change_pct == pytest.approx(300.0)
    assert (g.good, g.bad, g.change) == pytest.approx((10.0, 5.0, -5.0))
    assert (m.good_total, m.bad_total, m.change) == pytest.approx((20.0, 45.0, 0.0))
    new = diff({("a",): 1}, {("a",): 1, ("b",): 5}, 100, 100)
    assert new[0].function == "b" and new[0].change_pct is None  # the good had none
    with pytest.raises(ValueError, match="per request"):
        diff(good, bad, 0, 10)


def test_the_diff_tree_is_the_bad_shape_with_each_frames_change() -> None:
    good = {("m (s.py:1)", "f (x.py:3)"): 10, ("m (s.py:1)", "gone (z.py:1)"): 10}
    bad = {("m (s.py:1)", "f (x.py:9)"): 80, ("m (s.py:1)", "new (n.py:2)"): 20}
    tree = diff_tree(good, bad, 1000, 2000)
    f = tree.find(["m (s.py)", "f (x.py)"])
    new = tree.find(["m (s.py)", "new (n.py)"])
    assert f is not None and new is not None
    assert (f.value, f.delta) == pytest.approx((40.0, 30.0))
    assert (new.value, new.delta) == pytest.approx((10.0, 10.0))
    assert tree.find(["m (s.py)", "gone (z.py)"]) is None  # only the table lists it
    assert tree.delta == pytest.approx(50.0 - 20.0)
    assert normalize({("f (a.py:1)",): 1, ("f (a.py:2)",): 2}) == {("f (a.py)",): 3}


# --- the pages ----------------------------------------------------------------------------------


def _frames(svg: str) -> dict[str, tuple[float, float, int]]:
    out = {}
    pattern = r'data-x0="([\d.]+)" data-x1="([\d.]+)" data-d="(\d+)"[^>]*data-n="([^"]*)"'
    for m in re.finditer(pattern, svg):
        out[html.unescape(m.group(4))] = (float(m.group(1)), float(m.group(2)), int(m.group(3)))
    return out


def test_the_svg_draws_each_frame_as_wide_as_its_samples() -> None:
    svg = flame_svg(build_tree(parse_collapsed(STACKS_TEXT)))
    frames = _frames(svg)
    assert len(frames) == 6  # all, process, main, handle, render, view
    x0, x1, d = frames["handle (srv.py:20)"]
    assert d == 3 and x1 - x0 == pytest.approx(110 / 210)
    r0, r1, _ = frames["render (tpl.py:7)"]
    v0, v1, _ = frames["view (app.py:5)"]
    assert (r0, r1 - r0) == pytest.approx((x0, 50 / 210))  # name order: render, then view
    assert (v0, v1 - v0) == pytest.approx((r1, 40 / 210))
    assert "process 41: uvicorn app:app" in frames  # the label, not the long command
    assert 'data-total="210"' in svg


def test_a_page_escapes_names_and_reaches_nothing_outside() -> None:
    hostile = "<script>alert(1)</script> (evil.py:1)"
    page = flame_page("t <b>", {("main (m.py:1)", hostile): 5, ("main (m.py:1)",): 5}, requests=50)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert page.count("<script>") == 1  # the page's own
    assert PAGE_CSP in page and "default-src 'none'" in PAGE_CSP
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "200.0 samples per 1,000 requests" in page  # 10 samples, 50 requests


def test_the_diff_page_colours_gains_red_and_losses_blue() -> None:
    good = {("m (s.py:1)", "f (x.py:3)"): 10, ("m (s.py:1)", "g (y.py:1)"): 10}
    bad = {("m (s.py:1)", "f (x.py:9)"): 80, ("m (s.py:1)", "g (y.py:1)"): 10}
    page = diff_page("d", diff_tree(good, bad, 1000, 2000), diff(good, bad, 1000, 2000))
    f = re.search(r'data-n="f \(x.py\)"><title>[^<]*</title><rect [^>]*fill="hsl\((\d+),', page)
    g = re.search(r'data-n="g \(y.py\)"><title>[^<]*</title><rect [^>]*fill="hsl\((\d+),', page)
    assert f and g and (f.group(1), g.group(1)) == ("0", "220")  # red, blue
    assert '<tr class="gain"><td class="fn">f (x.py)</td>' in page
    assert '<td class="num gain">+30</td>' in page


# --- records ------------------------------------------------------------------------------------


def _record(target: str = "starlette", **kw: object) -> ProfileRecord:
    base = dict(run_id="r1", target=target, started_at="2026-01-01T00:00:00+00:00", status="ok",
                error="", requests=5000, samples=210, rate_hz=100, duration_s=3.0,
                stacks=f"profiles/{target}.collapsed", py_spy="py-spy 0.4.3")  # fmt: skip
    base.update(kw)
    return ProfileRecord(**base)  # type: ignore[arg-type]


def test_a_profile_record_round_trips_and_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / PROFILE_FILE
    rec = _record(pids=(41, 42))
    append_profile(path, rec)
    append_profile(path, _record("bottle", status="failed", error="ptrace: denied", stacks=""))
    got = list(read_profiles(path))
    assert got[0] == rec and got[1].error == "ptrace: denied" and not got[1].ok
    assert run_profiles(tmp_path) == got and run_profiles(tmp_path / "none") == []
    bad = json.loads(path.read_text().splitlines()[0]) | {"schema": "fwbench.profile/9"}
    path.write_text(json.dumps(bad) + "\n" + json.dumps(rec.to_dict()) + "\n")
    with pytest.raises(RecordError, match=r"profiles.jsonl:1: .*fwbench.profile/9"):
        list(read_profiles(path))
    with pytest.raises(RecordError, match="without a reason"):
        _record(status="failed", error="")


def test_a_bad_py_spy_path_gives_a_failed_record_saying_why(tmp_path: Path) -> None:
    from loadgen.launcher import LaunchOptions
    from loadgen.profile import ProfileSpec, find_py_spy, profile_target
    from loadgen.targets import load_target

    target = load_target(ROOT / "targets" / "starlette")
    spec = ProfileSpec(py_spy=str(tmp_path / "no-such-py-spy"))
    assert isinstance(find_py_spy(spec.py_spy), str)
    rec = profile_target(target, None, spec=spec, launch=LaunchOptions(), run_dir=tmp_path,
                         client_cpus=())  # fmt: skip
    assert rec.status == "failed" and "no-such-py-spy: not found" in rec.error
    assert "pip install py-spy" in rec.error and rec.samples == 0


# --- config and flags ---------------------------------------------------------------------------


def test_profile_keys_are_checked_like_the_others(tmp_path: Path) -> None:
    cfg = load_config(None)
    assert cfg.profile.rate == 100 and cfg.run.profile is False and cfg.nightly.profile is False
    for text, key in (
        ("[profile]\nrate = 0\n", "profile.rate"),
        ("[profile]\nduration = nan\n", "profile.duration"),
        ("[profile]\nwarmup = -1\n", "profile.warmup"),
        ("[profile]\nconnections = 0\n", "profile.connections"),
        ('[profile]\npy_spy = " "\n', "profile.py_spy"),
        ("[nightly]\nprofile = 1\n", "nightly.profile"),
        ("[profile]\nhz = 3\n", "profile.hz"),
    ):
        path = tmp_path / "bench.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert err.value.key == key
    (tmp_path / "bench.toml").write_text("[nightly]\nprofile = true\n[profile]\nrate = 250\n")
    ok = load_config(tmp_path / "bench.toml")
    assert ok.nightly.profile and ok.profile.rate == 250


def test_run_profile_flag_and_nightly_key_turn_the_pass_on(tmp_path: Path) -> None:
    from commands import run as run_cmd
    from commands.nightly import nightly_config

    (tmp_path / "bench.toml").write_text("[nightly]\nprofile = true\n")
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    run_cmd.add_arguments(parser)
    args = parser.parse_args(["--config", str(tmp_path / "bench.toml"), "--profile"])
    assert run_cmd.configure(args).run.profile is True
    plain = parser.parse_args(["--config", str(tmp_path / "bench.toml")])
    cfg = run_cmd.configure(plain)
    assert cfg.run.profile is False and nightly_config(cfg).run.profile is True


# --- the report ---------------------------------------------------------------------------------


def _run_with_profiles(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    (run / "profiles").mkdir()
    (run / "profiles" / "starlette.collapsed").write_text(STACKS_TEXT)
    append_profile(run / PROFILE_FILE, _record())
    failed = _record("bottle", status="failed", error="py-spy: Permission denied", stacks="")
    append_profile(run / PROFILE_FILE, failed)
    return run


def test_the_report_shows_a_flame_graph_per_profiled_target(tmp_path: Path) -> None:
    from analysis import report
    from analysis.html import CSP

    run = _run_with_profiles(tmp_path)
    out = tmp_path / "report"
    (out).mkdir()
    page = report.write_report([run], out, tmp_path)
    text = page.read_text(encoding="utf-8")
    assert '<section id="profiles">' in text
    assert '<iframe class="flame" src="flame-starlette.html"' in text
    assert "bottle: py-spy: Permission denied" in text
    assert f"{CSP}; frame-src 'self'" in text  # frames only; still no script in the report
    assert "<script" not in text
    flame = (out / "flame-starlette.html").read_text(encoding="utf-8")
    assert "render (tpl.py:7)" in flame and "42.0 samples per 1,000 requests" in flame
    # Rendered again without profiles: as today (no section, the report's own policy), and the
    # flame page of the earlier render is gone.
    (run / PROFILE_FILE).unlink()
    text = report.write_report([run], out, tmp_path).read_text(encoding="utf-8")
    assert "profiles" not in text and "frame-src" not in text
    assert not list(out.glob("flame-*.html"))


def test_a_run_without_profiles_renders_exactly_as_before(tmp_path: Path) -> None:
    from analysis.html import render_html
    from analysis.load import load_runs
    from analysis.summary import summarize

    s = summarize(load_runs([FIXTURE_RUN]))
    assert render_html(s, [], profiles=()) == render_html(s, [])
    view = ProfileView(_record(), parse_collapsed(STACKS_TEXT))
    assert render_html(s, [], profiles=[view]) != render_html(s, [])


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_run_profile_samples_real_targets_and_chromium_shows_the_graph(
    fixture_config: Config, tmp_path: Path
) -> None:
    """``fwbench run --profile`` on starlette (uvicorn, one process) and flask (gunicorn: an
    arbiter and a worker): the measured trials in trials.jsonl, then a profiled trial each (not
    in trials.jsonl) whose stacks name the framework's own functions; the report's flame page
    opens in headless Chromium, its script zooms and searches, and shows a Starlette function.
    A py-spy that never attaches (``/bin/true``) gives a failed record saying so."""
    from analysis import report
    from loadgen.config import LoadSetting, Profile, Run
    from loadgen.launcher import LaunchOptions
    from loadgen.profile import ProfileSpec, Tool, profile_target
    from loadgen.records import read_records
    from loadgen.runner import Runner
    from loadgen.targets import discover

    load = LoadSetting(name="short", connections=(8,), duration=1.0, warmup=0.3)
    cfg = replace(
        fixture_config,
        paths=replace(fixture_config.paths, targets_dir=str(ROOT / "targets")),
        run=Run(targets=("starlette", "flask"), trials=1, load=(load,), profile=True),
        profile=Profile(duration=3.0, warmup=1.0, connections=16),
    )
    targets = discover(Path(cfg.paths.targets_dir)).select(list(cfg.run.targets))
    runner = Runner(cfg, targets, run_dir=tmp_path / "run")
    assert runner.execute() == 0
    trials = list(read_records(runner.trials_path))
    assert sorted(t.target for t in trials) == ["flask", "starlette"]  # the measured ones only
    profiles = {p.target: p for p in run_profiles(runner.run_dir)}
    for name, folder in (("starlette", "starlette/"), ("flask", "flask/")):
        p = profiles[name]
        assert p.status == "ok", p.error
        assert p.requests > 0 and p.samples > 0 and p.duration_s > 2.5
        stacks = p.read_stacks(runner.run_dir)
        assert sum(stacks.values()) == p.samples
        own = sum(n for s, n in stacks.items() if any(f"({folder}" in f for f in s))
        assert own > 0, f"no {folder} frame in {name}'s stacks"
        top = function_table(stacks)[:5]
        print(f"{name}: {p.requests:,} requests, {p.samples:,} samples, pids {p.pids}; top 5:")
        for r in top:
            print(f"    {r.self_samples:5d} self {r.total_samples:5d} total  {r.function}")
    assert len(profiles["flask"].pids) >= 2  # gunicorn's arbiter and its worker

    # A py-spy that exits at once, never sampling: the record says why.
    from loadgen.envs import ensure_env

    star = targets[0] if targets[0].name == "starlette" else targets[1]
    env = ensure_env(star, Path(cfg.paths.envs_dir))
    bad = profile_target(star, env, spec=ProfileSpec(duration=1.0, warmup=0.0),
                         launch=LaunchOptions.from_config(cfg), run_dir=tmp_path / "bad",
                         client_cpus=cfg.cpus.client, tool=Tool("/bin/true", "true"))  # fmt: skip
    assert bad.status == "failed" and "py-spy exited with status 0" in bad.error, bad.error

    page = report.write_report([runner.run_dir], tmp_path / "report", tmp_path)
    assert 'src="flame-starlette.html"' in page.read_text(encoding="utf-8")
    flame = page.with_name("flame-starlette.html")

    from tests.test_analysis_browser import CHROMIUM, _chromium

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom",
                     flame.as_uri() + "#zoom=Router.app"], tmp_path / "chromium")  # fmt: skip
    assert 'data-ready="1"' in dom  # the script ran
    labels = [html.unescape(t) for t in re.findall(r"<text [^>]*>([^<]+)</text>", dom)]
    assert any(label.startswith("Router.app (starlette/routing.py") for label in labels), labels
    assert '<button id="reset" type="button">' in dom  # zoomed in: "Reset zoom" enabled
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom",
                     flame.as_uri() + "#search=starlette"], tmp_path / "chromium")  # fmt: skip
    found = re.search(r'<span id="found" class="small">(\d+) frames match, ([\d.]+) %', dom)
    assert found and int(found.group(1)) > 0 and 0 < float(found.group(2)) <= 100
    assert dom.count('class="f match"') == int(found.group(1))
