"""What a locust process records for fwbench: error kinds, counters and raw latencies.

Locust rounds response times in its own stats (to about two significant digits), so the
comparison does not read them: :class:`Recorder` listens to locust's ``request`` event, which
carries the exact response time (milliseconds, a float) and the wall-clock start of every
request, and keeps what the raw client keeps. A request counts when its *start* falls in the
measured window ``[start, end)``; it is then either ``ok`` or one error of the raw client's
kinds (:data:`loadgen.http1.ERROR_KINDS`). Answers (``ok``, ``status``, ``body``) also put their
latency, as integer nanoseconds, in an ``array('q')`` that becomes an HDR histogram once the
window is over (:mod:`loadgen.hist`), exactly as in the raw client.

Pure: locust is not imported here, so the classification is testable in any process. Exception
types of locust and geventhttpclient are recognised by class name.
"""

from __future__ import annotations

import errno
import math
import resource
import socket
import time
import zlib
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from loadgen.hist import Histogram
from loadgen.http1 import ERROR_KINDS, ErrorKind

ANSWER_KINDS: frozenset[str] = frozenset({"status", "body"})
"""Error kinds that are answers (they have a latency), unlike transport errors."""


class CheckFailed(Exception):
    """An answer the scenario rejects (raised into locust's ``response.failure``)."""

    kind: ErrorKind = "body"


class BodyMismatch(CheckFailed):
    """A 2xx answer whose sampled body is not the hello message."""

    kind: ErrorKind = "body"


class StatusMismatch(CheckFailed):
    """An answer with another status than the scenario expects (e.g. 200 where 404 is due)."""

    kind: ErrorKind = "status"


_CONNECT_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}
)
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


def error_kind(exc: BaseException | None) -> ErrorKind | None:
    """The raw client's error kind for the exception of a locust request (None: ok).

    ``RetriesExceeded`` (geventhttpclient's wrapper for timeouts and broken pipes) is unwrapped.
    A locustfile's own ``response.failure("...")`` counts as ``body``: the answer came but was
    not accepted. Anything not recognised is ``reset`` when it is an OSError, else ``parse``.
    """
    for _ in range(4):
        if exc is None:
            return None
        if isinstance(exc, CheckFailed):
            return exc.kind
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "RetriesExceeded" in names:
            inner = getattr(exc, "original", None)
            if isinstance(inner, BaseException):
                exc = inner
                continue
            return "reset"
        return _kind_of(exc, names)
    return "reset"


def _kind_of(exc: BaseException, names: set[str]) -> ErrorKind:
    if "BadStatusCode" in names or "LocustBadStatusCode" in names:
        return "status"
    if "CatchResponseError" in names:
        return "body"
    if "Timeout" in names or isinstance(exc, TimeoutError):
        return "timeout"
    if "HTTPConnectionClosed" in names or "EmptyResponse" in names:
        return "reset"
    if "HTTPParseError" in names or isinstance(exc, zlib.error):
        return "parse"
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return "connect"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "reset"
    if isinstance(exc, OSError):
        if exc.errno in _CONNECT_ERRNOS:
            return "connect"
        if exc.errno == errno.ETIMEDOUT:
            return "timeout"
        return "reset"
    return "parse"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class ProcessReport:
    """What one locust process measured in its window (plain values: it crosses processes)."""

    role: str
    """``local`` (the one process of a local run) or ``worker``."""
    client_id: str
    hostname: str
    pid: int
    local: bool
    """Started by fwbench on this machine (its CPU counts against the client CPU set)."""
    counts: dict[str, int]
    """``ok`` and every error kind, zeros included."""
    hist: str
    cpu_s: float
    window_start: float
    window_end: float
    completed: int
    """Every request this process completed, warm-up and errors included."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessReport:
        counts = {k: int(v) for k, v in dict(data["counts"]).items()}
        return cls(
            role=str(data["role"]),
            client_id=str(data["client_id"]),
            hostname=str(data["hostname"]),
            pid=int(data["pid"]),
            local=bool(data["local"]),
            counts={k: counts.get(k, 0) for k in ("ok", *ERROR_KINDS)},
            hist=str(data["hist"]),
            cpu_s=float(data["cpu_s"]),
            window_start=float(data["window_start"]),
            window_end=float(data["window_end"]),
            completed=int(data["completed"]),
        )

    @property
    def answers(self) -> int:
        return self.counts["ok"] + sum(self.counts[k] for k in ANSWER_KINDS)

    @property
    def requests(self) -> int:
        """Requests of the window, answered or not (what locust counts as requests)."""
        return sum(self.counts.values())


@dataclass
class Recorder:
    """Listener of locust's ``request`` event: counters and latencies of the measured window."""

    start: float = math.inf
    end: float = math.inf
    completed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("ok", *ERROR_KINDS), 0))
    latencies: array[int] = field(default_factory=lambda: array("q"))
    cpu_start: float | None = None
    cpu_end: float | None = None

    def set_window(self, start: float, end: float) -> None:
        """Count requests whose wall-clock start is in ``[start, end)``."""
        self.start, self.end = start, end

    def on_request(
        self,
        response_time: float | None = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        self.completed += 1
        elapsed_ms = float(response_time or 0.0)
        began = start_time if start_time is not None else time.time() - elapsed_ms / 1000.0
        if not self.start <= began < self.end:
            return
        kind = error_kind(exception)
        if kind is None:
            self.counts["ok"] += 1
        else:
            self.counts[kind] += 1
            if kind not in ANSWER_KINDS:
                return
        self.latencies.append(int(elapsed_ms * 1_000_000))

    def mark_start(self) -> None:
        """Called at the window's start: CPU time so far."""
        self.cpu_start = _cpu_seconds()

    def mark_end(self) -> None:
        self.cpu_end = _cpu_seconds()

    @property
    def cpu_s(self) -> float:
        """CPU seconds of this process over the window (so far, when it is still open)."""
        if self.cpu_start is None:
            return 0.0
        end = self.cpu_end if self.cpu_end is not None else _cpu_seconds()
        return max(0.0, end - self.cpu_start)

    def report(
        self, role: str, client_id: str, hostname: str, pid: int, local: bool
    ) -> ProcessReport:
        hist = Histogram()
        hist.record_ns_bulk(self.latencies)
        return ProcessReport(
            role=role,
            client_id=client_id,
            hostname=hostname,
            pid=pid,
            local=local,
            counts=dict(self.counts),
            hist=hist.encode(),
            cpu_s=self.cpu_s,
            window_start=self.start if math.isfinite(self.start) else 0.0,
            window_end=self.end if math.isfinite(self.end) else 0.0,
            completed=self.completed,
        )


@dataclass(frozen=True)
class Merged:
    """The reports of every load process of a run, added up."""

    counts: dict[str, int]
    """``ok`` and every error kind, over all the processes."""
    hist: Histogram
    cpu_s_local: float
    """CPU seconds of the load processes that run on this machine."""

    @property
    def requests(self) -> int:
        """Requests of the window, answered or not (what locust counts as requests)."""
        return sum(self.counts.values())


def merge(reports: Iterable[ProcessReport]) -> Merged:
    """The reports added up (the rates and percentiles are :meth:`LoadResult.measured`'s)."""
    counts = dict.fromkeys(("ok", *ERROR_KINDS), 0)
    encoded = []
    cpu = 0.0
    for report in reports:
        for key, value in report.counts.items():
            counts[key] = counts.get(key, 0) + value
        if report.hist:
            encoded.append(report.hist)
        if report.local:
            cpu += report.cpu_s
    return Merged(counts=counts, hist=Histogram.merged(encoded), cpu_s_local=cpu)
