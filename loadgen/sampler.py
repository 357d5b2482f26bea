"""The psutil sampler: the target's process tree and the client's processes, off the target's CPUs.

Theory of operation
-------------------
:class:`SamplerProcess` runs ``python -m loadgen.sampler <config>`` as a process of its own (a
thread would take the GIL from a load client running in the fwbench process), pinned to the
client's CPUs, never the target's. Every ``interval`` it appends one :class:`Sample` as a JSON
line to ``out`` (after a header line naming the format) and flushes it.

Talking to it: its stdout says ``ready`` once the first sample is written; any byte on its stdin,
or EOF, asks it to take a last sample and exit. It also exits when its parent dies: EOF on the
pipe, or, if a forked process still holds the pipe, ``os.getppid()`` no longer being its parent.

Roles: ``target`` is the server's leader PID and its descendants; ``client`` is the client root
(the fwbench process) and its descendants, without the target's tree and without the sampler. A
process stays in the role it was first seen in until it ends, so a worker whose master died is
still counted.

Counters are cumulative and never go backwards: a process that ends keeps its last reading in
its role's totals (a zombie's reading is final). :func:`summarize` takes differences of these
counters across the measured window.

Cost (see the "psutil sampling" notes): psutil's ``children(recursive=True)`` reads
``/proc/*/stat`` of every process on the machine (2.5-4 ms a call here). The process lists are
refreshed only every ``REFRESH_S``, by walking ``/proc/<pid>/task/<tid>/children`` down from the
two roots (a few small files, ~0.1 ms); kernels without those files get one ``/proc`` scan per
refresh, shared by both roles. Every sample reads ``/proc/<pid>/stat`` and ``status`` of each
process directly (~40 µs a process; the same values through psutil's ``cpu_times``,
``memory_info``, ``num_threads`` and ``num_ctx_switches`` under ``oneshot()`` cost ~190 µs).
``psutil.Process`` objects are made once per process and kept, for USS (``memory_full_info``,
which reads smaps, ~0.2 ms a process): only on the first sample, one in ``uss_every`` and the
last one. A PID is followed only while its start time (in ``stat``) is the one first seen.

What is not seen, and what the figures include:
- per-process CPU times come from ``/proc`` in clock ticks (10 ms): a per-interval rate at
  0.25 s carries about ±4 % of one core of quantisation; a 10 s mean ±0.2 %;
- a process first seen at a refresh brings the CPU it used since it started into the interval
  where it is first read (totals stay exact, attribution lags by up to ``REFRESH_S``); a process
  that lives less than ``REFRESH_S`` may never be seen;
- context switches are those ``/proc/<pid>/status`` reports: the main thread's only;
- RSS sums count shared pages once per process (USS does not);
- the machine's busy time (``/proc/stat``) counts user, nice, system, irq, softirq and steal:
  the "other" CPU left after our processes includes kernel work charged to no process (softirq
  run in ksoftirqd, e.g. loopback TCP) and time the hypervisor stole.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import psutil

from loadgen.records import ProcStats

SCHEMA = "fwbench.samples/1"  # the header line of a samples file
REFRESH_S = 1.0  # how often the process lists are refreshed
START_TIMEOUT_S = 15.0  # for the sampler's first sample (a Python start on a busy VM)
STOP_TIMEOUT_S = 5.0  # for its exit once asked, then it is killed
CLIENT_SATURATED_PCT = 90.0  # client CPU share (of its CPU set) at which it is the limit

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class SamplerError(RuntimeError):
    pass


@dataclass(frozen=True)
class RoleSample:
    """One role's processes at one instant; CPU and context switches are cumulative."""

    procs: int
    cpu_user_s: float
    cpu_system_s: float
    rss_bytes: int
    uss_bytes: int | None  # None when USS was not read on this sample
    threads: int
    ctx_switches: int  # voluntary + involuntary


@dataclass(frozen=True)
class Sample:
    t: float  # time.time() when the sample was taken
    mono: float  # time.monotonic() at the same moment
    target: RoleSample
    client: RoleSample
    sys_busy_s: float  # /proc/stat: CPU-seconds busy on all CPUs since boot
    sys_total_s: float  # /proc/stat: CPU-seconds on all CPUs since boot (busy + idle + iowait)
    sampler_cpu_s: float  # the sampler's own user + system CPU-seconds since it started

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Sample:
        data = dict(d)
        data["target"] = RoleSample(**data["target"])
        data["client"] = RoleSample(**data["client"])
        return cls(**data)


def read_samples(path: Path) -> list[Sample]:
    """The samples of a samples file, in the order taken (the header line is checked, skipped)."""
    out: list[Sample] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError:
                continue  # a sampler killed mid-write leaves at most one torn last line
            if "schema" in raw:
                if raw["schema"] != SCHEMA:
                    raise SamplerError(f"{path}: samples format {raw['schema']!r}, not {SCHEMA}")
                continue
            out.append(Sample.from_dict(raw))
    return out


# --- the parent's side ---------------------------------------------------------------------------


class SamplerProcess:
    """The sampler's process, seen from fwbench. Use as a context manager, or start/stop."""

    def __init__(
        self,
        *,
        target_pid: int,
        client_pid: int,
        out: Path,
        interval: float = 0.25,
        uss_every: int = 8,
        cpus: tuple[int, ...] = (),
    ) -> None:
        if target_pid <= 0 or client_pid <= 0:
            raise ValueError("target_pid and client_pid must be PIDs")
        if not interval > 0:
            raise ValueError(f"interval must be > 0, not {interval!r}")
        if uss_every < 1:
            raise ValueError(f"uss_every must be >= 1, not {uss_every!r}")
        if any(c < 0 for c in cpus):
            raise ValueError(f"cpus must be CPU numbers, not {cpus!r}")
        self.target_pid = target_pid
        self.client_pid = client_pid
        self.out = out
        self.interval = interval
        self.uss_every = uss_every
        self.cpus = tuple(cpus)
        self.returncode: int | None = None
        self.stderr = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._samples: list[Sample] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start it; returns once the first sample is written. Raises :class:`SamplerError`."""
        if self._proc is not None:
            raise SamplerError("this sampler was already started")
        self._check_cpus()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "target_pid": self.target_pid,
            "client_pid": self.client_pid,
            "parent_pid": os.getpid(),
            "out": str(self.out),
            "interval": self.interval,
            "uss_every": self.uss_every,
            "cpus": list(self.cpus),
        }
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = proc = subprocess.Popen(
            [sys.executable, "-m", "loadgen.sampler", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        if self.cpus:
            # Pinned from here too (no preexec_fn: not safe with threads), so the interpreter's
            # start-up is already off the target's CPUs; the sampler pins itself again.
            try:
                os.sched_setaffinity(proc.pid, self.cpus)
            except ProcessLookupError:
                pass  # it failed already: _wait_ready says why
            except OSError as exc:
                self._fail(f"cannot pin it to CPUs {list(self.cpus)}: {exc.strerror}")
        self._wait_ready(proc)

    def stop(self) -> list[Sample]:
        """Ask it to stop (bounded wait, then kill) and return every sample it wrote."""
        if self._samples is not None:
            return self._samples
        proc = self._proc
        if proc is None:
            self._samples = []
            return self._samples
        if proc.stdin is not None:
            # A byte, not only EOF: a process forked from ours may hold the pipe open too.
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(b"stop\n")
                proc.stdin.flush()
        try:
            _, err = proc.communicate(timeout=STOP_TIMEOUT_S)
            problem = f"exited with code {proc.returncode}" if proc.returncode else ""
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            problem = f"did not stop within {STOP_TIMEOUT_S:g} s and was killed"
        self.returncode = proc.returncode
        self.stderr = err.decode("utf-8", "replace")
        if problem:
            tail = self.stderr.strip().splitlines()[-1:]
            print(f"fwbench: sampler {problem}" + (f": {tail[0]}" if tail else ""), file=sys.stderr)
        try:
            self._samples = read_samples(self.out)
        except FileNotFoundError:
            self._samples = []
        return self._samples

    def __enter__(self) -> SamplerProcess:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_cpus(self) -> None:
        """Refuse to share CPUs with a target that is pinned to some of the CPUs but not all."""
        try:
            target = os.sched_getaffinity(self.target_pid)
        except OSError:
            return  # gone already: the sampler itself reports it
        mine = set(self.cpus) or os.sched_getaffinity(0)
        pinned = target < (os.sched_getaffinity(0) | set(self.cpus) | target)
        if pinned and mine & target:
            raise SamplerError(
                f"the sampler would run on CPUs {sorted(mine & target)}, which the target is "
                f"pinned to ({sorted(target)}): give it the client's CPUs"
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + START_TIMEOUT_S
        got = b""
        while b"\n" not in got:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"no first sample within {START_TIMEOUT_S:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 64)
                if not chunk:
                    self._fail("it exited before its first sample")
                got += chunk
        if got.strip() != b"ready":
            self._fail(f"unexpected answer {got!r}")

    def _fail(self, reason: str) -> NoReturn:
        proc = self._proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        _, err = proc.communicate()
        self.returncode = proc.returncode
        self.stderr = err.decode("utf-8", "replace")
        self._samples = []
        tail = "\n".join(self.stderr.strip().splitlines()[-3:])
        raise SamplerError(f"sampler did not start: {reason}" + (f"\n{tail}" if tail else ""))


# --- the summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The samples over the measured window. ``target``/``client`` are None when the role had
    no process around the window, or when the samples do not cover it at all."""

    target: ProcStats | None
    client: ProcStats | None
    sampler_cpu_pct: float  # the sampler's own CPU, % of one core
    other_cpu_pct: float | None  # % of the machine's CPUs busy with unrelated work
    client_cpu_pct: float  # client CPU as % of its CPU set
    target_cpu_s: float  # target user + system CPU-seconds in the window
    window_s: float = 0.0  # the seconds of the window the samples cover


def is_saturated(client_cpu_pct: float, threshold_pct: float = CLIENT_SATURATED_PCT) -> bool:
    """True when the client, not the target, is likely the limit."""
    return client_cpu_pct >= threshold_pct


def summarize(
    samples: Sequence[Sample], window_start: float, window_end: float, n_client_cpus: int
) -> Summary:
    """Figures over the wall-clock window ``[window_start, window_end]`` (``time.time()``).

    Cumulative counters (CPU, context switches, the machine's and the sampler's CPU) are read
    at the window's edges by linear interpolation between the two samples bracketing each edge,
    so a 10 s window is not rounded to the sampling grid. When the samples cover only part of
    the window, every figure is over the covered part (``window_s`` says how long it is).
    ``cpu_max_pct`` is the highest rate of a sampling interval that overlaps the window (a very
    short interval is joined to the one before it, see :func:`_rate_points`); peaks
    (RSS, USS, threads, processes) are over the samples taken inside the window (the two
    bracketing samples when none is). Samples are taken in the order given (as written).
    """
    if n_client_cpus < 1:
        raise ValueError(f"n_client_cpus must be >= 1, not {n_client_cpus}")
    start = max(window_start, samples[0].t) if samples else 0.0
    end = min(window_end, samples[-1].t) if samples else 0.0
    if len(samples) < 2 or end <= start:
        return Summary(None, None, 0.0, None, 0.0, 0.0, 0.0)
    ts = [s.t for s in samples]
    span = end - start
    first = bisect_right(ts, start) - 1  # the last sample at or before the start
    last = bisect_left(ts, end)  # the first sample at or after the end
    around = samples[first : last + 1]
    points = _rate_points(ts, first, last)
    inside = [s for s in around if start <= s.t <= end] or around

    def delta(values: Sequence[float]) -> float:
        return _at(ts, values, end) - _at(ts, values, start)

    stats: dict[str, ProcStats | None] = {}
    for role in ("target", "client"):
        rs = [_role(s, role) for s in samples]
        if not any(_role(s, role).procs for s in around):
            stats[role] = None
            continue
        user = delta([r.cpu_user_s for r in rs])
        system = delta([r.cpu_system_s for r in rs])
        cpu = [r.cpu_user_s + r.cpu_system_s for r in rs]
        rates = [(cpu[j] - cpu[i]) / (ts[j] - ts[i]) * 100 for i, j in itertools.pairwise(points)]
        stats[role] = ProcStats(
            cpu_mean_pct=(user + system) / span * 100,
            cpu_max_pct=max(rates, default=0.0),
            cpu_user_s=user,
            cpu_system_s=system,
            rss_peak_bytes=max(_role(s, role).rss_bytes for s in inside),
            uss_peak_bytes=_uss_peak(samples, inside, role, start, end),
            threads_max=max(_role(s, role).threads for s in inside),
            ctx_switches=round(delta([r.ctx_switches for r in rs])),
            processes_max=max(_role(s, role).procs for s in inside),
        )
    target, client = stats["target"], stats["client"]
    target_cpu = target.cpu_user_s + target.cpu_system_s if target else 0.0
    client_cpu = client.cpu_user_s + client.cpu_system_s if client else 0.0
    sampler_cpu = delta([s.sampler_cpu_s for s in samples])
    busy = delta([s.sys_busy_s for s in samples])
    total = delta([s.sys_total_s for s in samples])
    other: float | None = None
    if total > 0:
        # Clamped: tick-based /proc/stat and per-process times disagree by a few ticks.
        other = min(100.0, max(0.0, (busy - target_cpu - client_cpu - sampler_cpu) / total * 100))
    return Summary(
        target=target,
        client=client,
        sampler_cpu_pct=sampler_cpu / span * 100,
        other_cpu_pct=other,
        client_cpu_pct=client_cpu / span / n_client_cpus * 100,
        target_cpu_s=target_cpu,
        window_s=span,
    )


def _rate_points(ts: Sequence[float], first: int, last: int) -> list[int]:
    """Sample indices from ``first`` to ``last`` whose gaps are long enough to give a rate.

    A gap shorter than half the median interval (the last sample, taken as soon as the sampler
    is stopped, often comes a few ms after a tick) cannot resolve a rate in 10 ms clock ticks:
    such a sample is joined to the interval before it.
    """
    gaps = sorted(b - a for a, b in itertools.pairwise(ts))
    shortest = gaps[len(gaps) // 2] / 2
    points = [first]
    for i in range(first + 1, last + 1):
        if ts[i] - ts[points[-1]] >= shortest:
            points.append(i)
        elif i == last and len(points) > 1:
            points[-1] = i  # the end stays: the interval before it grows
    if len(points) == 1:
        points.append(last)  # the window is inside one short interval: its rate, however rough
    return points


def _at(ts: Sequence[float], values: Sequence[float], x: float) -> float:
    """``values`` (a cumulative counter sampled at ``ts``) at time ``x``, linearly interpolated."""
    i = min(max(bisect_right(ts, x) - 1, 0), len(ts) - 2)
    t0, t1 = ts[i], ts[i + 1]
    if t1 <= t0:
        return values[i + 1]
    return values[i] + (values[i + 1] - values[i]) * (x - t0) / (t1 - t0)


def _uss_peak(
    samples: Sequence[Sample], inside: Sequence[Sample], role: str, start: float, end: float
) -> int:
    """Highest USS read inside the window; else the reading nearest to it; 0 if none at all."""
    inside_uss = [u for s in inside if (u := _role(s, role).uss_bytes) is not None]
    if inside_uss:
        return max(inside_uss)
    read = [(max(start - s.t, s.t - end), u) for s in samples if (u := _role(s, role).uss_bytes)]
    return min(read)[1] if read else 0


def _role(sample: Sample, role: str) -> RoleSample:
    return sample.target if role == "target" else sample.client


# --- the sampler's side --------------------------------------------------------------------------

ChildrenOf = Callable[[int], Iterable[int]]


def children_from_files(pid: int) -> list[int]:
    """Children of ``pid``, from ``/proc/<pid>/task/<tid>/children`` of each of its threads."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        with contextlib.suppress(OSError):
            out.extend(int(c) for c in _read(f"/proc/{pid}/task/{tid}/children").split())
    return out


def children_from_scan() -> ChildrenOf:
    """One scan of ``/proc/*/stat`` (the fallback without children files); a lookup into it."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = _read(f"/proc/{name}/stat")
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split(maxsplit=2)[1])
        kids.setdefault(ppid, []).append(int(name))
    return lambda pid: kids.get(pid, [])


def tree(root: int, prune: Collection[int], children: ChildrenOf) -> list[int]:
    """``root`` and its descendants, not entering ``prune`` (a gone root has no children)."""
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in prune:
            continue
        found.append(pid)
        todo.extend(children(pid))
    return found


def _started(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot (who owns the PID); None if gone."""
    try:
        stat = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


class _Proc:
    """A process of a role: its psutil object (for USS) and its last readings, in clock ticks."""

    __slots__ = (
        "ctx",
        "proc",
        "rss",
        "started",
        "stat_path",
        "status_path",
        "system",
        "threads",
        "user",
    )

    def __init__(self, proc: psutil.Process, started: int) -> None:
        self.proc = proc
        self.started = started  # start time in ticks since boot: who owns the PID
        self.stat_path = f"/proc/{proc.pid}/stat"
        self.status_path = f"/proc/{proc.pid}/status"
        self.user = self.system = self.ctx = self.threads = self.rss = 0

    def read(self) -> bool:
        """Read its counters; False once it has ended (gone, a zombie, or its PID reused).

        ``/proc/<pid>/stat`` and ``status`` are read directly: the same values through psutil's
        cpu_times, memory_info, num_threads and num_ctx_switches cost about 4x more.
        """
        try:
            stat = _read(self.stat_path)
            status = _read(self.status_path)
        except OSError:
            return False
        f = stat[stat.rfind(b")") + 2 :].split()  # f[0] is field 3 of proc(5): the state
        if int(f[19]) != self.started:
            return False
        # max(): a counter must never go backwards, whatever the kernel rounds.
        self.user = max(self.user, int(f[11]))
        self.system = max(self.system, int(f[12]))
        at = status.find(b"voluntary_ctxt_switches:")  # then nonvoluntary_ctxt_switches
        if at >= 0:
            words = status[at:].split(maxsplit=4)
            self.ctx = max(self.ctx, int(words[1]) + int(words[3]))
        if f[0] in (b"Z", b"X"):
            return False  # its readings are final
        self.threads = int(f[17])
        self.rss = int(f[21]) * _PAGE
        return True


class _Role:
    """One role's processes, kept between samples; the totals of those that ended."""

    def __init__(self) -> None:
        self.live: dict[int, _Proc] = {}
        self.ended: dict[int, int] = {}  # pid -> start time (a zombie lingers in the tree)
        self.ended_user = self.ended_system = self.ended_ctx = 0

    def add(self, pid: int) -> None:
        if pid in self.live:
            return
        started = _started(pid)
        if started is None or self.ended.get(pid) == started:
            return
        try:
            proc = psutil.Process(pid)
        except psutil.Error:
            return
        self.ended.pop(pid, None)  # the PID was reused
        self.live[pid] = _Proc(proc, started)

    def read(self, uss: bool) -> RoleSample:
        rss = threads = 0
        uss_sum: int | None = 0 if uss else None
        for pid, p in list(self.live.items()):
            if not p.read():
                del self.live[pid]
                self.ended[pid] = p.started
                self.ended_user += p.user
                self.ended_system += p.system
                self.ended_ctx += p.ctx
                continue
            rss += p.rss
            threads += p.threads
            if uss_sum is not None:
                with contextlib.suppress(psutil.Error):  # gone since: the next read says so
                    uss_sum += int(p.proc.memory_full_info().uss)
        live = self.live.values()
        return RoleSample(
            procs=len(self.live),
            cpu_user_s=(self.ended_user + sum(p.user for p in live)) / _CLK_TCK,
            cpu_system_s=(self.ended_system + sum(p.system for p in live)) / _CLK_TCK,
            rss_bytes=rss,
            uss_bytes=uss_sum,
            threads=threads,
            ctx_switches=self.ended_ctx + sum(p.ctx for p in live),
        )


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU-seconds of all CPUs since boot, from the first line of /proc/stat."""
    with open("/proc/stat", "rb") as fh:
        fields = [int(x) for x in fh.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields + [0] * (8 - len(fields))
    busy = user + nice + system + irq + softirq + steal  # guest time is inside user and nice
    return busy / _CLK_TCK, (busy + idle + iowait) / _CLK_TCK


class TreeSampler:
    """Takes samples in this process (what the sampler's process runs in its loop)."""

    def __init__(self, target_pid: int, client_pid: int) -> None:
        self.target_pid = target_pid
        self.client_pid = client_pid
        self.me = os.getpid()
        self.target = _Role()
        self.client = _Role()
        self.refreshed = -float("inf")
        self._files = os.path.exists(f"/proc/{self.me}/task/{self.me}/children")
        # The roots are walked only while their PIDs belong to the processes given (PIDs wrap).
        self._roots = {pid: _started(pid) for pid in (target_pid, client_pid)}

    def refresh(self) -> None:
        children: ChildrenOf = children_from_files if self._files else children_from_scan()
        now = {pid: _started(pid) for pid in self._roots}
        if now[self.target_pid] == self._roots[self.target_pid]:
            for pid in tree(self.target_pid, {self.me}, children):
                self.target.add(pid)
        if now[self.client_pid] == self._roots[self.client_pid]:
            prune = {self.me, self.target_pid, *self.target.live}
            for pid in tree(self.client_pid, prune, children):
                self.client.add(pid)
        self.refreshed = time.monotonic()

    def take(self, uss: bool) -> Sample:
        if time.monotonic() - self.refreshed >= REFRESH_S:
            self.refresh()
        t, mono = time.time(), time.monotonic()
        target = self.target.read(uss)
        client = self.client.read(uss)
        busy, total = machine_cpu()
        return Sample(t, mono, target, client, busy, total, time.process_time())


def _run(config: Mapping[str, Any]) -> int:
    """The sampler's loop: sample, write, wait for the next tick or a word from the parent."""
    cpus = config["cpus"]
    if cpus:
        os.sched_setaffinity(0, cpus)
    stopping = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches fwbench, which stops us
    parent = config["parent_pid"]
    interval = float(config["interval"])
    uss_every = int(config["uss_every"])
    if not psutil.pid_exists(config["target_pid"]):
        print(f"target PID {config['target_pid']} does not exist", file=sys.stderr)
        return 2
    sampler = TreeSampler(config["target_pid"], config["client_pid"])
    header = {
        "schema": SCHEMA,
        "target_pid": config["target_pid"],
        "client_pid": config["client_pid"],
        "sampler_pid": os.getpid(),
        "interval": interval,
        "uss_every": uss_every,
        "refresh_s": REFRESH_S,
        "cpus": cpus,
        "n_cpus": os.cpu_count(),
    }
    with open(config["out"], "w", encoding="utf-8") as fh:
        fh.write(json.dumps(header) + "\n")
        n = 0
        tick = time.monotonic()
        while True:
            sample = sampler.take(uss=stopping or n % uss_every == 0)
            fh.write(json.dumps(sample.to_dict(), separators=(",", ":")) + "\n")
            fh.flush()
            if n == 0:
                os.write(1, b"ready\n")
            n += 1
            if stopping:
                return 0
            tick += interval
            now = time.monotonic()
            if tick < now:  # late (a busy machine): skip the missed ticks, keep the grid
                tick += (now - tick) // interval * interval + interval
            readable, _, _ = select.select([0], [], [], tick - now)
            if readable:
                os.read(0, 64)  # a word or EOF: either way, a last sample and out
                stopping = True
            if os.getppid() != parent:
                return 0  # the parent is gone: nobody will read more


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m loadgen.sampler '<json config>'", file=sys.stderr)
        return 2
    return _run(json.loads(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
