"""The profile pass: where a target's server spends its time under load, sampled by py-spy.

Theory of operation. For each target, after the measured trials (a profiled trial is never one
whose figures are ranked or gated: a sampler that reads the server's memory 100 times a second
costs it some speed), with the target's built environment:

1. a fresh server is started through the launcher, pinned to the server CPUs, as for a trial;
2. the raw client warms it up for ``warmup`` seconds (imports, caches, first-request paths);
3. ``py-spy record --pid <server> --subprocesses --rate <hz> --format raw --function
   --nonblocking`` attaches to the server's Python process and its children (gunicorn's
   workers too), on the client CPUs; once it says it samples, the raw client sends
   ``duration`` seconds of closed-loop load on ``connections`` connections;
4. py-spy is stopped with SIGINT (it writes its output then) and waited for; its collapsed
   stacks go to ``profiles/<target>.collapsed`` in the run folder, with the requests the
   window answered (so samples can be read per request), in a :class:`ProfileRecord`;
5. the server is stopped by process group.

``--nonblocking`` reads the process without pausing it (the samples of a stack being changed can
be torn; the server keeps its speed). ``--function`` merges the lines of one function into one
frame. ``--gil`` (``[profile] gil = true``, the default) keeps only the samples of the thread
holding the GIL: the Python work of the server. Without it, py-spy leaves out threads it sees
idle (an event loop in ``epoll``) but not the threads of a pool that wait on a queue: in a
gunicorn gthread worker (8 threads) two thirds of the samples were such waits, and their count
grows with the window's length, not with the work done per request. What ``--gil`` leaves out is
the time in C that released the GIL (socket calls, compression) and the kernel's.

Anything that goes wrong (py-spy missing, ptrace refused, the server crashing) becomes a record
with ``status = "failed"`` and the reason; the pass goes on with the next target.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psutil

from loadgen.config import Config
from loadgen.config import Profile as ProfileConfig
from loadgen.envs import Env
from loadgen.launcher import LaunchError, LaunchOptions, Server, start
from loadgen.passes import each_target
from loadgen.procs import child_env, forget, last_line, log_tail, pinned, spawn, stop_processes
from loadgen.records import (
    PROFILES_DIR,
    ProfileRecord,
    format_collapsed,
    parse_collapsed,
    stacks_path,
)
from loadgen.targets import Target

INSTALL_HINT = (
    "py-spy is not installed: `.venv/bin/pip install py-spy` (it is one of fwbench's "
    "dependencies), or set [profile] py_spy in bench.toml to its path"
)
ATTACH_TIMEOUT_S = 15.0
"""How long py-spy may take to attach and say it samples."""
STOP_TIMEOUT_S = 30.0
"""How long py-spy may take to write its output after SIGINT."""


@dataclass(frozen=True)
class ProfileSpec:
    duration: float = 10.0
    rate: int = 100
    connections: int = 64
    warmup: float = 2.0
    py_spy: str = "py-spy"
    gil: bool = True

    @classmethod
    def from_config(cls, p: ProfileConfig) -> ProfileSpec:
        return cls(p.duration, p.rate, p.connections, p.warmup, p.py_spy, p.gil)


@dataclass(frozen=True)
class Tool:
    path: str
    version: str


def find_py_spy(name: str = "py-spy") -> Tool | str:
    """py-spy (the one beside this Python first, for the default name), or why not."""
    found: str | None = None
    if name == "py-spy":
        beside = Path(sys.executable).with_name("py-spy")
        found = str(beside) if beside.exists() else shutil.which(name)
    else:
        found = shutil.which(name)
    if found is None:
        return f"{name}: not found; {INSTALL_HINT}"
    try:
        out = subprocess.run(
            [found, "--version"], capture_output=True, text=True, timeout=30, env=child_env()
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{found} does not run ({exc}); {INSTALL_HINT}"
    if out.returncode != 0:
        return f"{found} --version: {last_line(out.stderr) or f'exit status {out.returncode}'}"
    return Tool(found, out.stdout.strip() or "py-spy")


def py_spy_argv(tool: Tool, pid: int, spec: ProfileSpec, output: Path) -> list[str]:
    """The py-spy command for one server; it ends itself a minute after the window at most."""
    return [
        tool.path,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--rate",
        str(spec.rate),
        "--format",
        "raw",
        "--function",
        "--nonblocking",
        *(["--gil"] if spec.gil else []),
        "--duration",
        str(math.ceil(spec.duration + 60)),
        "--output",
        str(output),
    ]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def base_record(target: Target, env: Env | None, spec: ProfileSpec, run_id: str) -> ProfileRecord:
    """The record before anything is sampled (failed: "not profiled" until it is)."""
    return ProfileRecord(
        run_id=run_id,
        target=target.name,
        started_at=now_iso(),
        status="failed",
        error="not profiled",
        framework=target.framework,
        framework_version=env.version_of(target.framework_package) if env else "",
        server=target.server + (f" ({target.server_worker})" if target.server_worker else ""),
        server_version=env.version_of(target.server_package) if env else "",
        rate_hz=spec.rate,
        connections=spec.connections,
        warmup_s=spec.warmup,
        gil=spec.gil,
    )


def python_root(server: Server) -> int:
    """The PID py-spy attaches to: the server's leader when it runs Python, else its first
    Python descendant (a Rust server such as Granian runs Python in its workers)."""
    for proc in server.tree():
        with contextlib.suppress(psutil.Error):
            if "python" in Path(proc.exe()).name:
                return proc.pid
    return server.proc.pid


def profile_target(
    target: Target,
    env: Env | None,
    *,
    spec: ProfileSpec,
    launch: LaunchOptions,
    run_dir: Path,
    client_cpus: Sequence[int],
    run_id: str = "",
    tool: Tool | str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> ProfileRecord:
    """Profile one target on a fresh server; a failure is a failed record with the reason
    (never an exception, but KeyboardInterrupt, which stops the server and py-spy first)."""
    rec = base_record(target, env, spec, run_id)
    if tool is None:
        tool = find_py_spy(spec.py_spy)
    if isinstance(tool, str):
        return rec.failed(tool)
    rec = replace(rec, py_spy=tool.version)
    if env is None:
        return rec.failed("no environment (the build failed)")
    try:
        server = start(target, env, log_dir=run_dir / "logs", opts=launch)
    except LaunchError as exc:
        tail = last_line(exc.log_tail)
        return rec.failed(f"start: {exc.reason}" + (f" ({tail})" if tail else ""))
    try:
        with pinned(client_cpus):
            return _sample(server, target, tool, spec, run_dir, tuple(client_cpus), rec, say)
    finally:
        server.stop(launch.stop_grace)


def _sample(
    server: Server,
    target: Target,
    tool: Tool,
    spec: ProfileSpec,
    run_dir: Path,
    cpus: tuple[int, ...],
    rec: ProfileRecord,
    say: Callable[[str], None],
) -> ProfileRecord:
    from loadgen.rawclient import LoadSpec, run_load

    def load(duration: float) -> LoadSpec:
        return LoadSpec(
            host=server.host,
            port=server.port,
            path=target.hello_path,
            connections=spec.connections,
            duration=duration,
            warmup=0.0,
            procs=max(1, min(len(cpus), spec.connections)),
            cpus=cpus,
            kind=target.kind,
            keepalive=target.keepalive,
        )

    try:
        if spec.warmup > 0:
            warm = run_load(load(spec.warmup))
            if warm.requests == 0:
                return rec.failed(f"no good answer in the warm-up ({_errors(warm.errors)})")
            say(f"warm-up: {warm.requests:,} requests")
    except Exception as exc:  # the client's fault must not end the pass
        return rec.failed(f"warm-up: {type(exc).__name__}: {exc}")
    rel = stacks_path(target.name)
    out = run_dir / rel
    (run_dir / PROFILES_DIR).mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    log_path = out.with_suffix(".py-spy.log")
    pid = python_root(server)
    with open(log_path, "wb") as log:
        try:
            spy = spawn(
                py_spy_argv(tool, pid, spec, out),
                env=child_env(),
                cpus=cpus,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            return rec.failed(f"cannot start {tool.path}: {exc.strerror}")
    try:
        problem = _await_attach(spy, log_path)
        if problem:
            return rec.failed(f"py-spy --pid {pid}: {problem}")
        say(f"py-spy samples pid {pid} at {spec.rate} Hz")
        try:
            result = run_load(load(spec.duration))
        except Exception as exc:
            return rec.failed(f"load: {type(exc).__name__}: {exc}")
        pids = tuple(sorted(p.pid for p in server.tree()))
        code = _interrupt(spy)
    finally:
        if spy.poll() is None:
            stop_processes([spy])
    if not server.alive():
        return rec.failed(f"server exited with code {server.proc.returncode} during the profile")
    said = last_line(log_tail(log_path, 5))
    if code != 0:
        return rec.failed(f"py-spy exited with status {code}: {said}")
    try:
        stacks = parse_collapsed(out.read_text(encoding="utf-8"))
    except OSError:
        return rec.failed(f"py-spy wrote no stacks ({said})")
    except ValueError as exc:
        return rec.failed(f"py-spy's output is not collapsed stacks: {exc}")
    samples = sum(stacks.values())
    if samples == 0:
        return rec.failed(f"py-spy took no sample ({said})")
    if result.requests == 0:
        return rec.failed(f"no good answer in the profiled window ({_errors(result.errors)})")
    out.write_text(format_collapsed(stacks), encoding="utf-8")  # sorted: stable files
    log_path.unlink(missing_ok=True)
    return replace(
        rec,
        status="ok",
        error="",
        requests=result.requests,
        errors=sum(int(v) for v in result.errors.values()),
        samples=samples,
        duration_s=round(result.duration_s, 3),
        stacks=rel,
        pids=pids,
    )


def _errors(errors: dict[str, int]) -> str:
    shown = ", ".join(f"{k} {v}" for k, v in errors.items() if v)
    return f"errors: {shown}" if shown else "no errors"


def _await_attach(spy: subprocess.Popen[bytes], log_path: Path) -> str | None:
    """None once py-spy says it samples; else what it said when it gave up (or a timeout)."""
    deadline = time.monotonic() + ATTACH_TIMEOUT_S
    while time.monotonic() < deadline:
        if spy.poll() is not None:
            forget(spy)
            text = log_tail(log_path, 20)
            return last_line(text) or f"py-spy exited with status {spy.returncode}"
        if "Sampling process" in log_tail(log_path, 20):
            return None
        time.sleep(0.05)
    return f"py-spy did not start sampling within {ATTACH_TIMEOUT_S:g} s"


def _interrupt(spy: subprocess.Popen[bytes]) -> int | None:
    """SIGINT (py-spy writes its output then), wait for it; its exit status (None: killed)."""
    if spy.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            spy.send_signal(signal.SIGINT)
        try:
            spy.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop_processes([spy])
            return None
    forget(spy)
    return spy.returncode


# --- a pass over targets -----------------------------------------------------------------------


def profile_pass(
    cfg: Config,
    targets: Sequence[tuple[Target, Env | None, str]],
    *,
    run_dir: Path,
    run_id: str,
    spec: ProfileSpec | None = None,
    on_record: Callable[[ProfileRecord], None] = lambda _: None,
    say: Callable[[str], None] = lambda _: None,
) -> list[ProfileRecord]:
    """Profile every target in turn (``(target, env or None, why not)``), one server at a time."""
    spec = spec or ProfileSpec.from_config(cfg.profile)
    tool = find_py_spy(spec.py_spy)
    launch = LaunchOptions.from_config(cfg)
    return each_target(
        "profile",
        targets,
        measure=lambda target, env, tell: profile_target(
            target,
            env,
            spec=spec,
            launch=launch,
            run_dir=run_dir,
            client_cpus=cfg.cpus.client,
            run_id=run_id,
            tool=tool,
            say=tell,
        ),
        failed=lambda target, why: base_record(target, None, spec, run_id).failed(why),
        problem=lambda rec: "" if rec.ok else rec.error,
        on_record=on_record,
        say=say,
    )
