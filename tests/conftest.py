"""Shared fixtures (the fixture targets, a config pointing at them, the session's environment
folder) and the rule for the ``e2e`` marker, with the guard that keeps it honest.

The rule, applied test by test: a test is ``e2e`` when it, or a fixture it sets up, starts a
server (a target's server, a fixture server the test sends load to, locust, nginx/uvicorn),
starts the sampler's process, builds a target environment, or sends load on a real socket (the
raw client, locust, the runner, ``fwbench run/verify/nightly``). Nothing else is ``e2e``:

- the webhook receiver of test_alerts is a stdlib HTTP server thread on 127.0.0.1, but it takes
  the suite's own alert (a POST or two per check) and answers at once: no load, under two
  seconds for the whole file, so not ``e2e``;
- quick helper processes that are neither servers nor load (two SQLite writers, a CLI that exits
  at once, stand-in process trees for the sampler's tree walk, headless Chromium rendering a
  file) are not ``e2e``; those tests carry ``child_process`` instead, saying so.

``pytest -m "not e2e"`` (``make test-fast``) is the fast lane; plain ``pytest`` runs everything.

The guard: in a test not marked ``e2e``, starting a child process (``subprocess.Popen``, which
the launcher, uv builds, the sampler, locust and the raw client's workers all go through) fails
the test, naming the command. A test marked ``child_process`` may start its own helpers, but not
through the suite's code (loadgen, analysis, commands, benchmarks): that is a server, the
sampler, an environment build or load. ``git`` (the machine fingerprint's commit) is always
allowed. A uvloop event loop (the raw client's load in this process) fails it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
import pytest
import uvloop

from loadgen.config import Config, Paths, load_config

# Ctrl-C works in the tests however they were started. A shell without job control starts a
# background command (`make test &` in a script) with SIGINT ignored, and Python then keeps it
# ignored: every Ctrl-C test would fail with "DID NOT RAISE". A handler set here also gives
# the processes the tests start the default disposition (an ignored signal stays ignored
# across exec; a handled one does not).
signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_TARGETS = Path(__file__).resolve().parent / "fixtures" / "targets"

ENVS_DIR_VAR = "FWBENCH_TEST_ENVS_DIR"
SUITE_PACKAGES = ("loadgen", "analysis", "commands", "benchmarks")
ALWAYS_ALLOWED = frozenset({"git"})


# --- the e2e guard ----------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "child_process: starts quick helper processes that are neither servers nor load "
        "(not e2e; see tests/conftest.py)",
    )


class _Guard:
    """What the test running now may start; ``None`` while an e2e test runs (anything goes)."""

    policy: str | None = None  # "none": no child process; "own": the test's own helpers only


def _program(args: Any) -> str:
    """The program's name, from a command given as a string or as a list."""
    if isinstance(args, str | bytes | os.PathLike):
        words = os.fsdecode(args).split()
    elif isinstance(args, Sequence):
        words = [os.fsdecode(a) for a in args[:1]]
    else:
        words = []
    return os.path.basename(words[0]) if words else ""


def _started_by_suite() -> str | None:
    """The suite module (loadgen, analysis...) on the stack that asked for the process, if any."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name.split(".")[0] in SUITE_PACKAGES:
            return name
        frame = frame.f_back
    return None


def check_child_process(args: Any) -> None:
    """Fail the running test if it may not start this child process (see the module's rule)."""
    policy = _Guard.policy
    if policy is None or _program(args) in ALWAYS_ALLOWED:
        return
    command = " ".join(os.fsdecode(a) for a in args) if isinstance(args, list | tuple) else args
    command = str(command)[:200]
    by = _started_by_suite()
    if by is not None:
        pytest.fail(
            f"this test starts a server: mark it e2e ({by} starts `{command}`: a server, the "
            "sampler, an environment build or load; see tests/conftest.py)"
        )
    if policy == "none":
        pytest.fail(
            f"this test starts a server: mark it e2e (it starts `{command}`); or, if that is a "
            "quick helper process that is neither a server nor load, mark it child_process "
            "(see tests/conftest.py)"
        )


_popen_init = subprocess.Popen.__init__


def _guarded_popen_init(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
    check_child_process(args[0] if args else kwargs.get("args"))
    _popen_init(self, *args, **kwargs)


subprocess.Popen.__init__ = _guarded_popen_init  # type: ignore[method-assign]

_new_uvloop = uvloop.new_event_loop


def _guarded_new_uvloop() -> uvloop.Loop:
    if _Guard.policy is not None:
        pytest.fail(
            "this test starts a server: mark it e2e (it opens a uvloop event loop: the raw "
            "client's load, or a server, in this process; see tests/conftest.py)"
        )
    return _new_uvloop()


uvloop.new_event_loop = _guarded_new_uvloop  # uvloop.run() takes it from there too


def policy_for(item: pytest.Item) -> str | None:
    if item.get_closest_marker("e2e") is not None:
        return None
    return "own" if item.get_closest_marker("child_process") is not None else "none"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The guard covers the test's setup (its fixtures too), its call and its teardown."""
    _Guard.policy = policy_for(item)
    try:
        return (yield)
    finally:
        _Guard.policy = None


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def envs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests build target environments: a temporary folder for the session, never the
    user's ``.envs/``. Set FWBENCH_TEST_ENVS_DIR to a folder to keep a warm cache between runs.
    (uv's own download cache stays shared: it is what makes a cold build quick.)"""
    kept = os.environ.get(ENVS_DIR_VAR)
    if kept:
        path = Path(kept).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("envs")


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
