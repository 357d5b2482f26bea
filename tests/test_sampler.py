"""The psutil sampler: summaries on hand-made samples (exact answers), then real process trees.

Real processes only: a burning two-process target in its own session with this test process as
the client; a worker killed mid-sampling (totals never go backwards); a sampler whose parent
dies (it exits, by EOF or by noticing its new parent); the refusal to share the target's CPUs.
Every process started here is stopped by PID or process group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadgen.records import (
    SAMPLES_SCHEMA,
    RecordError,
    RoleSample,
    Sample,
    cpu_pct_series,
    read_samples,
)
from loadgen.sampler import SamplerError, SamplerProcess, is_saturated, summarize
from loadgen.sampler.child import children_from_files, children_from_scan, tree

ROOT = Path(__file__).resolve().parent.parent

# A target: the leader forks a child, prints the child's PID, and both burn CPU (bounded).
BURN_TWO = """
import os, time
child = os.fork()
if child:
    print(child, flush=True)
end = time.monotonic() + 8
while time.monotonic() < end:
    pass
"""

# A target whose child burns until killed; the leader reaps it and stays (bounded).
LEADER_AND_WORKER = """
import os, time
child = os.fork()
if child == 0:
    end = time.monotonic() + 8
    while time.monotonic() < end:
        pass
    os._exit(0)
print(child, flush=True)
os.waitpid(child, 0)
time.sleep(8)
"""

# A short-lived parent of a sampler: starts it, says its PID, and dies without stopping it.
# With "fork", a forked process keeps the sampler's stdin pipe open, so no EOF comes.
ORPHANING_PARENT = """
import os, sys, time
from pathlib import Path
from loadgen.sampler import SamplerProcess
s = SamplerProcess(target_pid=os.getpid(), client_pid=os.getpid(), out=Path(sys.argv[1]))
s.start()
print(s.pid, flush=True)
if sys.argv[2] == "fork":
    holder = os.fork()
    if holder == 0:
        os.close(1)  # only the sampler's stdin pipe stays held
        time.sleep(8)
        os._exit(0)
    print(holder, flush=True)
os._exit(0)
"""


@contextlib.contextmanager
def target(code: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The code as a target in its own session; yields it and the PID it prints first."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        yield proc, int(proc.stdout.readline())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def role(
    procs: int, cpu: tuple[float, float], rss: int, uss: int | None, threads: int, ctx: int
) -> RoleSample:
    return RoleSample(procs, cpu[0], cpu[1], rss, uss, threads, ctx)


def hand_made() -> list[Sample]:
    """Five samples one second apart, t = 100..104, with known counters."""
    t_user, t_sys = [0, 1, 2, 2.5, 3], [0, 0, 0.5, 0.5, 1.0]
    t_rss, t_uss = [10, 50, 30, 40, 99], [5, None, 7, None, 100]
    t_threads, t_procs, t_ctx = [1, 3, 2, 2, 9], [1, 2, 2, 1, 5], [0, 10, 20, 40, 40]
    out = []
    for i in range(5):
        out.append(
            Sample(
                t=100.0 + i,
                mono=5.0 + i,
                target=role(
                    t_procs[i], (t_user[i], t_sys[i]), t_rss[i], t_uss[i], t_threads[i], t_ctx[i]
                ),
                client=role(1, (0.5 * i, 0.0), 1000, None, 1, 3 * i),
                sys_busy_s=1.6 * i,  # a 2-CPU machine: 2 CPU-seconds a second
                sys_total_s=2.0 * i,
                sampler_cpu_s=0.01 * i,
            )
        )
    return out


def test_summarize_gives_exact_answers() -> None:
    s = summarize(hand_made(), 100.5, 103.5, n_client_cpus=2)
    assert s.window_s == 3.0
    assert s.target is not None and s.client is not None
    # Edges interpolated: user 0.5 -> 2.75, system 0 -> 0.75.
    assert s.target.cpu_user_s == pytest.approx(2.25)
    assert s.target.cpu_system_s == pytest.approx(0.75)
    assert s.target.cpu_mean_pct == pytest.approx(100.0)
    assert s.target.cpu_max_pct == pytest.approx(150.0)  # the 101-102 interval: 1.5 s in 1 s
    assert s.target.rss_peak_bytes == 50  # samples at 101..103 only
    assert s.target.uss_peak_bytes == 7
    assert s.target.threads_max == 3
    assert s.target.processes_max == 2
    assert s.target.ctx_switches == 35  # 5 -> 40
    assert s.target_cpu_s == pytest.approx(3.0)
    assert s.client.cpu_mean_pct == pytest.approx(50.0)
    assert s.client.uss_peak_bytes == 0  # never read
    assert s.client.ctx_switches == 9
    assert s.client_cpu_pct == pytest.approx(25.0)  # 1.5 CPU-s / 3 s / 2 CPUs
    assert s.sampler_cpu_pct == pytest.approx(1.0)
    # Machine: 4.8 busy of 6 CPU-seconds; ours 3.0 + 1.5 + 0.03.
    assert s.other_cpu_pct == pytest.approx((4.8 - 4.53) / 6 * 100)


def test_summarize_edges() -> None:
    samples = hand_made()
    partial = summarize(samples, 102.0, 110.0, 1)  # covered from 102 to 104 only
    assert partial.window_s == 2.0
    assert partial.target is not None
    assert partial.target.cpu_mean_pct == pytest.approx(75.0)  # 2.5 -> 4.0
    assert partial.target.uss_peak_bytes == 100

    narrow = summarize(samples, 101.2, 101.4, 1)  # inside one interval: its rate, its ends
    assert narrow.target is not None
    assert narrow.target.cpu_mean_pct == pytest.approx(150.0)
    assert narrow.target.rss_peak_bytes == 50
    assert narrow.target.uss_peak_bytes == 7  # the nearest reading

    # The last sample, taken on stop 4 ms after a tick with one more 10 ms tick: 250 % over
    # those 4 ms is quantisation, not a rate; the max joins it to the interval before.
    last = samples[-1]
    stop_sample = dataclasses.replace(
        last,
        t=last.t + 0.004,
        target=dataclasses.replace(last.target, cpu_user_s=last.target.cpu_user_s + 0.01),
    )
    tail = summarize([*samples, stop_sample], 103.0, 104.004, 1)
    assert tail.target is not None
    assert tail.target.cpu_max_pct == pytest.approx(1.01 / 1.004 * 100)

    outside = summarize(samples, 200.0, 210.0, 1)
    assert outside.target is None and outside.client is None and outside.window_s == 0.0
    assert summarize([], 100.0, 101.0, 1).target is None

    no_target = role(0, (1.0, 1.0), 0, None, 0, 5)
    gone = [dataclasses.replace(s, target=no_target) for s in samples]
    assert summarize(gone, 100.5, 103.5, 1).target is None
    with pytest.raises(ValueError, match="n_client_cpus"):
        summarize(samples, 100.5, 103.5, 0)


def test_cpu_pct_series_is_the_one_rate() -> None:
    samples = hand_made()
    assert cpu_pct_series(samples, "target") == pytest.approx([None, 100.0, 150.0, 50.0, 100.0])
    assert cpu_pct_series(samples, "client") == pytest.approx([None, 50.0, 50.0, 50.0, 50.0])
    # Only (first, last] when asked; nothing from fewer than two samples.
    assert cpu_pct_series(samples, "target", 1, 3) == pytest.approx([None, None, 150.0, 50.0, None])
    assert cpu_pct_series(samples[:1], "target") == [None]
    # A stop sample 4 ms after the last tick joins the interval before it: both get its rate.
    last = samples[-1]
    stop_sample = dataclasses.replace(
        last,
        t=last.t + 0.004,
        target=dataclasses.replace(last.target, cpu_user_s=last.target.cpu_user_s + 0.01),
    )
    joined = 1.01 / 1.004 * 100
    series = cpu_pct_series([*samples, stop_sample], "target")
    assert series == pytest.approx([None, 100.0, 150.0, 50.0, joined, joined])


def test_is_saturated() -> None:
    assert is_saturated(95.0)
    assert not is_saturated(60.0)
    assert is_saturated(60.0, threshold_pct=50.0)


def test_samples_round_trip_through_a_file(tmp_path: Path) -> None:
    samples = hand_made()
    assert [Sample.from_dict(json.loads(json.dumps(s.to_dict()))) for s in samples] == samples
    path = tmp_path / "s.jsonl"
    lines = [json.dumps({"schema": SAMPLES_SCHEMA})] + [json.dumps(s.to_dict()) for s in samples]
    path.write_text("\n".join(lines) + '\n{"t": 1')  # a torn last line is skipped
    assert read_samples(path) == samples
    path.write_text(json.dumps({"schema": "fwbench.samples/99"}) + "\n")
    with pytest.raises(RecordError, match=r"s\.jsonl:1: samples format 'fwbench\.samples/99'"):
        read_samples(path)


@pytest.mark.child_process  # stand-in targets, no sampler process
def test_tree_walks_match_a_full_scan() -> None:
    nest = "import os, time\nfor _ in range(2):\n    os.fork()\nprint(0, flush=True)\ntime.sleep(8)"
    with target(nest) as (proc, _):
        time.sleep(0.2)  # the three others print too; wait until all four exist
        by_files = tree(proc.pid, (), children_from_files)
        assert len(by_files) == 4
        assert sorted(by_files) == sorted(tree(proc.pid, (), children_from_scan()))
        first = min(set(by_files) - {proc.pid})
        pruned = tree(proc.pid, {first}, children_from_files)
        assert first not in pruned and proc.pid in pruned and len(pruned) < 4


@pytest.mark.e2e
def test_target_tree_and_client_measured_apart(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    out = tmp_path / "samples" / "t.jsonl"
    with target(BURN_TWO) as (proc, child):
        burners = [psutil.Process(proc.pid), psutil.Process(child)]
        with SamplerProcess(
            target_pid=proc.pid, client_pid=os.getpid(), out=out, interval=0.1, cpus=(cpu,)
        ) as sampler:
            assert sampler.pid is not None
            assert os.sched_getaffinity(sampler.pid) == {cpu}
            assert len(read_samples(out)) >= 1  # started means sampled
            start, burnt_before = time.time(), cpu_s(burners)
            time.sleep(1.2)
            end, burnt = time.time(), cpu_s(burners) - burnt_before
        samples = sampler.stop()
    assert sampler.returncode == 0
    assert sampler.stop() is samples
    assert samples == read_samples(out)
    assert all(b.t > a.t for a, b in itertools.pairwise(samples))
    s = summarize(samples, start, end, n_client_cpus=1)
    assert s.target is not None and s.client is not None
    assert s.target.processes_max == 2
    # What was burnt, as the burners' own counters say (the shared 2-core VM decides how much).
    assert s.target_cpu_s == pytest.approx(burnt, abs=0.1)
    assert s.target.cpu_mean_pct > 20
    assert s.target.rss_peak_bytes > 0 and s.target.uss_peak_bytes > 0
    assert s.target.threads_max >= 2
    # The client is this (sleeping) process alone: no target, no sampler in it.
    assert s.client.processes_max == 1
    assert s.client.cpu_mean_pct < 30
    # The sampler reports its own cost.
    assert samples[-1].sampler_cpu_s > samples[0].sampler_cpu_s > 0
    assert 0 < s.sampler_cpu_pct < 20


def cpu_s(procs: list[psutil.Process]) -> float:
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


@pytest.mark.e2e
def test_a_process_ending_mid_sampling_keeps_totals(tmp_path: Path) -> None:
    with target(LEADER_AND_WORKER) as (proc, worker):
        sampler = SamplerProcess(
            target_pid=proc.pid, client_pid=os.getpid(), out=tmp_path / "s.jsonl", interval=0.1
        )
        sampler.start()
        try:
            time.sleep(0.7)
            os.kill(worker, signal.SIGKILL)  # the leader reaps it at once
            time.sleep(0.7)
        finally:
            samples = sampler.stop()
    procs = [s.target.procs for s in samples]
    assert procs[0] == 2 and procs[-1] == 1
    cpu = [s.target.cpu_user_s + s.target.cpu_system_s for s in samples]
    assert all(b >= a for a, b in itertools.pairwise(cpu)), cpu
    ctx = [s.target.ctx_switches for s in samples]
    assert all(b >= a for a, b in itertools.pairwise(ctx)), ctx
    assert cpu[-1] >= 0.3  # the worker's burn stays counted after it is gone


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["eof", "fork"])
def test_sampler_exits_when_its_parent_dies(tmp_path: Path, how: str) -> None:
    out = tmp_path / "s.jsonl"
    with subprocess.Popen(
        [sys.executable, "-c", ORPHANING_PARENT, str(out), how],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as parent:
        printed, _ = parent.communicate(timeout=20)
    pids = [int(x) for x in printed.split()]
    assert len(pids) == (2 if how == "fork" else 1), printed
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    try:
        deadline = time.monotonic() + 5
        while running(pids[0], procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(pids[0], procs), "the sampler outlived its parent"
        assert read_samples(out)
    finally:
        for p in procs:  # the holder, and the sampler if the test failed
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()


def running(pid: int, procs: list[psutil.Process]) -> bool:
    for p in procs:
        if p.pid == pid:
            try:
                return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return False
    return False


@pytest.mark.child_process  # stand-in targets, no sampler process
def test_refuses_the_targets_cpus(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    with target("print(0, flush=True)\nimport time\ntime.sleep(8)") as (proc, _):
        os.sched_setaffinity(proc.pid, {cpus[0]})
        sampler = SamplerProcess(
            target_pid=proc.pid, client_pid=os.getpid(), out=tmp_path / "s.jsonl", cpus=(cpus[0],)
        )
        with pytest.raises(SamplerError, match="pinned"):
            sampler.start()
        assert sampler.pid is None
        assert sampler.stop() == []


@pytest.mark.e2e
def test_start_fails_clearly_without_a_target(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait(timeout=10)
    sampler = SamplerProcess(target_pid=gone.pid, client_pid=os.getpid(), out=tmp_path / "s.jsonl")
    with pytest.raises(SamplerError, match="does not exist"):
        sampler.start()
    assert sampler.returncode == 2
    assert sampler.stop() == []
