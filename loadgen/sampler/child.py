"""The sampler's process: the target's process tree and the client's, off the target's CPUs.

Run as ``python -m loadgen.sampler '<json config>'`` by :class:`loadgen.sampler.SamplerProcess`
(a process of its own: a thread would take the GIL from a load client running in the fwbench
process), pinned to the client's CPUs, never the target's. Every ``interval`` it appends one
:class:`~loadgen.records.samples.Sample` as a JSON line to ``out`` (after a header line naming
the format, see :mod:`loadgen.records.samples`) and flushes it. Its stdout says ``ready`` once
the first sample is written; a byte or EOF on its stdin, or SIGTERM, asks it for a last sample
and exit; it also exits when its parent is gone (see :mod:`loadgen.sampler.handle`).

Roles: ``target`` is the server's leader PID and its descendants; ``client`` is the client root
(the fwbench process) and its descendants, without the target's tree, the sampler and the PIDs
of ``ignore`` (fwbench's reaper, :mod:`loadgen.reaper`: idle, and not load) and without the
database's tree. ``database`` (when ``database_pid`` is given) is a PostgreSQL server's
postmaster and its descendants (the backends, one per connection, and its helpers). A process
stays in the role it was first seen in until it ends, so a worker whose master died is still
counted.

Counters are cumulative and never go backwards: a process that ends keeps its last reading in
its role's totals (a zombie's reading is final).

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
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import FrameType
from typing import Any

import psutil

from loadgen.records.samples import SCHEMA, RoleSample, Sample

REFRESH_S = 1.0  # how often the process lists are refreshed

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")

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

    def __init__(
        self,
        target_pid: int,
        client_pid: int,
        ignore: Collection[int] = (),
        database_pid: int | None = None,
    ) -> None:
        self.target_pid = target_pid
        self.client_pid = client_pid
        self.database_pid = database_pid
        self.me = os.getpid()
        self.ignore = set(ignore)  # the client's children that are not the client (the reaper)
        self.target = _Role()
        self.client = _Role()
        self.database = _Role() if database_pid else None
        self.refreshed = -float("inf")
        self._files = os.path.exists(f"/proc/{self.me}/task/{self.me}/children")
        # The roots are walked only while their PIDs belong to the processes given (PIDs wrap).
        roots = (target_pid, client_pid, *((database_pid,) if database_pid else ()))
        self._roots = {pid: _started(pid) for pid in roots}

    def refresh(self) -> None:
        children: ChildrenOf = children_from_files if self._files else children_from_scan()
        now = {pid: _started(pid) for pid in self._roots}
        if now[self.target_pid] == self._roots[self.target_pid]:
            for pid in tree(self.target_pid, {self.me}, children):
                self.target.add(pid)
        db_pid = self.database_pid
        if self.database is not None and db_pid and now[db_pid] == self._roots[db_pid]:
            for pid in tree(db_pid, {self.me}, children):
                self.database.add(pid)
        if now[self.client_pid] == self._roots[self.client_pid]:
            prune = {self.me, self.target_pid, *self.target.live, *self.ignore}
            if self.database is not None and db_pid:
                prune |= {db_pid, *self.database.live}
            for pid in tree(self.client_pid, prune, children):
                self.client.add(pid)
        self.refreshed = time.monotonic()

    def take(self, uss: bool) -> Sample:
        if time.monotonic() - self.refreshed >= REFRESH_S:
            self.refresh()
        t, mono = time.time(), time.monotonic()
        target = self.target.read(uss)
        client = self.client.read(uss)
        database = self.database.read(uss) if self.database is not None else None
        busy, total = machine_cpu()
        sampler_s = time.process_time()
        return Sample(t, mono, target, client, busy, total, sampler_s, database)


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
    database_pid = config.get("database_pid")
    sampler = TreeSampler(
        config["target_pid"], config["client_pid"], config.get("ignore", ()), database_pid
    )
    header = {
        "schema": SCHEMA,
        "target_pid": config["target_pid"],
        "client_pid": config["client_pid"],
        "database_pid": database_pid,
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
