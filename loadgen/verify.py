"""The verifier: build, start, check and stop each target, with a verdict per check.

Checks are adapted from TechEmpower's verification rules (see ../shared/notes/targets.md): the
status, the body (JSON exactly; HTML text after normalising), the Content-Type for the kind,
Content-Length or chunked framing, Date and Server headers, a Date that is not cached, two
requests on one connection (keep-alive), and the template taking the message from the code.
Each check is ``pass``, ``warn`` or ``fail`` with a reason; a target is ok when none failed.

Then every HTTP/2 protocol and WebSocket scenario the target declares, each on the server of
its own command (:mod:`loadgen.verify_protocols`), and, on the hello server, every scenario the
target declares (:mod:`loadgen.verify_scenarios`):
a target that declares one reading the database is started with a scenario database (a fresh
SQLite file in a temporary folder unless the caller passes one). Scenario verdicts are apart
from ``ok`` (the hello verdict): a target failing a scenario is failed for that scenario only.
"""

from __future__ import annotations

import http.client
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from loadgen.checks import MESSAGE, body_problem, content_type_problem, html_text
from loadgen.db import create_sqlite
from loadgen.envs import BuildOutcome, Env, EnvError, build_one
from loadgen.launcher import DEFAULT_LAUNCH, LaunchError, LaunchOptions, Server, start
from loadgen.targets import Target
from loadgen.verify_scenarios import (
    ScenarioDatabase,
    ScenarioVerdict,
    needs_database,
    sqlite_database,
    unchecked,
    verify_scenarios,
)

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Verdict:
    target: str
    framework: str
    framework_version: str
    server: str
    server_version: str
    python: str
    kind: str
    ok: bool
    checks: tuple[Check, ...]
    startup_s: float | None = None
    idle_rss_bytes: int | None = None
    keepalive: bool | None = None
    packages: tuple[tuple[str, str], ...] = ()
    env_size_bytes: int | None = None
    env_build_s: float | None = None
    log_tail: str = ""
    left_processes: tuple[int, ...] = field(default=())
    # scenario -> verdict: the declared ones (ok True/False) and the not-applicable (ok None)
    scenarios: tuple[tuple[str, ScenarioVerdict], ...] = ()
    # HTTP/2 protocol -> verdict: each of h2c and h2 the target declares (protocols)
    protocols: tuple[tuple[str, ScenarioVerdict], ...] = ()

    def protocol_ok(self, name: str) -> bool | None:
        """``http1``: :attr:`ok`; a declared HTTP/2 protocol: its verdict; else None."""
        if name == "http1":
            return self.ok
        return dict(self.protocols).get(name, ScenarioVerdict(None)).ok

    def protocol_failure(self, name: str) -> str:
        """Why ``name`` failed verification ("" when it did not)."""
        return dict(self.protocols).get(name, ScenarioVerdict(None)).reason

    def scenario_ok(self, name: str) -> bool | None:
        """``hello``: :attr:`ok`; a declared scenario: its verdict; else None (not applicable
        or not declared)."""
        if name == "hello":
            return self.ok
        return dict(self.scenarios).get(name, ScenarioVerdict(None)).ok

    @property
    def scenario_failures(self) -> list[tuple[str, str]]:
        return [(name, v.reason) for name, v in self.scenarios if v.ok is False]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "server": self.server,
            "server_version": self.server_version,
            "python": self.python,
            "kind": self.kind,
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "startup_s": self.startup_s,
            "idle_rss_bytes": self.idle_rss_bytes,
            "keepalive": self.keepalive,
            "packages": [{"name": n, "version": v} for n, v in self.packages],
            "package_count": len(self.packages),
            "env_size_bytes": self.env_size_bytes,
            "env_build_s": self.env_build_s,
            "log_tail": self.log_tail,
            "left_processes": list(self.left_processes),
            "scenarios": {name: v.to_dict() for name, v in self.scenarios},
        } | ({"protocols": {p: v.to_dict() for p, v in self.protocols}} if self.protocols else {})


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    local_port: int  # the client side of the connection it came on


def request_answer(conn: http.client.HTTPConnection, path: str) -> Answer:
    conn.request("GET", path, headers={"Accept": "*/*", "User-Agent": "fwbench-verify"})
    assert conn.sock is not None
    local = conn.sock.getsockname()[1]
    resp = conn.getresponse()
    body = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    return Answer(resp.status, headers, body, local)


def check_answer(target: Target, first: Answer) -> list[Check]:
    """Checks on one answer: status, body, Content-Type, framing, Date and Server headers."""
    checks: list[Check] = []
    if first.status == 200:
        checks.append(Check("status", "pass", "200"))
    else:
        checks.append(Check("status", "fail", f"status {first.status}, expected 200"))
    problem = body_problem(target.kind, first.body)
    if problem:
        checks.append(Check("body", "fail", problem))
    elif target.kind == "html" and html_text(first.body.decode()) != MESSAGE:
        checks.append(Check("body", "warn", "message found inside the framework's page chrome"))
    else:
        checks.append(Check("body", "pass", ""))
    ctype = first.headers.get("content-type")
    problem = content_type_problem(target.kind, ctype)
    if problem:
        checks.append(Check("content_type", "fail", problem))
    elif target.kind == "html" and "charset" not in (ctype or "").lower():
        checks.append(Check("content_type", "warn", f"{ctype!r} names no charset"))
    else:
        checks.append(Check("content_type", "pass", str(ctype)))
    te = first.headers.get("transfer-encoding", "").lower()
    if "content-length" in first.headers:
        checks.append(Check("framing", "pass", "Content-Length"))
    elif "chunked" in te:
        checks.append(Check("framing", "pass", "chunked"))
    else:
        checks.append(Check("framing", "fail", "neither Content-Length nor chunked"))
    for name in ("date", "server"):
        if first.headers.get(name):
            checks.append(Check(f"{name}_header", "pass", first.headers[name]))
        else:
            checks.append(Check(f"{name}_header", "warn", f"no {name.title()} header"))
    return checks


def check_keepalive(target: Target, host: str, port: int, date_gap: float = 1.1) -> list[Check]:
    """Two requests on one connection, ``date_gap`` apart: keep-alive and a fresh Date."""
    conn = http.client.HTTPConnection(host, port, timeout=5.0)
    checks: list[Check] = []
    try:
        a = request_answer(conn, target.hello_path)
        closing = a.headers.get("connection", "").lower() == "close"
        time.sleep(date_gap)
        try:
            if closing or conn.sock is None:
                raise ConnectionError("the server sent Connection: close")
            b = request_answer(conn, target.hello_path)
            reused = b.local_port == a.local_port and b.status == 200
            why = "" if reused else "second answer came on a new connection"
        except (OSError, http.client.HTTPException) as exc:
            reused, why, b = False, f"second request on the connection failed: {exc}", None
        if reused:
            checks.append(Check("keepalive", "pass", "two answers on one connection"))
        elif not target.keepalive:
            checks.append(Check("keepalive", "warn", f"no keep-alive (declared): {why}"))
        else:
            checks.append(Check("keepalive", "fail", why))
        if b is None:
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5.0)
            b = request_answer(conn, target.hello_path)
        da, db = a.headers.get("date"), b.headers.get("date")
        if da and db and da == db:
            checks.append(Check("fresh_date", "warn", f"Date {da!r} unchanged after {date_gap} s"))
        elif da and db:
            checks.append(Check("fresh_date", "pass", ""))
    finally:
        conn.close()
    return checks


def check_template(target: Target) -> Check:
    """Static: the template must not carry the message; the code passes it in."""
    if target.kind == "json":
        return Check("template", "pass", "JSON target: no template")
    path = target.dir / target.template
    text = path.read_text(encoding="utf-8", errors="replace")
    if MESSAGE.lower() in text.lower() or "hello world" in text.lower():
        return Check("template", "fail", f"{target.template} contains the message literally")
    return Check("template", "pass", f"{target.template} takes the message from the code")


def verify_target(
    target: Target,
    envs_dir: Path,
    *,
    log_dir: Path,
    opts: LaunchOptions = DEFAULT_LAUNCH,
    built: BuildOutcome | None = None,
    database: ScenarioDatabase | None = None,
) -> Verdict:
    """Start, check, stop; never raises for a bad target.

    ``built``: the environment already built (or failed) by :func:`loadgen.envs.build_all`;
    without it, the environment is built (or reused) here. ``database``: the scenario database
    the server is started with when the target declares a database scenario; without it, a
    fresh SQLite one in a temporary folder. The verifier changes ``world`` and undoes it.
    """
    if not needs_database(target):
        return _verify(target, envs_dir, log_dir=log_dir, opts=opts, built=built, database=None)
    if database is not None:
        return _verify(target, envs_dir, log_dir=log_dir, opts=opts, built=built, database=database)
    with tempfile.TemporaryDirectory(prefix="fwbench-verify-db-") as tmp:
        made = sqlite_database(create_sqlite(Path(tmp) / "scenarios.sqlite"))
        return _verify(target, envs_dir, log_dir=log_dir, opts=opts, built=built, database=made)


def _verify(
    target: Target,
    envs_dir: Path,
    *,
    log_dir: Path,
    opts: LaunchOptions,
    built: BuildOutcome | None,
    database: ScenarioDatabase | None,
) -> Verdict:
    if database is not None:  # replaces any database the options name (a run's, say)
        others = tuple((k, v) for k, v in opts.extra_env if not k.startswith("FWBENCH_DB_"))
        opts = replace(opts, extra_env=(*others, *database.env))
    checks: list[Check] = [check_template(target)]
    scenarios = unchecked(target, "the server did not start")
    protocols: tuple[tuple[str, ScenarioVerdict], ...] = tuple(
        (p, ScenarioVerdict(False, "not checked: the server did not start"))
        for p in target.protocols
        if p != "http1"
    )
    env: Env | None = None
    server: Server | None = None
    tail = ""
    left: tuple[int, ...] = ()
    try:
        if built is None:
            built = build_one(target, envs_dir)
        if built.env is None:
            raise EnvError(built.error, built.detail)
        env = built.env
        checks.append(Check("environment", "pass", "reused" if env.cached else "built"))
        server = start(target, env, log_dir=log_dir, opts=opts)
        checks.append(Check("start", "pass", f"answered after {server.startup_s:.2f} s"))
        scenarios = unchecked(target, "the hello checks stopped on a connection error")
        conn = http.client.HTTPConnection(opts.host, server.port, timeout=5.0)
        try:
            checks.extend(check_answer(target, request_answer(conn, target.hello_path)))
        finally:
            conn.close()
        checks.extend(check_keepalive(target, opts.host, server.port))
        if target.scenarios:
            scenarios = verify_scenarios(target, opts.host, server.port, database)
        from loadgen.verify_protocols import verify_protocols  # it imports this module

        protocols, ws = verify_protocols(target, env, server, log_dir=log_dir, opts=opts)
        scenarios = _merged(scenarios, ws)
        if not server.alive():
            checks.append(Check("alive", "fail", "server exited during the checks"))
    except EnvError as exc:
        checks.append(Check("environment", "fail", str(exc)))
        tail = exc.detail
    except LaunchError as exc:
        checks.append(Check("start", "fail", exc.reason))
        tail = exc.log_tail
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        checks.append(Check("request", "fail", f"{type(exc).__name__}: {exc}"))
    finally:
        if server is not None:
            report = server.stop(opts.stop_grace)
            left = report.left
            if report.left:
                checks.append(Check("stop", "fail", f"processes left after stop: {report.left}"))
            elif report.signal == "SIGKILL":
                checks.append(Check("stop", "warn", "did not exit on SIGTERM; killed"))
            else:
                checks.append(Check("stop", "pass", f"exited on SIGTERM in {report.stop_s:.2f} s"))
            failed = any(c.status == "fail" for c in checks)
            bad = any(v.ok is False for _, v in (*scenarios, *protocols))
            if (failed or bad) and not tail:
                tail = server.log_tail()
    ok = not any(c.status == "fail" for c in checks)
    keep = next((c for c in checks if c.name == "keepalive"), None)
    return Verdict(
        target=target.name,
        framework=target.framework,
        framework_version=env.version_of(target.framework_package) if env else "",
        server=target.server + (f" ({target.server_worker})" if target.server_worker else ""),
        server_version=env.version_of(target.server_package) if env else "",
        python=env.python_version if env else target.python,
        kind=target.kind,
        ok=ok,
        checks=tuple(checks),
        startup_s=server.startup_s if server and server.startup_s else None,
        idle_rss_bytes=server.idle_rss_bytes if server and server.idle_rss_bytes else None,
        keepalive=(keep.status == "pass") if keep else None,
        packages=env.packages if env else (),
        env_size_bytes=env.size_bytes if env else None,
        env_build_s=env.build_s if env else None,
        log_tail=tail,
        left_processes=left,
        scenarios=scenarios,
        protocols=protocols,
    )


def _merged(
    scenarios: tuple[tuple[str, ScenarioVerdict], ...],
    checked: tuple[tuple[str, ScenarioVerdict], ...],
) -> tuple[tuple[str, ScenarioVerdict], ...]:
    """``scenarios`` with the verdicts checked elsewhere (WebSocket ones) put in their place."""
    done = dict(checked)
    return tuple((name, done.get(name, v)) for name, v in scenarios)


def verify_all(
    targets: list[Target],
    envs_dir: Path,
    *,
    log_dir: Path,
    opts: LaunchOptions = DEFAULT_LAUNCH,
    on_done: Callable[[int, int, Verdict], None] | None = None,
) -> list[Verdict]:
    out: list[Verdict] = []
    for i, t in enumerate(targets, 1):
        v = verify_target(t, envs_dir, log_dir=log_dir, opts=opts)
        out.append(v)
        if on_done:
            on_done(i, len(targets), v)
    return out
