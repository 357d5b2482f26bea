"""End to end: real targets built, started on 127.0.0.1, checked and stopped.

The representative test covers one WSGI (Flask/gunicorn), one ASGI (FastAPI/uvicorn), one with
its own server (Tornado), HTML and JSON. The parametrised test verifies every target (CI runs it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loadgen.config import load_config
from loadgen.launcher import LaunchOptions
from loadgen.targets import discover
from loadgen.verify import verify_target

ROOT = Path(__file__).resolve().parent.parent
TARGETS = discover(ROOT / "targets")

pytestmark = pytest.mark.e2e


def repo_config(tmp_path: Path, envs_dir: Path) -> Path:
    """The repository's bench.toml with its [paths] moved off the user's folders: the real
    targets, environments in the tests' folder, reports and history in tmp_path."""
    paths = (
        f'[paths]\ntargets_dir = "{ROOT / "targets"}"\nenvs_dir = "{envs_dir}"\n'
        f'reports_dir = "{tmp_path / "reports"}"\nhistory = "{tmp_path / "history.sqlite"}"\n\n'
    )
    text, n = re.subn(r"(?ms)^\[paths\]\n.*?(?=^\[)", paths, (ROOT / "bench.toml").read_text())
    assert n == 1, "bench.toml has no [paths] table followed by another table"
    toml = tmp_path / "bench.toml"
    toml.write_text(text)
    assert load_config(toml).path("envs_dir") == envs_dir
    return toml


def test_representative_targets_via_cli(tmp_path: Path, envs_dir: Path) -> None:
    config = repo_config(tmp_path, envs_dir)
    fwbench = [sys.executable, "-m", "commands.cli", "--config", str(config)]
    out = subprocess.run(
        [*fwbench, "verify", "flask", "fastapi", "tornado", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    verdicts = {v["target"]: v for v in json.loads(out.stdout)}
    assert set(verdicts) == {"flask", "fastapi", "tornado"}
    for v in verdicts.values():
        for key in (
            "framework",
            "server",
            "python",
            "ok",
            "checks",
            "startup_s",
            "idle_rss_bytes",
            "keepalive",
            "packages",
        ):
            assert key in v
        assert v["ok"] and v["keepalive"] is True
        assert v["startup_s"] > 0 and v["idle_rss_bytes"] > 0
        assert {p["name"].lower() for p in v["packages"]} >= {v["framework"].lower()}
    assert verdicts["flask"]["kind"] == "html" and verdicts["fastapi"]["kind"] == "json"
    assert "gunicorn" in verdicts["flask"]["server"]
    assert "uvicorn" in verdicts["fastapi"]["server"]


@pytest.mark.parametrize("name", [t.name for t in TARGETS.targets])
def test_every_target_verifies(name: str, envs_dir: Path, tmp_path: Path) -> None:
    t = TARGETS.select([name])[0]
    v = verify_target(t, envs_dir, log_dir=tmp_path, opts=LaunchOptions(cpus=(0,), timeout=90))
    assert v.ok, [c for c in v.checks if c.status == "fail"] + [v.log_tail]
    assert not v.left_processes
    assert v.keepalive is t.keepalive
