"""bench.toml loading: good files load; every bad key or value names the key and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadgen.config import Config, ConfigError, check_target_names, load_config, parse_cpus

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bench.toml"
    p.write_text(text)
    return p


def test_repo_bench_toml_loads() -> None:
    cfg = load_config(ROOT / "bench.toml")
    assert cfg.cpus.server == (0,)
    assert cfg.cpus.client == (1,)
    assert cfg.run.load[0].connections == (64,)
    assert cfg.path("targets_dir") == ROOT / "targets"


def test_defaults_without_file() -> None:
    cfg = load_config(None)
    assert cfg.server.host == "127.0.0.1"
    assert cfg.run.trials == 3


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[run]\ntrails = 3\n", "run.trails", "unknown key (did you mean 'trials'?)"),
        ("[run]\ntrials = 'three'\n", "run.trials", "expected a whole number"),
        ("[run]\ntrials = 0\n", "run.trials", "must be > 0"),
        ("[server]\nport = 70000\n", "server.port", "out of range"),
        ("[server]\nport = 80\n", "server.port", "privileged"),
        ("[cpus]\nserver = [99]\n", "cpus.server[0]", "CPU 99 does not exist"),
        ("[cpus]\nserver = [0]\nclient = [0]\n", "cpus.client", "shares CPU 0"),
        ("[server]\nhost = '8.8.8.8'\n", "server.host", "outside loopback"),
        ("[[run.load]]\nmodel = 'open'\n", "run.load[0].rate", "needs a rate"),
        ("[[run.load]]\nconnections = [0]\n", "run.load[0].connections[0]", "out of range"),
        ("[[run.load]]\nclient = 'wrk'\n", "run.load[0].client", "is not one of"),
        ("[[run.load]]\nprocs = 5\n", "run.load[0].procs", "client CPU"),
        ("[sampler]\ninterval = -1\n", "sampler.interval", "must be > 0"),
        ("nonsense = 1\n", "nonsense", "unknown key"),
        ("[run\n", "(syntax)", ""),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key == key
    assert reason in str(info.value)
    assert str(info.value).startswith("bench.toml: ")


def test_allowed_host_is_accepted(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "[server]\nhost='10.0.0.5'\n[network]\nallow_hosts=['10.0.0.5']\n")
    )
    assert cfg.server.host == "10.0.0.5"


def test_unknown_target_name() -> None:
    cfg = load_config(None).override(**{"run.targets": ["flask", "flsk"]})
    with pytest.raises(ConfigError) as info:
        check_target_names(cfg, {"flask", "django"})
    assert info.value.key == "run.targets[1]"
    assert "did you mean 'flask'" in str(info.value)


def test_override_revalidates() -> None:
    cfg = load_config(None)
    assert cfg.override(**{"run.trials": 5}).run.trials == 5
    with pytest.raises(ConfigError) as info:
        cfg.override(**{"run.trials": -1})
    assert info.value.key == "run.trials"


def test_config_is_immutable() -> None:
    cfg: Config = load_config(None)
    with pytest.raises(AttributeError):
        cfg.run.trials = 9  # type: ignore[misc]


def test_parse_cpus() -> None:
    assert parse_cpus("0-2,5") == (0, 1, 2, 5)
    with pytest.raises(ValueError):
        parse_cpus("")


@pytest.mark.child_process  # `fwbench targets`, refused at once
def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "[run]\ntrails = 3\n")
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "--config", str(bad), "targets"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "run.trails" in lines[0]
