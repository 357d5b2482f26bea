"""analysis.charts: every chart renders with 30 targets and no two texts overlap."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from analysis import charts
from analysis.load import load_runs
from analysis.summary import Summary, summarize
from benchmarks.synthrun import SynthLoad, make_run, many_targets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    targets = many_targets(30)
    targets[4] = replace(targets[4], saturated_trials=frozenset({1}))
    targets[9] = replace(targets[9], failure="server exited with code 1")
    targets[0] = replace(targets[0], name="a-very-long-target-name-that-goes-on-and-on-$x$")
    run = make_run(
        tmp_path_factory.mktemp("big") / "run",
        targets,
        trials=3,
        loads=(SynthLoad("closed-64", (64,)), SynthLoad("sweep", (16, 64, 256))),
        requests_cap=2000,
    )
    return summarize(load_runs([run]))


def _check(fig: Figure | None) -> Figure:
    assert fig is not None
    overlaps = charts.overlapping_texts(fig)
    assert overlaps == [], overlaps[:5]
    c = charts.render(fig, "x", "title", "alt")
    assert c.png.startswith(PNG_MAGIC) and b"<svg" in c.svg
    assert c.width_px > 100 and c.height_px > 100
    return fig


def test_rps_bars_30_targets(big: Summary) -> None:
    r = big.rankings[0]
    assert len(r.ranked) == 28
    fig = _check(charts.rps_bars(r))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 28 and labels[0].startswith("1. ")
    notes = " ".join(t.get_text() for t in fig.texts)
    assert "(client saturated)" in notes and "(failed)" in notes  # named, not drawn


def test_latency_spectrum_30_targets(big: Summary) -> None:
    fig = _check(charts.latency_spectrum(big.rankings[0]))
    assert len(fig.legends[0].get_texts()) == 28


def test_sweep_30_targets(big: Summary) -> None:
    _check(charts.sweep(big, "sweep"))
    assert charts.sweep(big, "closed-64") is None  # one connection count: no sweep


def test_resources_30_targets(big: Summary) -> None:
    _check(charts.resources(big, big.settings[0]))


def test_footprint_30_targets(big: Summary) -> None:
    _check(charts.footprint(big.footprints))


def test_all_charts_names(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "run",
        many_targets(3),
        loads=(SynthLoad("closed-64", (64,)), SynthLoad("sweep", (16, 64))),
        requests_cap=500,
    )
    names = [c.name for c in charts.all_charts(summarize(load_runs([run])))]
    assert names[:2] == ["rps-1-closed-64-raw-hello-c64", "latency-1-closed-64-raw-hello-c64"]
    assert "sweep-sweep" in names and "resources" in names and "footprint" in names
    assert len(names) == len(set(names))


def test_overlap_detector_finds_overlaps() -> None:
    fig = charts._figure(3, 2)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "one label here")
    ax.text(0.52, 0.5, "another label")
    assert ("one label here", "another label") in charts.overlapping_texts(fig)


def test_labels_are_plain_text() -> None:
    assert charts.label("a$b$c") == r"a\$b\$c"
    long = charts.label("x" * 80, limit=20)
    assert len(long) == 20 and long.endswith("…")
    assert charts.label("two\nlines") == "two lines"


def test_nothing_to_draw(big: Summary) -> None:
    assert charts.footprint([]) is None
    empty = replace(big.rankings[0], ranked=())
    assert charts.rps_bars(empty) is None
    assert charts.latency_spectrum(empty) is None
