"""Scenario ``hello``: every user GETs the hello path again and again, with no wait.

The comparison's test: the same request as the raw client's, made by locust's users.
"""

from __future__ import annotations

from locust import constant, task

from loadgen.locustfiles.common import FwbenchUser, settings


class HelloUser(FwbenchUser):
    wait_time = constant(0)

    @task
    def hello(self) -> None:
        self.get_checked(settings.path)
