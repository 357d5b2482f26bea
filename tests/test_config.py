"""bench.toml loading: good files load; every bad key or value names the key and the reason."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from loadgen.config import Config, ConfigError, check_target_names, load_config, parse_cpus
from loadgen.runner import override_loads

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


# --- numbers: finite and in range (issue 14) --------------------------------------------------


def float_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """The dotted key of every float in bench.toml, walked from the dataclasses (so a float
    key added later is covered too)."""
    keys: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        key = f"{prefix}{f.name}"
        if hint is float:
            keys.append(key)
        elif dataclasses.is_dataclass(hint):
            keys += float_keys(typing.cast(type, hint), key + ".")
        elif typing.get_origin(hint) is tuple and dataclasses.is_dataclass(
            typing.get_args(hint)[0]
        ):
            keys += float_keys(typing.get_args(hint)[0], key + "[0].")
    return keys


def toml_with(key: str, value: str) -> str:
    """bench.toml text setting one dotted key (``run.load[0].duration``) to ``value``."""
    table, _, name = key.rpartition(".")
    if table.endswith("[0]"):
        return f"[[{table[:-3]}]]\n{name} = {value}\n"
    return f"[{table}]\n{name} = {value}\n"


def test_every_float_key_is_walked() -> None:
    keys = float_keys()
    for key in ("run.load[0].duration", "nightly.load[0].timeout", "sampler.interval"):
        assert key in keys
    assert {"check.alpha", "server.stop_grace", "sampler.saturation_pct"} <= set(keys)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
@pytest.mark.parametrize("key", float_keys())
def test_non_finite_numbers_are_refused_naming_the_key(
    tmp_path: Path, key: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, toml_with(key, value)))
    assert info.value.key == key
    assert "must be a finite number" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("run.load[0].duration", "1e9", "at most 604800 s"),
        ("run.load[0].duration", "1" + "0" * 400, "too large"),
        ("run.load[0].warmup", "-1", "must be >= 0"),
        ("run.load[0].timeout", "700000", "at most"),
        ("nightly.load[0].duration", "0", "must be > 0"),
        ("server.startup_timeout", "1e300", "at most"),
        ("server.stop_grace", "-0.5", "must be >= 0"),
        ("sampler.interval", "0.0001", "0.01 to 60 s"),
        ("sampler.saturation_pct", "0", "(0, 100]"),
        ("sampler.saturation_pct", "101", "(0, 100]"),
        ("check.min_drop_pct", "150", "(0, 100]"),
        ("check.alpha", "1", "between 0 and 1"),
        ("check.cp_max_pvalue", "0", "between 0 and 1"),
        ("run.load[0].spawn_rate", "-1", "must be >= 0"),
    ],
)
def test_numbers_out_of_range_name_the_key(
    tmp_path: Path, key: str, value: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, toml_with(key, value)))
    assert info.value.key == key
    assert reason in str(info.value)


def test_open_model_rate_must_be_finite_and_not_tiny(tmp_path: Path) -> None:
    for rate in ("1e-300", "inf", "nan"):
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, f"[[run.load]]\nmodel = 'open'\nrate = {rate}\n"))
        assert info.value.key == "run.load[0].rate"


@pytest.mark.parametrize("value", [math.inf, math.nan, -math.inf, 1e12])
def test_override_refuses_what_the_file_would(value: float) -> None:
    cfg = load_config(None)
    with pytest.raises(ConfigError) as info:
        override_loads(cfg, duration=value)
    assert info.value.key == "run.load[0].duration"
    assert str(info.value).startswith("flag: ")


@pytest.mark.parametrize(
    ("toml", "flags"),
    [
        ("[[run.load]]\nduration = nan\n", []),
        ("[[run.load]]\nduration = inf\n", []),
        ("", ["--duration", "inf"]),
        ("", ["--duration", "nan"]),
        ("", ["--warmup", "inf"]),
        ("", ["--rate", "inf"]),
    ],
)
def test_run_refuses_non_finite_numbers_before_any_target(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    toml: str,
    flags: list[str],
) -> None:
    from commands import run as cmd_run
    from commands.cli import main as fwbench

    touched: list[str] = []
    monkeypatch.setattr(cmd_run, "make_runner", lambda *a: touched.append("runner"))
    monkeypatch.setattr(cmd_run, "discover_targets", lambda *a: touched.append("targets"))
    bench = write(tmp_path, toml)
    code = fwbench(["--config", str(bench), "run", "--targets", "flask", *flags])
    assert code == 2
    assert touched == []  # no target was looked up, started or verified
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("fwbench: error: ")
    assert "must be" in lines[0] and "run.load[0]." in lines[0]


# --- HTTP/2 and WebSocket load keys ----------------------------------------------------------


def test_protocol_keys_default_and_load(tmp_path: Path) -> None:
    ld = load_config(None).run.load[0]
    assert (ld.protocol, ld.streams, ld.message_size, ld.message_binary) == ("http1", 1, 64, False)
    cfg = load_config(
        write(
            tmp_path,
            "[[run.load]]\nname = 'h2c'\nprotocol = 'h2c'\nstreams = 8\n"
            "[[run.load]]\nname = 'ws'\nscenario = 'ws-echo'\nmessage_size = 4096\n"
            "message_binary = true\n",
        )
    )
    h2c, ws = cfg.run.load
    assert (h2c.protocol, h2c.streams) == ("h2c", 8)
    assert (ws.scenario, ws.message_size, ws.message_binary) == ("ws-echo", 4096, True)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("protocol = 'h3'", "protocol", "is not one of 'http1', 'h2c', 'h2'"),
        ("streams = 8", "streams", "8 streams need HTTP/2"),
        ("protocol = 'h2c'\nstreams = 0", "streams", "out of range 1..1000"),
        ("protocol = 'h2'\nstreams = 5000", "streams", "out of range 1..1000"),
        ("scenario = 'ws-echo'\nprotocol = 'h2c'", "protocol", "ws-echo runs over HTTP/1.1"),
        ("scenario = 'ws-echo'\nmessage_size = 0", "message_size", "out of range 1..16777216"),
        ("message_size = 16777217", "message_size", "out of range"),
        ("message_binary = 1", "message_binary", "expected true or false"),
        ("client = 'locust'\nprotocol = 'h2c'", "protocol", "locust client speaks HTTP/1.1"),
        ("client = 'locust'\nscenario = 'ws-echo'", "scenario", "use the raw client"),
    ],
)
def test_bad_protocol_keys_name_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"[[run.load]]\n{text}\n"))
    assert info.value.key == f"run.load[0].{key}"
    assert reason in str(info.value)


def test_protocol_flag_overrides_http_settings_only(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            "[[run.load]]\nname = 'hello'\n"
            "[[run.load]]\nname = 'h2'\nprotocol = 'h2c'\nstreams = 8\n"
            "[[run.load]]\nname = 'ws'\nscenario = 'ws-echo'\n",
        )
    )
    h2c = override_loads(cfg, protocol="h2")
    assert [ld.protocol for ld in h2c.run.load] == ["h2", "h2", "http1"]
    assert [ld.streams for ld in h2c.run.load] == [1, 8, 1]
    back = override_loads(cfg, protocol="http1")  # streams > 1 would be refused over HTTP/1.1
    assert [(ld.protocol, ld.streams) for ld in back.run.load] == [("http1", 1)] * 3
    with pytest.raises(ConfigError) as info:
        override_loads(cfg, protocol="h3")
    assert info.value.key == "run.load[0].protocol" and str(info.value).startswith("flag: ")


def test_protocol_flag_on_run_bench_and_load() -> None:
    from commands.cli import command_parser

    for name in ("run", "bench"):
        assert command_parser(name)[0].parse_args(["--protocol", "h2c"]).protocol == "h2c"
    load = command_parser("load")[0]
    args = load.parse_args(["http://127.0.0.1:1/", "--protocol", "h2", "--streams", "4"])
    assert (args.protocol, args.streams) == ("h2", 4)
    from commands.load import spec_from_args

    spec = spec_from_args(args)
    assert (spec.protocol, spec.streams) == ("h2", 4)
    with pytest.raises(ValueError, match="streams > 1 needs HTTP/2"):
        spec_from_args(load.parse_args(["http://127.0.0.1:1/", "--streams", "4"]))
