"""What every fwbench locustfile shares: the settings the driver fills in, and a FastHttpUser
that checks answers the way the raw client does (status on every answer, the body on one in
``check_every``), reporting a rejected answer with an exception that names its error kind.

Imports locust: only for the processes of :mod:`loadgen.locust.driver`.
"""

from __future__ import annotations

from dataclasses import dataclass

from locust import FastHttpUser
from locust.exception import StopUser

from loadgen.checks import Kind, body_ok
from loadgen.locust.recording import BodyMismatch, StatusMismatch


@dataclass
class Settings:
    """Set by the driver before any user starts (on a worker: from the master's setup)."""

    path: str = "/hello/"
    kind: Kind | None = None
    check_every: int = 100
    approved_host: str | None = None
    """The base URL that passed the load-safety check; users refuse to start on any other."""


settings = Settings()


class FwbenchUser(FastHttpUser):
    """A FastHttpUser that only loads the approved host and checks its answers."""

    abstract = True
    _answers = 0

    def on_start(self) -> None:
        if settings.approved_host is None or self.host != settings.approved_host:
            raise StopUser(f"host {self.host!r} was not approved for load")

    def get_checked(self, path: str, name: str | None = None) -> None:
        """GET ``path``; a 2xx answer is right, and its body is checked on one in check_every."""
        self._answers += 1
        kind = settings.kind
        if kind is None or self._answers % settings.check_every:
            self.client.get(path, name=name)
            return
        with self.client.get(path, name=name, catch_response=True) as resp:
            if 200 <= resp.status_code < 300 and not body_ok(kind, resp.content or b""):
                resp.failure(BodyMismatch(f"{path}: the body is not the hello message"))

    def get_expecting(self, path: str, status: int, name: str | None = None) -> None:
        """GET ``path`` where ``status`` is the right answer (e.g. 404 for a missing page)."""
        with self.client.get(path, name=name, catch_response=True) as resp:
            if resp.status_code == status:
                resp.success()
            elif resp.status_code:
                resp.failure(StatusMismatch(f"{path} answered {resp.status_code}, not {status}"))
