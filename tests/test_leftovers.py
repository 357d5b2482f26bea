"""Nothing is left running, however fwbench ends: SIGTERM in any phase, or SIGKILL.

- SIGTERM is Ctrl-C for every command (commands/cli.py): during ``fwbench verify`` and during
  ``fwbench run``'s measuring, fwbench stops its servers and exits 130; a run keeps its
  finished trials.
- SIGKILL leaves no time to clean up: the reaper (loadgen/reaper.py) sees fwbench's end of its
  pipe close and stops every process group and process fwbench had started (a server's forked
  worker, the sampler, the raw client's workers).

The target is ``fx-linger`` (tests/fixtures/targets): a leader and a forked worker that does not
watch its leader, slow answers (0.3 s) so that verifying it takes a few seconds. Loads are a
few connections to 127.0.0.1 for a few seconds. The reaper's own tests start it by hand on
``sleep`` processes (``child_process``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

import loadgen.reaper
from loadgen.launcher import start
from loadgen.procs import group_alive, listeners, stop_group
from loadgen.reaper import REAPER
from loadgen.records import read_records
from loadgen.targets import discover

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "targets"
GONE_S = 15.0
"""How long everything fwbench started may take to go once fwbench is gone."""


# --------------------------------------------------------------------------------------------
# Helpers: fwbench as a user runs it, and what it started


def bench_toml(tmp_path: Path, envs_dir: Path, *, trials: int = 1, duration: float = 3.0) -> Path:
    toml = tmp_path / "bench.toml"
    toml.write_text(
        f'[paths]\ntargets_dir = "{FIXTURES}"\nenvs_dir = "{envs_dir}"\n'
        f'reports_dir = "{tmp_path / "reports"}"\n'
        "[server]\nstop_grace = 2\n"
        f'[run]\ntargets = ["fx-linger"]\ntrials = {trials}\n'
        '[[run.load]]\nname = "short"\nconnections = [2]\n'
        f"duration = {duration}\nwarmup = 0.5\n"
    )
    return toml


class Fwbench:
    """``python -m commands.cli ...`` in a child process, its stderr read line by line."""

    def __init__(self, *argv: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", *argv],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stdout = ""
        self.seen: dict[int, float] = {}  # descendants snapshot() saw (start times): close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, what: str, ready: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"fwbench ended ({self.proc.returncode}) before {what}:\n{self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:g} s:\n{self.stderr[-3000:]}")
            time.sleep(0.05)

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def finish(self, timeout: float = 60.0) -> int:
        """Its exit status (killed if it does not end in time); what it wrote on stdout kept."""
        try:
            self.proc.wait(timeout)
        finally:
            self.close()
        return self.proc.returncode

    def snapshot(self) -> tuple[set[int], set[int], set[int]]:
        """(PIDs, process groups but fwbench's, listening ports) of fwbench's descendants."""
        own = os.getpgid(self.proc.pid)
        pids, groups = set(), set()
        for p in descendants(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                pids.add(p.pid)
                groups.add(os.getpgid(p.pid))
                self.seen[p.pid] = p.create_time()
        return pids, groups - {own}, set(listening(self.proc.pid))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid, started in self.seen.items():  # a failed test leaves nothing either: by PID
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if p.create_time() == started:
                    p.kill()
        # stderr ends when every process holding it has (the reaper inherits it): a reader
        # still blocked here means something was left running, which the test reports.
        self._reader.join(GONE_S)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.stdout = self.proc.stdout.read()
            self.proc.stdout.close()
        if self.proc.stderr is not None and not self._reader.is_alive():
            self.proc.stderr.close()


@contextlib.contextmanager
def fwbench(*argv: str) -> Iterator[Fwbench]:
    run = Fwbench(*argv)
    try:
        yield run
    finally:
        run.close()


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def listening(pid: int) -> dict[int, int]:
    """{port: pid} of the TCP sockets the descendants of ``pid`` listen on."""
    out = {}
    for p in descendants(pid):
        with contextlib.suppress(psutil.Error):
            for c in p.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr:
                    out[c.laddr.port] = p.pid
    return out


def cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def still_running(pids: set[int], groups: set[int], ports: set[int]) -> list[str]:
    """What of these is still alive: PIDs (zombies excepted), group members, listeners."""
    left = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(f"pid {pid} ({cmdline(pid)[:80]})")
    left += [f"process group {g}" for g in groups if group_alive(g)]
    left += [f"port {port} held by pid {listeners(port)}" for port in ports if listeners(port)]
    return left


def assert_all_gone(pids: set[int], groups: set[int], ports: set[int], why: str) -> None:
    deadline = time.monotonic() + GONE_S
    while (left := still_running(pids, groups, ports)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running {GONE_S:g} s after {why}: {left}"


# --------------------------------------------------------------------------------------------
# SIGKILL: the reaper stops everything


@pytest.mark.e2e
def test_sigkill_while_measuring_leaves_nothing_running(envs_dir: Path, tmp_path: Path) -> None:
    toml = bench_toml(tmp_path, envs_dir, duration=6.0)
    with fwbench("--config", str(toml), "run") as run:
        run.wait_for("the trial", lambda: run.said("[1/1] fx-linger/"))
        run.wait_for("its server", lambda: bool(listening(run.proc.pid)))
        run.wait_for("live progress", lambda: run.said("requests/s"))
        pids, groups, ports = run.snapshot()
        assert groups and ports, f"no server seen: {pids}"
        seen = [cmdline(p) for p in pids]
        assert any("-m loadgen.sampler" in c for c in seen), seen  # one in fwbench's own group
        run.proc.kill()
        run.proc.wait()
        assert_all_gone(pids, groups, ports, "fwbench run was SIGKILLed while measuring")
        run.close()
        assert "fwbench reaper: fwbench (pid" in run.stderr and "process group" in run.stderr


@pytest.mark.e2e
def test_sigkill_during_verify_leaves_nothing_running(envs_dir: Path, tmp_path: Path) -> None:
    toml = bench_toml(tmp_path, envs_dir)
    with fwbench("--config", str(toml), "verify", "fx-linger") as run:
        run.wait_for("the server listening", lambda: bool(listening(run.proc.pid)))
        pids, groups, ports = run.snapshot()
        servers = [p for p in pids if "server.py" in cmdline(p)]
        assert groups and len(servers) == 2, pids  # the leader and its worker
        run.proc.kill()
        run.proc.wait()
        assert not run.said("[1/1] fx-linger:"), "verify was over before the kill"
        assert_all_gone(pids, groups, ports, "fwbench verify was SIGKILLed")
        run.close()
        assert "fwbench reaper: fwbench (pid" in run.stderr and "process group" in run.stderr


@pytest.mark.e2e
def test_sigkill_of_fwbench_load_stops_its_worker_processes(envs_dir: Path, tmp_path: Path) -> None:
    from loadgen.envs import ensure_env

    target = discover(FIXTURES).select(["fx-linger"])[0]
    with start(target, ensure_env(target, envs_dir), log_dir=tmp_path) as server:
        url = f"http://127.0.0.1:{server.port}/hello/"
        argv = ("load", url, "-c", "4", "-d", "8", "--warmup", "0.2", "--procs", "2")
        with fwbench(*argv) as run:

            def workers() -> list[psutil.Process]:
                return [p for p in descendants(run.proc.pid) if "--worker" in p.cmdline()]

            run.wait_for("two load workers", lambda: len(workers()) == 2, timeout=30)
            time.sleep(1.0)  # inside the window
            pids, _, _ = run.snapshot()
            run.proc.kill()
            run.proc.wait()
            assert_all_gone(pids, set(), set(), "fwbench load was SIGKILLed")
        assert server.alive()  # the test's own server was not fwbench's to stop


# --------------------------------------------------------------------------------------------
# SIGTERM: Ctrl-C's clean stop, in every phase


@pytest.mark.e2e
def test_sigterm_during_verify_stops_the_server_and_exits_130(
    envs_dir: Path, tmp_path: Path
) -> None:
    toml = bench_toml(tmp_path, envs_dir)
    with fwbench("--config", str(toml), "verify", "fx-linger") as run:
        run.wait_for("the server listening", lambda: bool(listening(run.proc.pid)))
        pids, groups, ports = run.snapshot()
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
        assert code == 130, run.stderr[-3000:]
        assert "stopped by SIGTERM" in run.stderr
        assert_all_gone(pids, groups, ports, "SIGTERM during verify")


@pytest.mark.e2e
def test_sigterm_during_a_runs_verify_phase_stops_the_server_and_exits_130(
    envs_dir: Path, tmp_path: Path
) -> None:
    """The issue's own case: ``fwbench run`` stopped while it verifies its targets."""
    toml = bench_toml(tmp_path, envs_dir)
    with fwbench("--config", str(toml), "run") as run:
        run.wait_for("the server listening", lambda: bool(listening(run.proc.pid)))
        pids, groups, ports = run.snapshot()
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
        assert not run.said("verify [1/1]"), "verify was over before SIGTERM"
        assert code == 130, run.stderr[-3000:]
        assert_all_gone(pids, groups, ports, "SIGTERM during run's verify phase")
    run_dir = Path(run.stdout.strip().splitlines()[-1])
    assert json.loads((run_dir / "run.json").read_text())["interrupted"] is True


@pytest.mark.e2e
def test_sigterm_while_measuring_keeps_finished_trials_and_exits_130(
    envs_dir: Path, tmp_path: Path
) -> None:
    toml = bench_toml(tmp_path, envs_dir, trials=3, duration=2.0)
    with fwbench("--config", str(toml), "run") as run:
        run.wait_for("the second trial", lambda: run.said("[2/3] fx-linger/"), timeout=120)
        run.wait_for("its server", lambda: bool(listening(run.proc.pid)))
        time.sleep(1.0)  # inside the window
        pids, groups, ports = run.snapshot()
        run.proc.send_signal(signal.SIGTERM)
        code = run.finish()
        assert code == 130, run.stderr[-3000:]
        assert_all_gone(pids, groups, ports, "SIGTERM while measuring")
    run_dir = Path(run.stdout.strip().splitlines()[-1])
    recs = list(read_records(run_dir / "trials.jsonl"))
    assert len(recs) >= 1 and recs[0].status == "ok", recs


# --------------------------------------------------------------------------------------------
# The reaper itself


@pytest.mark.e2e
def test_the_reaper_runs_while_a_server_runs_and_ends_with_the_last(
    envs_dir: Path, tmp_path: Path
) -> None:
    from loadgen.envs import ensure_env

    target = discover(FIXTURES).select(["fx-linger"])[0]
    assert reaper_pid() is None
    server = start(target, ensure_env(target, envs_dir), log_dir=tmp_path)
    try:
        reaper = reaper_pid()
        assert reaper is not None and os.getsid(reaper) == reaper  # a session of its own
    finally:
        assert not server.stop(2.0).left
    assert reaper_pid() is None
    assert not psutil.pid_exists(reaper) or psutil.Process(reaper).status() == "zombie"


def reaper_pid() -> int | None:
    return REAPER.pid


def _reaper(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", loadgen.reaper.__file__, *args],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.child_process
def test_reaper_stops_watched_groups_and_processes_when_its_pipe_closes() -> None:
    # A group whose members ignore SIGTERM (as a stuck server would), and one plain process.
    group = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 60 & sleep 60"], start_new_session=True
    )
    single = subprocess.Popen(["sleep", "60"])
    reaper = _reaper("--grace", "0.5")
    try:
        time.sleep(0.2)  # the group's second sleep has started
        # The lines, then EOF: as when fwbench dies.
        _, err = reaper.communicate(f"+g {group.pid}\n+p {single.pid}\n".encode(), timeout=15)
        assert reaper.returncode == 0
        assert "SIGKILL" in err.decode() and f"process group {group.pid}" in err.decode()
        assert single.wait(5) in (-signal.SIGTERM, -signal.SIGKILL)
        group.wait(5)
        assert not group_alive(group.pid)
    finally:
        stop_group(group, grace=0.0)
        for proc in (single, reaper):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.child_process
def test_reaper_leaves_alone_what_it_was_told_to_forget() -> None:
    group = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reaper = _reaper("--grace", "0.5")
    try:
        started = time.monotonic()
        _, err = reaper.communicate(f"+g {group.pid}\n-g {group.pid}\n".encode(), timeout=10)
        assert reaper.returncode == 0 and time.monotonic() - started < 3.0
        assert err == b""
        assert group.poll() is None  # still running: it was not the reaper's any more
    finally:
        stop_group(group, grace=0.5)
        if reaper.poll() is None:
            reaper.kill()
            reaper.wait()
