"""The verifier's checks of HTTP/2 and WebSocket, and the quick check before every trial.

A target declaring ``h2c`` or ``h2`` (``protocols`` in target.toml) gets a verdict per protocol:
the hello path fetched over that protocol (:func:`loadgen.verify_h2.fetch_h2`: prior knowledge
on cleartext TCP, or TLS with ALPN ``h2``) must give the answer HTTP/1.1 gives: status 200, the
body and the Content-Type of the target's kind (HTTP/2 has no chunked framing, so framing is not
checked). A server that does not speak HTTP/2 there (``H2Refused``: it chose http/1.1 by ALPN,
answered the preface with HTTP/1.1, sent GOAWAY) fails for that protocol only. A target
declaring the ``ws-echo`` scenario is checked by :func:`loadgen.verify_ws.ws_echo_problem` (the
echo exact, text and binary, large and fragmented messages, ping, close handshake).

Each check runs on the server of its own command (``[commands]``): the server the hello checks
started when the command is the same, else a fresh one (started, checked, stopped here). A
target speaking ``h2`` gets the caller's certificate, else one made in a temporary folder.

The runner's quick check (:func:`quick_check`) asks a fresh trial server the trial's path over
the trial's protocol before any load: one answer, the same checks.
"""

from __future__ import annotations

import http.client
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadgen.envs import Env
from loadgen.launcher import LaunchError, LaunchOptions, Server, start
from loadgen.records.scenarios import H2_PROTOCOLS, WS_SCENARIOS
from loadgen.scenario_checks import content_type_problem, sampled_problem
from loadgen.targets import Target, TargetError
from loadgen.verify import Answer, check_answer, request_answer
from loadgen.verify_scenarios import ScenarioVerdict

ANSWER_CHECKS = ("status", "body", "content_type")
"""The checks of :func:`loadgen.verify.check_answer` an HTTP/2 answer must pass as HTTP/1.1's
does (framing, Date and Server are HTTP/1.1's own)."""
TIMEOUT_S = 5.0
"""For one HTTP/2 answer or the whole WebSocket check."""

Verdicts = tuple[tuple[str, ScenarioVerdict], ...]


def h2_answer(host: str, port: int, protocol: str, path: str) -> Answer:
    """One GET over HTTP/2 as the verifier's :class:`~loadgen.verify.Answer`; raises
    ``H2Refused`` (a ValueError) when the server does not speak HTTP/2 there, OSError."""
    from loadgen.verify_h2 import fetch_h2

    got = fetch_h2(host, port, protocol, path, f"{host}:{port}", TIMEOUT_S)
    return Answer(got.status, dict(got.headers), got.body, 0)


def answer_problem(target: Target, answer: Answer, scenario: str = "hello", n: int = 1) -> str:
    """Why ``answer`` is not the right one for ``scenario`` ("" when it is): hello by
    :func:`~loadgen.verify.check_answer`'s status, body and Content-Type; a scenario by
    :mod:`loadgen.scenario_checks`."""
    if scenario in ("hello", "browse"):
        bad = [c for c in check_answer(target, answer) if c.status == "fail"]
        return "; ".join(f"{c.name}: {c.reason}" for c in bad if c.name in ANSWER_CHECKS)
    if answer.status != 200:
        return f"status: status {answer.status}, expected 200"
    ctype = answer.headers.get("content-type", "")
    problem = content_type_problem(scenario, ctype) or sampled_problem(scenario, answer.body, n)
    return f"{scenario}: {problem}" if problem else ""


def h2_problem(target: Target, host: str, port: int, protocol: str) -> str:
    """Why ``protocol`` (h2c or h2) is not served right on the hello path ("" when it is)."""
    from loadgen.verify_h2 import H2Refused

    try:
        answer = h2_answer(host, port, protocol, target.hello_path)
    except H2Refused as exc:
        return f"does not speak {protocol}: {exc}"
    except OSError as exc:
        return f"{protocol}: {type(exc).__name__}: {exc}"
    problem = answer_problem(target, answer)
    return f"{protocol} answer: {problem}" if problem else ""


def ws_problem(target: Target, host: str, port: int, scenario: str = "ws-echo") -> str:
    """Why the WebSocket scenario is not served right ("" when it is)."""
    from loadgen.verify_ws import ws_echo_problem

    path = target.path_for(scenario)
    try:
        return ws_echo_problem(host, port, path, f"{host}:{port}", TIMEOUT_S) or ""
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def checks_of(target: Target) -> list[str]:
    """What this module checks of a target, in order: its HTTP/2 protocols, its WebSocket
    scenarios."""
    return [p for p in target.protocols if p in H2_PROTOCOLS] + [
        s for s, _ in target.scenarios if s in WS_SCENARIOS
    ]


def verify_protocols(
    target: Target, env: Env, server: Server, *, log_dir: Path, opts: LaunchOptions
) -> tuple[Verdicts, Verdicts]:
    """A verdict per HTTP/2 protocol the target declares, and per WebSocket scenario; each on
    ``server`` (the hello checks') when its command is the same, else on a fresh server of its
    own command. Never raises for a bad target."""
    todo = checks_of(target)
    if not todo:
        return (), ()
    protocols: list[tuple[str, ScenarioVerdict]] = []
    scenarios: list[tuple[str, ScenarioVerdict]] = []
    with _certified(target) as certified:
        for key in todo:
            is_ws = key in WS_SCENARIOS
            serving = certified.serving(key, "http1") if is_ws else certified.serving("hello", key)
            verdict = _check_on(serving, key, env, server, log_dir=log_dir, opts=opts)
            (scenarios if is_ws else protocols).append((key, verdict))
    return tuple(protocols), tuple(scenarios)


def _check_on(
    serving: Target, key: str, env: Env, server: Server, *, log_dir: Path, opts: LaunchOptions
) -> ScenarioVerdict:
    """``key``'s check on ``server`` if ``serving`` is its command, else on a fresh server."""
    own: Server | None = None
    if serving.command != server.target.command:
        try:
            own = start(serving, env, log_dir=log_dir, opts=_probing(opts, key))
        except LaunchError as exc:
            return ScenarioVerdict(False, f"start ({key} command): {exc.reason}")
        except TargetError as exc:  # a command naming a certificate that was not made
            return ScenarioVerdict(False, f"start ({key} command): {exc}")
    on = own or server
    try:
        if key in WS_SCENARIOS:
            problem = ws_problem(serving, opts.host, on.port, key)
        else:
            problem = h2_problem(serving, opts.host, on.port, key)
    finally:
        if own is not None:
            own.stop(opts.stop_grace)
    return ScenarioVerdict(not problem, problem)


def _probing(opts: LaunchOptions, key: str) -> LaunchOptions:
    """Launch options whose readiness probe speaks ``key``'s protocol (ws-echo: HTTP/1.1)."""
    from dataclasses import replace

    return replace(opts, protocol=key if key in H2_PROTOCOLS else "http1")


@contextmanager
def _certified(target: Target) -> Iterator[Target]:
    """``target`` with a certificate when a command of it needs one: the caller's (already
    set by the runner), else one made in a temporary folder for the checks."""
    if not target.needs_certificate() or target.certfile:
        yield target
        return
    from loadgen.tls import make_certificate

    with tempfile.TemporaryDirectory(prefix="fwbench-verify-tls-") as tmp:
        cert, key = make_certificate(Path(tmp))
        yield target.with_certificate(str(cert), str(key))


def quick_check(
    t: Target, server: Server, scenario: str = "hello", protocol: str = "http1", queries: int = 1
) -> str | None:
    """The fresh server's answer before any load, over the trial's protocol: status, body,
    Content-Type (a scenario's: :func:`loadgen.scenario_checks.sampled_problem`); ws-echo: the
    whole echo contract. None when right, else the problem."""
    if scenario in WS_SCENARIOS:
        return ws_problem(t, server.host, server.port, scenario) or None
    path = t.path_for(scenario, queries)
    n = queries if scenario == "queries" else 1
    if protocol in H2_PROTOCOLS:
        from loadgen.verify_h2 import H2Refused

        try:
            answer = h2_answer(server.host, server.port, protocol, path)
        except (H2Refused, OSError) as exc:
            return f"{protocol}: {type(exc).__name__}: {exc}"
        return answer_problem(t, answer, scenario, n) or None
    conn = http.client.HTTPConnection(server.host, server.port, timeout=TIMEOUT_S)
    try:
        answer = request_answer(conn, path)
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    if scenario in ("hello", "browse"):
        bad = [c for c in check_answer(t, answer) if c.status == "fail"]
        return "; ".join(f"{c.name}: {c.reason}" for c in bad) or None
    return answer_problem(t, answer, scenario, n) or None
