"""The launcher and verifier against fixture servers that misbehave on purpose.

Each fault gives a failed verdict with the reason and the server's last log lines; the other
targets still verify; no process is left behind (checked here and by the autouse fixture).
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import psutil
import pytest

from loadgen.config import Config
from loadgen.envs import ensure_env
from loadgen.launcher import LaunchError, LaunchOptions, start
from loadgen.targets import Target, discover
from loadgen.verify import Verdict, verify_all, verify_target


def target(cfg: Config, name: str) -> Target:
    return discover(cfg.path("targets_dir")).select([name])[0]


PINNED = LaunchOptions(cpus=(0,), stop_grace=2.0)

pytestmark = pytest.mark.e2e  # every test builds a fixture environment and starts its server


def verdict(cfg: Config, name: str, tmp_path: Path, port: int = 0) -> Verdict:
    opts = dataclasses.replace(PINNED, port=port)
    return verify_target(target(cfg, name), cfg.path("envs_dir"), log_dir=tmp_path, opts=opts)


def failed(v: Verdict) -> dict[str, str]:
    return {c.name: c.reason for c in v.failures}


def test_good_fixture_passes(fixture_config: Config, tmp_path: Path) -> None:
    v = verdict(fixture_config, "fx-ok", tmp_path)
    assert v.ok, v.checks
    assert v.keepalive is True
    assert v.startup_s is not None and v.startup_s > 0
    assert v.idle_rss_bytes is not None and v.idle_rss_bytes > 1_000_000
    assert not v.left_processes


def test_crash_at_start(fixture_config: Config, tmp_path: Path) -> None:
    v = verdict(fixture_config, "fx-crash", tmp_path)
    assert not v.ok
    assert "exited with code 3" in failed(v)["start"]
    assert "failing on purpose" in v.log_tail


def test_never_answers(fixture_config: Config, tmp_path: Path) -> None:
    v = verdict(fixture_config, "fx-hang", tmp_path)
    assert not v.ok
    assert "no good answer within 3 s" in failed(v)["start"]
    assert "hanging without listening" in v.log_tail
    assert not v.left_processes


def test_wrong_body(fixture_config: Config, tmp_path: Path) -> None:
    v = verdict(fixture_config, "fx-wrongbody", tmp_path)
    assert not v.ok
    assert "Hello World" in failed(v)["body"]


def test_port_already_held(fixture_config: Config, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        v = verdict(fixture_config, "fx-ok", tmp_path, port=port)
    assert not v.ok
    assert f"port {port} is already held" in failed(v)["start"]


def test_stubborn_server_is_killed_and_nothing_left(fixture_config: Config, tmp_path: Path) -> None:
    t = target(fixture_config, "fx-stubborn")
    env = ensure_env(t, fixture_config.path("envs_dir"))
    server = start(t, env, log_dir=tmp_path, opts=PINNED)
    pids = {p.pid for p in server.tree()}
    assert len(pids) == 2  # the leader and its forked worker
    report = server.stop(grace=0.5)
    assert report.signal == "SIGKILL"
    assert report.left == ()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]


def test_no_keepalive_fails_unless_declared(fixture_config: Config, tmp_path: Path) -> None:
    v = verdict(fixture_config, "fx-close", tmp_path)
    assert v.ok  # declared keepalive = false: a warning, carried in the verdict
    assert v.keepalive is False
    assert any(c.name == "keepalive" and c.status == "warn" for c in v.checks)


def test_one_bad_target_does_not_stop_the_others(fixture_config: Config, tmp_path: Path) -> None:
    found = discover(fixture_config.path("targets_dir"))
    verdicts = verify_all(
        found.select(["fx-crash", "fx-ok"]),
        fixture_config.path("envs_dir"),
        log_dir=tmp_path,
        opts=LaunchOptions(stop_grace=2.0),
    )
    assert [v.ok for v in verdicts] == [False, True]


def test_server_pinned_to_its_cpus(fixture_config: Config, tmp_path: Path) -> None:
    t = target(fixture_config, "fx-ok")
    env = ensure_env(t, fixture_config.path("envs_dir"))
    with start(t, env, log_dir=tmp_path, opts=PINNED) as server:
        assert psutil.Process(server.proc.pid).cpu_affinity() == [0]
        assert server.url.startswith("http://127.0.0.1:")


def test_launch_error_carries_log(fixture_config: Config, tmp_path: Path) -> None:
    t = target(fixture_config, "fx-crash")
    env = ensure_env(t, fixture_config.path("envs_dir"))
    with pytest.raises(LaunchError) as info:
        start(t, env, log_dir=tmp_path)
    assert "failing on purpose" in info.value.log_tail
