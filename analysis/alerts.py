"""What a check tells: acknowledgements, de-duplication, regressions.json, a Markdown alert, and
the webhook.

- **Acknowledge** (``check.acknowledge`` in bench.toml): a finding for that target and metric
  is still reported, marked with the reason, but neither fails the check nor alerts.
- **De-duplicate**: every alert is recorded in the history database's alert table under a key
  (:attr:`analysis.gate.Finding.key`); a finding whose key is there already, or (history gate)
  whose change point lies within a few nights of an alerted one, is *known*: it still fails
  the check, but it is not announced again.
- **What changed**: a history finding carries what differs between the last night before its
  change and the first night after it (:mod:`analysis.explain`): the packages of the series
  with their versions before and after, the suite's commit and the machine when they differ,
  and one line saying so (``explained``), or that nothing did: then it is the machine or noise.
  regressions.json, the Markdown alert (a line under each table) and the webhook carry it.
- **Webhook**: when ``FWBENCH_WEBHOOK_URL`` is set, new alerts are recorded as ``pending`` and
  every pending alert is POSTed as one JSON body, signed with HMAC-SHA256 of the body under
  ``FWBENCH_WEBHOOK_SECRET`` in the ``X-Fwbench-Signature-256: sha256=<hex>`` header. A
  delivery that fails leaves them pending for the next check; it never changes the exit
  status. The URL and the secret are read from the environment only and never written into
  any report or the database (error messages are scrubbed of both).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from analysis.gate import LABELS, SAME_CHANGE_NIGHTS, Finding
from analysis.history import AlertRow, History, NewAlert, now_iso
from loadgen.config import Ack

URL_ENV = "FWBENCH_WEBHOOK_URL"
SECRET_ENV = "FWBENCH_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Fwbench-Signature-256"
WEBHOOK_TIMEOUT_S = 10.0
PAYLOAD_SCHEMA = "fwbench.alerts/1"
REGRESSIONS_SCHEMA = "fwbench.regressions/1"

EXIT_CLEAN, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2


# --- acknowledgements ------------------------------------------------------------------------


def acknowledge(findings: Sequence[Finding], acks: Sequence[Ack], today: date) -> list[Finding]:
    """Findings with ``acknowledged`` set where an unexpired acknowledgement matches."""
    out = []
    for f in findings:
        reason = ""
        for a in acks:
            if a.target == f.target and a.metric == f.metric and _active(a, today):
                reason = a.reason or "acknowledged"
                if a.until:
                    reason += f" (until {a.until})"
                break
        out.append(replace(f, acknowledged=reason) if reason else f)
    return out


def _active(a: Ack, today: date) -> bool:
    return not a.until or today <= date.fromisoformat(a.until)


# --- de-duplication --------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    """The alerts of one check: which are new, and when the known ones were first seen."""

    new: frozenset[str]  # keys of findings announced for the first time
    known: Mapping[str, str]  # finding key -> first_seen of the alert it repeats


def match_known(
    f: Finding, existing: Sequence[AlertRow], positions: Mapping[str, int] | None = None
) -> AlertRow | None:
    """The recorded alert this finding repeats, if any.

    Within a run: the same key. History: an alert of the same series and metric whose change
    point lies within :data:`analysis.gate.SAME_CHANGE_NIGHTS` of this one (``positions`` maps
    the series' run ids to their night index).
    """
    for a in existing:
        if a.key == f.key:
            return a
    if f.gate != "history" or positions is None:
        return None
    here = positions.get(f.change_run_id)
    if here is None:
        return None
    for a in existing:
        if a.gate != "history" or a.series != f.series or a.metric != f.metric:
            continue
        there = positions.get(a.change_run_id)
        if there is not None and abs(there - here) <= SAME_CHANGE_NIGHTS:
            return a
    return None


def register(
    history: History,
    findings: Sequence[Finding],
    *,
    deliver: bool,
    positions: Mapping[str, Mapping[str, int]] | None = None,
) -> Registered:
    """Record the alerting findings; returns which are new. ``positions``: per series."""
    new_alerts: list[NewAlert] = []
    known: dict[str, str] = {}
    for f in findings:
        if not f.alerts:
            continue
        existing = history.alerts(fingerprint=f.fingerprint, series=f.series, metric=f.metric)
        hit = match_known(f, existing, (positions or {}).get(f.series))
        if hit is not None:
            known[f.key] = hit.first_seen
            continue
        new_alerts.append(
            NewAlert(
                key=f.key,
                gate=f.gate,
                series=f.series,
                metric=f.metric,
                fingerprint=f.fingerprint,
                change_run_id=f.change_run_id,
                change_date=f.change_date,
                payload=finding_dict(f),
            )
        )
    added = history.add_alerts(new_alerts, deliver=deliver)
    return Registered(frozenset(added), known)


# --- outputs ---------------------------------------------------------------------------------


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as regressions.json and the webhook carry it."""
    d = f.to_dict()
    if f.gate == "within":
        d["trials"] = {"baseline": f.n_before, "candidate": f.n_after}
    else:
        d["nights"] = {"before": f.n_before, "after": f.n_after}
    d["metric_label"] = LABELS.get(f.metric, f.metric)
    return d


def exit_status(findings: Sequence[Finding], problems: Sequence[str]) -> int:
    """1 when a regression alerts (even with problems elsewhere), else 2 on problems, else 0."""
    if any(f.alerts for f in findings):
        return EXIT_REGRESSION
    return EXIT_ERROR if problems else EXIT_CLEAN


def regressions_document(
    findings: Sequence[Finding],
    problems: Sequence[str],
    reg: Registered,
    *,
    context: Mapping[str, Any],
    delivery: str,
) -> dict[str, Any]:
    """The content of regressions.json."""
    status = exit_status(findings, problems)

    def entry(f: Finding) -> dict[str, Any]:
        d = finding_dict(f)
        d["new"] = f.key in reg.new
        d["first_alerted"] = reg.known.get(f.key, "")
        return d

    return {
        "schema": REGRESSIONS_SCHEMA,
        "checked_at": now_iso(),
        "status": {0: "clean", 1: "regression", 2: "error"}[status],
        "exit_code": status,
        **dict(context),
        "regressions": [entry(f) for f in findings if f.alerts],
        "acknowledged": [entry(f) for f in findings if f.regression and f.acknowledged],
        "reported": [entry(f) for f in findings if not f.regression or not f.alerting],
        "problems": list(problems),
        "webhook": delivery,
    }


def _num(v: float, metric: str) -> str:
    if metric == "cost":
        return f"{v:,.0f} instr"
    return f"{v:,.0f}" if metric == "rps" else f"{v:,.3f} ms"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _row(f: Finding) -> str:
    who = f"{f.target} vs {f.baseline}" if f.gate == "within" else f.target
    evidence = f"{f.n_before} + {f.n_after} {f.unit}"
    gate = "within run" if f.gate == "within" else "history"
    # cost within a run: counts, not samples; the rule is the level against the measured spread
    p = "exact" if f.metric == "cost" and f.gate == "within" else _p(f.pvalue)
    return (
        f"| {who} | {f.load}, c{f.connections} | {LABELS.get(f.metric, f.metric)} | {gate} "
        f"| {_num(f.before, f.metric)} | {_num(f.after, f.metric)} | {f.change_pct:+.1f} % "
        f"| {p} | {evidence} | {f.change_date} |"
    )


def _why(findings: Sequence[Finding]) -> list[str]:
    """Under a table: what differs between the nights either side of each explained change."""
    lines = []
    for f in findings:
        e = f.explanation
        if e is not None:
            metric = LABELS.get(f.metric, f.metric)
            lines.append(
                f"- {f.series}, {metric}, nights {e.before_night} → {e.after_night}: {e.text}"
            )
    return [*lines, ""] if lines else []


_HEAD = (
    "| target | load | metric | gate | before | after | change | p-value | evidence | since |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def markdown(
    findings: Sequence[Finding],
    problems: Sequence[str],
    reg: Registered,
    *,
    context: Mapping[str, Any],
) -> str:
    """The Markdown alert: new regressions first, then known ones, acknowledged, problems."""
    status = exit_status(findings, problems)
    alerting = [f for f in findings if f.alerts]
    new = [f for f in alerting if f.key in reg.new]
    old = [f for f in alerting if f.key not in reg.new]
    acked = [f for f in findings if f.regression and f.acknowledged]
    quiet = [f for f in findings if f.alerting and not f.regression]
    p99 = [f for f in findings if not f.alerting]
    if status == EXIT_REGRESSION:
        title = f"{len(alerting)} regression{'s' if len(alerting) != 1 else ''}"
        title += f" ({len(new)} new)" if old else ""
    elif status == EXIT_ERROR:
        title = "could not check everything"
    else:
        title = "no regression"
    lines = [f"# fwbench check: {title}", ""]
    where = ", ".join(f"{k} {v}" for k, v in context.items() if v not in (None, ""))
    if where:
        lines += [where, ""]
    if new:
        lines += ["## New", "", _HEAD, *map(_row, new), "", *_why(new)]
    if old:
        lines += ["## Still there (alerted before)", "", _HEAD, *map(_row, old), "", *_why(old)]
    if acked:
        lines += ["## Acknowledged", "", _HEAD, *map(_row, acked), "", *_why(acked)]
        lines += [f"- {f.target} {f.metric}: {f.acknowledged}" for f in acked] + [""]
    if problems:
        lines += ["## Not checked", ""] + [f"- {p}" for p in problems] + [""]
    if quiet:
        lines += ["## Checked, no alert", "", _HEAD, *map(_row, quiet), ""]
    if p99:
        lines += [
            "## p99 latency (reported, never alerted: too noisy)",
            "",
            _HEAD,
            *map(_row, p99),
            "",
        ]
    if status == EXIT_CLEAN:
        checked = len([f for f in findings if f.alerting])
        lines += [f"{checked} comparison{'s' if checked != 1 else ''} checked, none got worse.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_outputs(out_dir: Path, document: Mapping[str, Any], text: str) -> tuple[Path, Path]:
    """Write regressions.json and regressions.md (each through a temporary file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "regressions.json", out_dir / "regressions.md")
    for path, body in zip(paths, (json.dumps(document, indent=2) + "\n", text), strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(path)
    return paths


# --- the webhook -----------------------------------------------------------------------------


class DeliveryError(RuntimeError):
    pass


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, secret: str, header: str) -> bool:
    """For receivers (and tests): whether ``header`` signs ``body`` under ``secret``."""
    return hmac.compare_digest(sign(body, secret), header)


def post(url: str, body: bytes, secret: str, *, timeout: float = WEBHOOK_TIMEOUT_S) -> int:
    """POST ``body``; returns the HTTP status (2xx) or raises :class:`DeliveryError`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("webhook URL must be http:// or https:// with a host")
    headers = {"Content-Type": "application/json", "User-Agent": "fwbench"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DeliveryError(f"receiver answered HTTP {exc.code}") from None
    except OSError as exc:  # URLError and timeouts are OSErrors
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"could not reach the receiver: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"receiver answered HTTP {status}")
    return status


@dataclass(frozen=True)
class Delivery:
    configured: bool
    sent: int = 0
    pending: int = 0
    error: str = ""

    def describe(self) -> str:
        if not self.configured:
            return f"not configured ({URL_ENV} is not set)"
        if self.error:
            return f"{self.pending} alert(s) kept for the next check: {self.error}"
        return f"sent {self.sent} alert(s)" if self.sent else "nothing new to send"


def webhook_configured(env: Mapping[str, str] | None = None) -> bool:
    return bool((os.environ if env is None else env).get(URL_ENV, "").strip())


def deliver_pending(
    history: History,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = WEBHOOK_TIMEOUT_S,
) -> Delivery:
    """POST every pending alert in one body; on failure they stay pending (retried next time)."""
    env = os.environ if env is None else env
    url = env.get(URL_ENV, "").strip()
    if not url:
        return Delivery(configured=False)
    secret = env.get(SECRET_ENV, "")
    pending = history.alerts(delivery="pending")
    if not pending:
        return Delivery(configured=True)
    body = json.dumps(
        {
            "schema": PAYLOAD_SCHEMA,
            "sent_at": now_iso(),
            "host": socket.gethostname(),
            "alerts": [dict(a.payload, first_seen=a.first_seen) for a in pending],
        },
        sort_keys=True,
    ).encode()
    keys = [a.key for a in pending]
    try:
        post(url, body, secret, timeout=timeout)
    except DeliveryError as exc:
        error = _scrub(str(exc), url, secret)
        history.mark_failed(keys, error)
        return Delivery(configured=True, pending=len(keys), error=error)
    history.mark_sent(keys)
    return Delivery(configured=True, sent=len(keys))


def _scrub(text: str, *secrets: str) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "<redacted>")
    return text
