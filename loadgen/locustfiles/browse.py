"""Scenario ``browse``: what a user of a real app does, with think time between requests.

A weighted mix: the hello route (6), the same route with a query string (3), and a page that
does not exist (1), whose right answer is a 404 (counted as good; anything else is a
``status`` error). Hello answers, with or without the query string, are checked like the raw
client's: status on every answer, the body on one in ``check_every``.
"""

from __future__ import annotations

import random

from locust import between, task

from loadgen.locustfiles.common import FwbenchUser, settings

THINK_S = (0.2, 1.0)
"""Think time between two requests of a user, seconds (uniform)."""
MISSING_PATH = "/fwbench-no-such-page/"


class BrowsingUser(FwbenchUser):
    wait_time = between(*THINK_S)

    @task(6)
    def hello(self) -> None:
        self.get_checked(settings.path)

    @task(3)
    def hello_with_query(self) -> None:
        page = random.randint(1, 50)
        self.get_checked(f"{settings.path}?page={page}&q=fwbench", name=f"{settings.path}?page=[n]")

    @task(1)
    def missing_page(self) -> None:
        self.get_expecting(MISSING_PATH, 404, name="404 (expected)")
