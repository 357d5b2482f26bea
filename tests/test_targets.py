"""Target metadata: every real target loads; malformed folders are named and skipped."""

from __future__ import annotations

from pathlib import Path

from loadgen.checks import MESSAGE
from loadgen.targets import SEED_ORDER, discover

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"

# Every framework the brief asks for, and the extra (framework, server) pairs.
REQUIRED = set(SEED_ORDER) | {
    "fastapi",
    "starlette",
    "litestar",
    "quart",
    "bottle",
    "blacksheep",
    "emmett",
    "robyn",
    "flask-granian",
    "starlette-granian",
}


def test_every_required_target_is_there_and_valid() -> None:
    found = discover(ROOT / "targets")
    assert not found.skipped, found.skipped
    assert found.names() >= REQUIRED


def test_seed_frameworks_come_first() -> None:
    names = [t.name for t in discover(ROOT / "targets").targets]
    assert names[: len(SEED_ORDER)] == list(SEED_ORDER)


def test_requirements_fully_pinned_and_templates_dynamic() -> None:
    for t in discover(ROOT / "targets").targets:
        lines = [ln.split("#")[0].strip() for ln in t.requirements.read_text().splitlines()]
        pins = [ln for ln in lines if ln and not ln.startswith("-")]
        assert pins, f"{t.name}: empty lock"
        assert all("==" in p or " @ " in p for p in pins), t.name
        if t.kind == "html":
            assert MESSAGE not in (t.dir / t.template).read_text(), t.name


def test_gunicorn_targets_keep_alive_and_no_control_socket() -> None:
    for t in discover(ROOT / "targets").targets:
        cmd = " ".join(t.command)
        if "gunicorn" in cmd:
            assert "gthread" in cmd and "--no-control-socket" in cmd, t.name


def test_malformed_metadata_is_skipped_with_reason() -> None:
    found = discover(FIXTURES)
    reasons = {s.name: s.reason for s in found.skipped}
    assert "not valid TOML" in reasons["fx-badmeta"]
    assert "no target.toml" in reasons["fx-nometa"]
    assert "kind" in reasons["fx-badkind"]
    assert "fx-ok" in found.names()  # the others still load


def test_argv_placeholders() -> None:
    t = discover(FIXTURES).select(["fx-ok"])[0]
    argv = t.argv(host="127.0.0.1", port=1234, workers=2, python="/py")
    assert argv[0] == "/py"
    assert "1234" in argv and "127.0.0.1" in argv
