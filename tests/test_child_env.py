"""No secret of fwbench's reaches a child: target servers, the sampler, the load workers.

fwbench's environment may hold ``FWBENCH_WEBHOOK_SECRET`` and ``FWBENCH_WEBHOOK_URL`` (the
alerts' webhook) and whatever else the user or a CI put there; target code is third-party code.
Every child gets :func:`loadgen.procs.child_env`: PATH, HOME, the locale and what the suite
sets, nothing else. The e2e test reads each started process's real environment
(``/proc/PID/environ``) while it runs.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from loadgen.envs import ensure_env, env_vars, installer_env
from loadgen.launcher import start
from loadgen.locust.launch import child_env as locust_env
from loadgen.procs import SUITE_ROOT, child_env
from loadgen.targets import discover

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"
SECRETS = {
    "FWBENCH_WEBHOOK_SECRET": "s3cret-not-for-targets",
    "FWBENCH_WEBHOOK_URL": "https://hooks.example.com/T000/B000/XXXX",
}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SOME_TOKEN", "another secret")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")


def leaked(env: dict[str, str]) -> list[str]:
    return sorted(k for k in env if k.startswith("FWBENCH_WEBHOOK") or k == "SOME_TOKEN")


def test_child_env_keeps_only_what_a_program_needs(secrets: None) -> None:
    env = child_env({"EXTRA": "1"})
    assert leaked(env) == []
    assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
    assert env["LANG"] == env["LC_ALL"] == "C.UTF-8"
    assert env["EXTRA"] == "1"
    assert "PYTHONPATH" not in env


def test_the_installer_gets_no_fwbench_secret(secrets: None) -> None:
    env = installer_env()  # uv keeps its proxy and UV_* settings; an sdist build runs its code
    assert [k for k in env if k.startswith("FWBENCH_")] == []
    assert env["PATH"] == os.environ["PATH"]


def test_the_suites_own_children_import_loadgen_first(secrets: None) -> None:
    env = child_env(suite=True)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(SUITE_ROOT), "/somewhere/else"]
    assert leaked(env) == [] and leaked(locust_env()) == []
    assert locust_env()["PYTHONPATH"] == env["PYTHONPATH"]


def test_a_servers_env_is_clean_with_its_venv_first_and_its_own_env(
    secrets: None, tmp_path: Path
) -> None:
    target = discover(FIXTURES).select(["fx-ok"])[0]
    target = replace(target, env=(("FIXTURE_KNOB", "7"),))
    env = env_vars(tmp_path / "venv", target)
    assert leaked(env) == []
    assert env["PATH"].split(os.pathsep)[0] == str(tmp_path / "venv" / "bin")
    assert env["VIRTUAL_ENV"] == str(tmp_path / "venv")
    assert env["FIXTURE_KNOB"] == "7"
    assert "PYTHONPATH" not in env  # the user's Python settings are not the target's


@pytest.mark.e2e
def test_no_webhook_secret_reaches_a_server_the_sampler_or_a_load_worker(
    secrets: None, envs_dir: Path, tmp_path: Path
) -> None:
    from loadgen.rawclient import LoadSpec, run_load
    from loadgen.sampler import SamplerProcess

    seen: dict[str, dict[str, str]] = {}

    def look(role: str, pid: int) -> None:
        seen[f"{role} {pid}"] = psutil.Process(pid).environ()

    target = discover(FIXTURES).select(["fx-linger"])[0]
    with start(target, ensure_env(target, envs_dir), log_dir=tmp_path) as server:
        for p in server.tree():  # the leader and its forked worker
            look("server", p.pid)
        with SamplerProcess(
            target_pid=server.proc.pid,
            client_pid=os.getpid(),
            out=tmp_path / "samples.jsonl",
        ) as sampler:
            assert sampler.pid is not None
            look("sampler", sampler.pid)

        def progress(count: int) -> None:
            for p in psutil.Process().children():
                if "--worker" in p.cmdline():
                    look("load worker", p.pid)

        spec = LoadSpec(
            host=server.host,
            port=server.port,
            path=target.hello_path,
            connections=2,
            duration=1.5,
            warmup=0.2,
            procs=2,
        )
        assert run_load(spec, progress=progress).requests > 0
    roles = sorted({name.split()[0] for name in seen})
    assert roles == ["load", "sampler", "server"], seen.keys()
    assert sum(name.startswith("load worker") for name in seen) == 2
    assert sum(name.startswith("server") for name in seen) == 2
    for name, env in seen.items():
        assert leaked(env) == [], f"{name} got {leaked(env)}"
        assert env.get("LANG") == "C.UTF-8", name
