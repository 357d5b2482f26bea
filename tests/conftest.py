"""Shared fixtures: the fixture targets (stdlib servers that misbehave on purpose) and a
config pointing at them, with one environment folder for the whole session."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadgen.config import Config, Paths, load_config

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_TARGETS = Path(__file__).resolve().parent / "fixtures" / "targets"


@pytest.fixture(scope="session")
def envs_dir() -> Path:
    """Target environments shared by every test (and with `make bench`: same cache folder)."""
    return ROOT / ".envs"


@pytest.fixture
def fixture_config(tmp_path: Path, envs_dir: Path) -> Config:
    cfg = load_config(None)
    paths = Paths(
        targets_dir=str(FIXTURE_TARGETS),
        envs_dir=str(envs_dir),
        reports_dir=str(tmp_path / "reports"),
        history=str(tmp_path / "reports" / "history.sqlite"),
    )
    return Config(paths=paths, cpus=cfg.cpus, server=cfg.server, root=str(ROOT))


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test must leave no process of its own behind (servers, samplers, clients)."""
    me = psutil.Process(os.getpid())
    before = {p.pid for p in me.children(recursive=True)}
    yield
    left = []
    for p in me.children(recursive=True):
        if p.pid in before:
            continue
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            continue
    for p in left:  # clean up by PID so one failure does not cascade, then fail the test
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"
