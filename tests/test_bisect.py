"""``fwbench bisect``: the wheel farm, the plan (singles, pairs, halves), the culprit rule on given
numbers, the record; and, end to end, a real bisect naming the package that was made slow."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import ClassVar

import pytest

from analysis.gate import WithinParams
from benchmarks.wheelfarm import LOOPS, NEUTRAL, SLOW, build_farm, make_fixture, write_wheel
from commands.bisect import Bisector, bisect, culprits_of, decide, effects, verdict_of
from commands.cli import main
from loadgen.bisect import (
    Group,
    Planned,
    Side,
    bisect_config,
    complete,
    plan_groups,
    side_from_run,
    variant_pins,
    variant_requirements,
)
from loadgen.config import load_config
from loadgen.envs import uv_path
from loadgen.records import RecordError
from loadgen.records.bisect import BisectRecord, Measured, read_bisect
from loadgen.records.packages import PackageChange, diff_packages, parse_lock
from loadgen.targets import load_target

FIXTURE_RUN = Path(__file__).parent / "fixtures" / "run-small"


def ch(name: str, before: str = "1.0", after: str = "2.0") -> PackageChange:
    return PackageChange(name, before, after)


def m(label: str, change: float | None, p: float | None, *changes: PackageChange) -> Measured:
    return Measured(label, changes, 1, change, p, 7 if change is not None else 0, "")


# --- the wheel farm -----------------------------------------------------------------------------


def test_a_written_wheel_is_a_zip_with_its_metadata_and_a_true_record(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, "fwb-demo", "3.1", "X = 1\n")
    assert wheel.name == "fwb_demo-3.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert names == {
            "fwb_demo/__init__.py",
            "fwb_demo-3.1.dist-info/METADATA",
            "fwb_demo-3.1.dist-info/WHEEL",
            "fwb_demo-3.1.dist-info/RECORD",
        }
        meta = zf.read("fwb_demo-3.1.dist-info/METADATA").decode()
        assert "Name: fwb-demo\n" in meta and "Version: 3.1\n" in meta
        record = zf.read("fwb_demo-3.1.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(path)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={want}" and int(size) == len(data)
    assert write_wheel(tmp_path / "again", "fwb-demo", "3.1", "X = 1\n").read_bytes() == (
        wheel.read_bytes()
    ), "a rebuilt wheel is byte for byte the same"


def test_the_farm_makes_the_slow_package_ten_times_the_work_and_the_neutral_the_same(
    tmp_path: Path,
) -> None:
    wheels = build_farm(tmp_path)
    assert sorted(w.name for w in wheels) == [
        "fwb_neutralpkg-1.0-py3-none-any.whl",
        "fwb_neutralpkg-2.0-py3-none-any.whl",
        "fwb_slowpkg-1.0-py3-none-any.whl",
        "fwb_slowpkg-2.0-py3-none-any.whl",
    ]
    assert LOOPS[(SLOW, "2.0")] == 10 * LOOPS[(SLOW, "1.0")]
    assert LOOPS[(NEUTRAL, "2.0")] == LOOPS[(NEUTRAL, "1.0")]


@pytest.mark.e2e
def test_the_farm_wheels_install_into_a_venv_and_run(tmp_path: Path) -> None:
    build_farm(tmp_path / "wheels")
    venv = tmp_path / "venv"
    uv = uv_path()
    subprocess.run([uv, "venv", "-q", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "-p", str(py), "--no-index", "--find-links",
         str(tmp_path / "wheels"), f"{SLOW}==2.0", f"{NEUTRAL}==1.0"],
        check=True, timeout=120,
    )  # fmt: skip
    code = (
        "import fwb_slowpkg as s, fwb_neutralpkg as n;"
        "print(s.__version__, s.LOOPS, n.LOOPS, s.work())"
    )
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True)
    version, slow_loops, neutral_loops, _ = out.stdout.split()
    assert (version, int(slow_loops), int(neutral_loops)) == ("2.0", 4000, 400)
    check = subprocess.run([uv, "pip", "check", "-p", str(py)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


# --- planning -----------------------------------------------------------------------------------


def test_six_changes_or_fewer_are_one_candidate_each_more_are_two_halves() -> None:
    six = [ch(f"p{i}") for i in range(6)]
    assert plan_groups(six) == [(c,) for c in six]
    nine = [ch(f"p{i}") for i in reversed(range(9))]
    halves = plan_groups(nine)
    assert [[c.name for c in g] for g in halves] == [
        ["p0", "p1", "p2", "p3", "p4"],
        ["p5", "p6", "p7", "p8"],
    ]


def test_a_change_that_does_not_install_alone_is_paired_with_the_one_it_needs() -> None:
    flask, werkzeug, click = ch("flask"), ch("werkzeug"), ch("click")

    def installable(group: Group) -> str:
        names = {c.name for c in group}
        if "flask" in names and "werkzeug" not in names:
            return "flask==2.0 depends on werkzeug>=2.0"
        if "werkzeug" in names and "flask" not in names:
            return "werkzeug==2.0 depends on flask>=2.0"
        return ""

    changes = [flask, werkzeug, click]
    planned = complete(plan_groups(changes), changes, installable)
    assert planned == [
        Planned((click,), "+click"),
        Planned((flask, werkzeug), "+flask+werkzeug", True, "needs werkzeug 1.0 → 2.0"),
    ]  # werkzeug's own pair is the same candidate: measured once


def test_a_change_no_partner_can_fix_is_kept_as_not_installable() -> None:
    a, b = ch("a"), ch("b")
    planned = complete([(a,), (b,)], [a, b], lambda g: "no" if g[0].name == "a" else "")
    assert planned[0] == Planned((a,), "+a", False, "no")
    assert planned[1] == Planned((b,), "+b")


def test_a_variant_is_good_with_its_changes_applied_keeping_editable_lines() -> None:
    good = {"flask": "1.0", "six": "1.16", "click": "8.0"}
    group = (ch("flask"), PackageChange("six", "1.16", ""), PackageChange("new", "", "0.1"))
    pins = variant_pins(good, group)
    assert pins == {"flask": "2.0", "click": "8.0", "new": "0.1"}
    text = variant_requirements("-e .\n--hash=sha256:abc\nflask==1.0\n", pins)
    assert text == "-e .\nclick==8.0\nflask==2.0\nnew==0.1\n"


def test_a_side_comes_from_the_runs_kept_lock_else_from_its_verdict(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_RUN, run)
    side = side_from_run(run, "starlette")  # no locks/ folder: the verdict's packages
    assert side.label == "run" and side.packages["anyio"] == "4.6.2"
    assert parse_lock(side.lock_text) == dict(side.packages)
    (run / "locks").mkdir()
    (run / "locks" / "starlette.txt").write_text("anyio==9.9\n")
    assert side_from_run(run, "starlette").packages == {"anyio": "9.9"}


# --- the decision on given numbers ---------------------------------------------------------------


def test_a_culprit_drops_significantly_and_at_least_half_as_much_as_bad() -> None:
    bad = m("bad", -40.0, 0.001)
    cands = [
        m("+slow", -38.0, 0.001, ch("slow")),
        m("+bit", -8.0, 0.001, ch("bit")),
        m("+neutral", 1.5, 0.6, ch("neutral")),
        m("+quick", 9.0, 0.001, ch("quick")),
        m("+broken", None, None, ch("broken")),
        m("+noisy", -35.0, 0.02, ch("noisy")),
    ]
    bad_v, judged = decide(bad, cands, alpha=0.01)
    assert bad_v.verdict == "reproduced"
    assert [c.verdict for c in judged] == [
        "culprit",
        "partial",
        "no effect",
        "faster",
        "not measured",
        "no effect",
    ]
    (culprit,) = culprits_of(judged)
    assert (culprit.name, culprit.good, culprit.bad, culprit.change_pct) == (
        "slow",
        "1.0",
        "2.0",
        -38.0,
    )


def test_no_culprit_when_the_bad_side_does_not_reproduce_the_drop() -> None:
    bad_v, judged = decide(m("bad", -2.0, 0.3), [m("+x", -30.0, 0.001, ch("x"))], alpha=0.01)
    assert bad_v.verdict == "not reproduced"
    assert judged[0].verdict == "slower" and culprits_of(judged) == ()
    assert verdict_of(m("half-a", -30.0, 0.001), m("bad", -30.0, 0.001, ch("x")), 0.01,
                      group=True) == "slower"  # fmt: skip


def test_effects_run_the_within_run_gate_on_requests_per_second() -> None:
    rps = {
        "t@good": [1000.0, 1010, 990, 1005, 995, 1002, 998],
        "t@bad": [600.0, 610, 590, 605, 595, 602, 598],
        "t@+same": [1001.0, 1009, 991, 1004, 996, 1003, 997],
    }
    found = effects(rps, "t@good", ["t@bad", "t@+same"], WithinParams(0.01, 0.0, "holm", 7))
    assert found["t@bad"].change_pct == pytest.approx(-40.0, abs=0.5)
    assert found["t@bad"].pvalue < 1e-6
    assert found["t@+same"].pvalue > 0.01


class _Synthetic(Bisector):
    """Resolves everything; measures a drop of 30 % in every environment holding ``p06``."""

    calls: ClassVar[list[list[str]]] = []

    def installable(self, group: Group) -> str:
        return ""

    def round(self, n: int, planned: list[Planned]) -> tuple[Measured, list[Measured]]:  # type: ignore[override]
        _Synthetic.calls.append([p.label for p in planned])
        changed = diff_packages(self.good.packages, self.bad.packages)
        bad = Measured("bad", changed, n, -30.0, 1e-5, 7, "")
        return bad, [
            Measured(p.label, p.changes, n, -29.0 if "p06" in p.names else 0.4,
                     1e-5 if "p06" in p.names else 0.7, 7, "")
            for p in planned
        ]  # fmt: skip


def test_a_large_changed_set_is_searched_by_halves_down_to_the_culprit(tmp_path: Path) -> None:
    good = {f"p{i:02d}": "1.0" for i in range(14)}
    bad = {f"p{i:02d}": "2.0" for i in range(14)}
    target = load_target(Path(__file__).parent / "fixtures" / "targets" / "fx-ok")
    cfg = bisect_config(load_config(None), trials=7, load=load_config(None).run.load[0],
                        connections=8)  # fmt: skip
    _Synthetic.calls = []
    rec = bisect(cfg, target, Side("a", "", good), Side("b", "", bad), folder=tmp_path,
                 make=_Synthetic)  # fmt: skip
    # 14 → halves of 7: p00..p06 is still more than 6 → halves of 4 and 3 → one by one
    assert _Synthetic.calls == [
        ["half-a", "half-b"],
        ["half-a", "half-b"],
        ["+p04", "+p05", "+p06"],
    ]
    assert [c.name for c in rec.culprits] == ["p06"]
    assert rec.candidates[0].verdict == "reproduces"
    again = read_bisect(tmp_path / "bisect.json")
    assert again == rec


def test_a_bisect_record_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bisect.json"
    path.write_text(json.dumps({"schema": "fwbench.bisect/9", "target": "x"}))
    with pytest.raises(RecordError, match=r"fwbench\.bisect/9"):
        read_bisect(path)


def test_the_record_holds_the_promised_keys() -> None:
    rec = BisectRecord(
        target="t", good="g", bad="b", changed=(ch("x"),), bad_side=None, candidates=(),
        culprits=(), trials=7, wall_s=1.0, run_dir="/r", started_at="", load={},
    )  # fmt: skip
    d = rec.to_dict()
    want = {"target", "good", "bad", "changed", "candidates", "culprits", "trials", "wall_s"}
    assert want | {"run_dir", "schema"} <= set(d)
    assert d["changed"] == [{"name": "x", "good": "1.0", "bad": "2.0"}]
    assert BisectRecord.from_dict(d) == rec


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_bisect_names_the_slow_package_and_not_the_neutral_one(
    tmp_path: Path, envs_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fx = make_fixture(tmp_path / "fx", envs_dir=envs_dir)
    old = tmp_path / "old.txt"
    shutil.copy(fx.target_dir / "requirements.txt", old)
    assert parse_lock(old.read_text())[SLOW] == "1.0"

    assert main(["--config", str(fx.config), "lock", "--upgrade"]) == 0
    printed = capsys.readouterr().out
    for name in (SLOW, NEUTRAL):
        assert any(
            name in line and "1.0" in line and "2.0" in line for line in printed.splitlines()
        )
    new = tmp_path / "new.txt"
    shutil.copy(fx.target_dir / "requirements.txt", new)
    changes = diff_packages(parse_lock(old.read_text()), parse_lock(new.read_text()))
    assert [(c.name, c.before, c.after) for c in changes] == [
        (NEUTRAL, "1.0", "2.0"),
        (SLOW, "1.0", "2.0"),
    ]

    argv = ["--config", str(fx.config), "bisect", "fixture", "--good-lock", str(old),
            "--bad-lock", str(new), "--json", "--profile"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 7 and out["target"] == "fixture"
    assert {c["name"] for c in out["changed"]} == {SLOW, NEUTRAL}
    alpha = load_config(fx.config).check.alpha
    names = [c["name"] for c in out["culprits"]]
    assert names == [SLOW], out
    (culprit,) = out["culprits"]
    assert (culprit["good"], culprit["bad"]) == ("1.0", "2.0")
    assert culprit["change_pct"] < 0 and culprit["p_value"] < alpha
    neutral = next(c for c in out["candidates"] if c["label"] == f"+{NEUTRAL}")
    assert neutral["verdict"] != "culprit"
    assert (Path(out["run_dir"]) / "bisect.json").is_file()
    # --profile: good and bad profiled; the slow package's work() gained the most per request
    page = Path(out["run_dir"]) / out["flame_diff"]
    assert page.is_file() and "fwb_slowpkg" in page.read_text()
    top = out["flame_top"][0]
    assert "fwb_slowpkg" in top["function"] and top["bad"] > top["good"], out["flame_top"]


# --- nightly --------------------------------------------------------------------------------------


def test_nightly_bisects_a_new_alert_only_when_its_packages_changed_and_time_is_left(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from analysis.gate import Finding
    from analysis.history import History
    from benchmarks.synthrun import SynthTarget, make_run
    from commands.bisect import nightly_bisects
    from loadgen.records import read_header

    cfg = load_config(None).override(
        **{
            "paths.reports_dir": str(tmp_path / "reports"),
            "paths.history": str(tmp_path / "history.sqlite"),
            "check.auto_bisect": True,
            "check.bisect_budget": 1.0,
        }
    )
    runs = tmp_path / "reports" / "runs"
    nights = []
    for day, flask in ((6, "3.0.0"), (7, "3.1.0")):
        targets = [
            SynthTarget("flask", "Flask", packages=(("flask", flask), ("werkzeug", "3.0.0"))),
            SynthTarget("django", "Django", packages=(("django", "5.1"),)),
        ]
        start = datetime(2025, 1, day, 3, tzinfo=UTC)
        nights.append(make_run(runs / f"night{day}", targets, started_at=start))
    with History(cfg.path("history")) as history:
        for run in nights:
            history.store_run(run)
    fingerprint = read_header(nights[1]).fingerprint

    def alert(target: str) -> Finding:
        return Finding.of(
            "history", target=target, baseline="", load="closed-64", connections=64,
            metric="rps", before=5000.0, after=4000.0, pvalue=1e-4, pvalue_raw=1e-4,
            n_before=1, n_after=1, change_date="2025-01-07", change_run_id="night7",
            fingerprint=fingerprint, regression=True,
        )  # fmt: skip

    findings = [alert("flask"), alert("django")]
    said: list[str] = []
    done = nightly_bisects(cfg, findings, frozenset(f.key for f in findings), tmp_path, said.append)
    assert done == []  # flask's bisect does not fit in 1 s; django's packages did not change
    assert any(s.startswith("bisect flask/") and "skipped, needs ~" in s for s in said), said
    assert any(s.startswith("bisect django/") and "no package changed" in s for s in said), said
    said.clear()
    assert nightly_bisects(cfg, findings, frozenset(), tmp_path, said.append) == []
    assert said == []  # alerts already known: nothing to bisect
