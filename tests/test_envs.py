"""loadgen.envs without building anything: a real build is announced before it starts (it can
take minutes), a cached environment is not. uv and the build itself are stood in for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from loadgen import envs
from loadgen.envs import READY, Env, build_all, ensure_env
from loadgen.targets import Target, discover

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"


@pytest.fixture
def fake_uv(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """uv, the interpreter and the build stood in for; returns the targets built, in order."""
    built: list[str] = []

    def build(
        target: Target,
        uv: str,
        python: Path,
        version: str,
        digest: str,
        path: Path,
        sources: object = (),
    ) -> Env:
        built.append(target.name)
        path.mkdir(parents=True)
        (path / READY).write_text(json.dumps({"packages": [], "size_bytes": 1}))
        return Env(target.name, path, path / "bin" / "python", version, (), 1, 0.5, False)

    monkeypatch.setattr(envs, "uv_path", lambda: "uv")
    monkeypatch.setattr(envs, "find_python", lambda version: Path(sys.executable))
    monkeypatch.setattr(envs, "interpreter_version", lambda python: "3.11.9")
    monkeypatch.setattr(envs, "_uv_version", lambda uv: "uv 0.5.0")
    monkeypatch.setattr(envs, "_build", build)
    return built


def _target(name: str = "fx-ok") -> Target:
    return discover(FIXTURES).select([name])[0]


def test_a_real_build_is_announced_first_a_cached_env_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_uv: list[str]
) -> None:
    env = ensure_env(_target(), tmp_path)
    assert not env.cached and fake_uv == ["fx-ok"]
    assert capsys.readouterr().err == "fwbench: building env fx-ok (uv) ...\n"
    again = ensure_env(_target(), tmp_path)
    assert again.cached and fake_uv == ["fx-ok"]
    assert capsys.readouterr().err == ""  # reused: nothing to announce


def test_build_all_says_which_build_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_uv: list[str]
) -> None:
    ensure_env(_target("fx-ok"), tmp_path)
    capsys.readouterr()
    said: list[tuple[int, int, str]] = []
    outcomes = build_all(
        [_target("fx-ok"), _target("fx-close")],
        tmp_path,
        starting=lambda i, n, t: said.append((i, n, t.name)),
    )
    assert [o.env is not None and o.env.cached for o in outcomes] == [True, False]
    assert said == [(2, 2, "fx-close")]  # only the real build, with its place in the list
    assert capsys.readouterr().err == ""  # the caller's callback replaced the default


def test_fwbench_envs_announces_a_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_uv: list[str]
) -> None:
    from commands.cli import main as fwbench

    cfg = tmp_path / "bench.toml"
    cfg.write_text(f'[paths]\ntargets_dir = "{FIXTURES}"\nenvs_dir = "{tmp_path / "envs"}"\n')
    assert fwbench(["--config", str(cfg), "envs", "fx-ok"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1/1] building env fx-ok (uv) ..."
    assert lines[1].startswith("[1/1] fx-ok: built in 0.5 s")
