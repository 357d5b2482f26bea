"""The reaper: whatever ends fwbench (``kill -9`` too), the processes it started end with it.

A small process that outlives fwbench for one job. fwbench starts it lazily, the first time it
starts a child (:func:`loadgen.procs.spawn`), in a session of its own, with a pipe on its stdin,
and tells it over the pipe what to watch, one line each:

- ``+g PGID`` / ``-g PGID``: a process group (a server: the leader and every worker it forks);
- ``+p PID`` / ``-p PID``: one process in fwbench's own group (a load worker, the sampler, a
  locust process).

When fwbench's end of the pipe closes (it exited or was killed: the kernel closes its file
descriptors) or fwbench's PID no longer names it, the reaper SIGTERMs every group and process
still watched, waits up to ``--grace`` s, SIGKILLs what is left, says so on stderr and exits.
A PID is signalled only while it names the process that was registered (its start time is
kept), so a PID the kernel reused is never touched. It ignores SIGINT, SIGTERM and SIGHUP
(Ctrl-C, a supervisor's SIGTERM and a closed terminal are fwbench's to handle).

It never outlives its job: fwbench closes the pipe once nothing is watched (every child was
stopped and forgotten), so the reaper finds nothing to stop and exits at once; the next child
starts a new one. Run as a file (``python -I -S .../reaper.py``, the standard library only, a
quick start) or as ``python -m loadgen.reaper``.

fwbench's side is :class:`Reaper` (one per process: :data:`REAPER`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time

GRACE_S = 5.0
"""How long the watched processes have between SIGTERM and SIGKILL once fwbench is gone."""
POLL_S = 0.1
"""How often the reaper checks that fwbench lives, and that what it signalled is gone."""
PROOF_S = 5.0
"""How long, after SIGKILL, the reaper waits for the kernel to take the processes away."""
EXIT_S = 5.0
"""How long fwbench waits for an idle reaper to exit once its pipe is closed."""


# --------------------------------------------------------------------------------------------
# The reaper process


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time) of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[19])


def _started(pid: int) -> int | None:
    st = _stat(pid)
    return st[2] if st else None


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of group ``pgid``."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[1] == pgid and st[0] != "Z":
                out.append(int(name))
    return out


class _Watched:
    """What the reaper was told to watch: groups and single processes, with start times."""

    def __init__(self) -> None:
        self.groups: dict[int, int | None] = {}  # PGID -> its leader's start time
        self.pids: dict[int, int | None] = {}

    def apply(self, line: str) -> None:
        op, _, rest = line.strip().partition(" ")
        if op not in ("+g", "-g", "+p", "-p") or not rest.strip().isdigit():
            return
        pid = int(rest)
        table = self.groups if op[1] == "g" else self.pids
        if op[0] == "+":
            table[pid] = _started(pid)
        else:
            table.pop(pid, None)

    def _group_is_ours(self, pgid: int) -> bool:
        # The leader may be gone while its workers run on: the group is ours then too. A leader
        # PID naming another process means the group ended and the PID was reused.
        now = _started(pgid)
        return now is None or now == self.groups[pgid]

    def alive(self) -> tuple[list[int], list[int]]:
        groups = [g for g in self.groups if self._group_is_ours(g) and _group_members(g)]
        pids = []
        for pid, started in self.pids.items():
            st = _stat(pid)
            if st is not None and st[2] == started and st[0] != "Z":
                pids.append(pid)
        return groups, pids

    def signal(self, sig: signal.Signals) -> None:
        groups, pids = self.alive()
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def stop(self, grace: float) -> str:
        """SIGTERM all, wait up to ``grace``, SIGKILL the rest; a line saying what it did."""
        groups, pids = self.alive()
        if not groups and not pids:
            return ""
        what = ", ".join([f"process group {g}" for g in groups] + [f"pid {p}" for p in pids])
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(self.alive()) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        how = "SIGTERM"
        if any(self.alive()):
            how = "SIGKILL"
            self.signal(signal.SIGKILL)
            deadline = time.monotonic() + PROOF_S
            while any(self.alive()) and time.monotonic() < deadline:
                time.sleep(POLL_S)
        left = self.alive()
        said = f"stopped {what} ({how})"
        if any(left):
            said += f"; still running: {left[0] + left[1]}"
        return said


def _parent_gone(parent: int, started: int | None) -> bool:
    st = _stat(parent)
    return st is None or st[0] == "Z" or st[2] != started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadgen.reaper")
    parser.add_argument("--grace", type=float, default=GRACE_S)
    parser.add_argument("--parent", type=int, default=os.getppid(), help="fwbench's PID")
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    parent_started = _started(args.parent)
    watched = _Watched()
    fd = sys.stdin.fileno()
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], POLL_S * 10)
        if not ready:
            if _parent_gone(args.parent, parent_started):
                break  # the pipe leaked into some other process; fwbench is gone all the same
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            watched.apply(line.decode("ascii", "replace"))
    said = watched.stop(args.grace)
    if said:
        with contextlib.suppress(OSError):
            print(f"fwbench reaper: fwbench (pid {args.parent}) is gone; {said}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------
# fwbench's side


class Reaper:
    """This process's reaper: started before the first child, ended when nothing is watched.

    :func:`loadgen.procs.spawn` calls :meth:`prepare` and :meth:`watch`; the stops of
    :mod:`loadgen.procs` call :meth:`forget`. Thread-safe. A reaper that died (someone killed
    it) is replaced on the next line, and told again everything still watched.
    """

    def __init__(self, grace: float = GRACE_S) -> None:
        self.grace = grace
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watched: set[tuple[str, int]] = set()

    @property
    def pid(self) -> int | None:
        """The running reaper's PID, None when none runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def prepare(self) -> None:
        """Have a reaper running (before a child starts, so that no instant leaves it unwatched).

        Follow it with :meth:`watch`, or :meth:`settle` if the child could not be started.
        """
        with self._lock:
            if self.pid is None:
                self._close()
                self._start()

    def settle(self) -> None:
        """End a reaper that watches nothing (the child :meth:`prepare` was for did not start)."""
        with self._lock:
            if not self._watched:
                self._close()

    def watch(self, pid: int, *, group: bool) -> None:
        """Stop process group ``pid`` (``group``) or process ``pid`` if fwbench dies first."""
        key = ("g" if group else "p", pid)
        with self._lock:
            self._watched.add(key)
            try:
                self._say(f"+{key[0]} {pid}\n")
            except BaseException:
                self._watched.discard(key)
                if not self._watched:
                    self._close()
                raise

    def forget(self, pid: int, *, group: bool) -> None:
        """``pid`` was stopped and reaped: no longer watched (the reaper ends with the last)."""
        key = ("g" if group else "p", pid)
        with self._lock:
            if key not in self._watched:
                return
            self._watched.discard(key)
            line = f"-{key[0]} {pid}\n"
            if self._watched:
                with contextlib.suppress(OSError):
                    self._say(line)
            else:
                self._send(line)
                self._close()  # nothing left to watch: the reaper exits at once

    def _send(self, line: str) -> bool:
        """Write ``line`` to the running reaper; False when none runs (or it just died)."""
        proc = self._proc
        if proc is None or proc.poll() is not None or proc.stdin is None:
            return False
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def _say(self, line: str) -> None:
        """Write ``line``, starting a reaper first if none runs (it is told all that is watched)."""
        if not self._send(line):
            self._close()
            self._start()

    def _start(self) -> None:
        argv = [sys.executable, "-I", "-S", os.path.abspath(__file__)]
        argv += ["--grace", repr(self.grace), "--parent", str(os.getpid())]
        self._proc = proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,  # stderr stays ours: its one line goes where fwbench's do
            cwd="/",
            env={"PATH": os.defpath},
            start_new_session=True,
        )
        assert proc.stdin is not None
        proc.stdin.write("".join(f"+{kind} {pid}\n" for kind, pid in self._watched).encode())
        proc.stdin.flush()

    def _close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(EXIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


REAPER = Reaper()
"""This process's reaper (:mod:`loadgen.procs` tells it what to watch)."""


if __name__ == "__main__":
    sys.exit(main())
