"""What a run leaves behind: the result file for fwbench, and locust's own CSV and HTML.

Imports locust: only for the processes of :mod:`loadgen.locust.driver`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.env import Environment
from locust.html import get_html_report
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter, stats_history

from loadgen.locust.protocol import RESULT_SCHEMA, count_in_window
from loadgen.locust.recording import ProcessReport
from loadgen.locust.shared import emit

log = logging.getLogger("fwbench.locust")


class Outputs:
    """Locust's own CSV files and HTML report, kept beside the run for users who know them."""

    def __init__(self, env: Environment, out_dir: str | None) -> None:
        self.env = env
        self.out_dir = out_dir
        self.prefix = os.path.join(out_dir, "locust") if out_dir else ""
        self.writer: StatsCSVFileWriter | None = None
        self.greenlets: list[gevent.Greenlet] = []
        if env.runner is not None:
            self.greenlets.append(gevent.spawn(stats_history, env.runner))
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            self.writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, self.prefix, True)
            self.greenlets.append(gevent.spawn(self.writer.stats_writer))

    def finish(self) -> tuple[list[str], str | None]:
        """Stop the writers and write the final files; (CSV paths, HTML path)."""
        gevent.killall(self.greenlets, block=True, timeout=5)
        if self.writer is None or not self.out_dir:
            return [], None
        self.writer.close_files()
        summary = StatsCSV(self.env, PERCENTILES_TO_REPORT)
        finals: list[tuple[str, Callable[[Any], None]]] = [
            ("_stats.csv", summary.requests_csv),
            ("_failures.csv", summary.failures_csv),
            ("_exceptions.csv", summary.exceptions_csv),
        ]
        for suffix, write in finals:
            with open(self.prefix + suffix, "w", newline="", encoding="utf-8") as fh:
                write(csv.writer(fh))
        html = os.path.join(self.out_dir, "locust.html")
        try:
            text = get_html_report(self.env, show_download_link=False)  # type: ignore[no-untyped-call]
        except Exception:  # the report is a courtesy: never lose the run for it
            log.exception("locust's HTML report failed")
            html_path = None
        else:
            with open(html, "w", encoding="utf-8") as fh:
                fh.write(text)
            html_path = html
        names = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv")
        return [self.prefix + n for n in names], html_path


def write_result(
    result_path: str,
    env: Environment,
    outputs: Outputs,
    reports: list[ProcessReport],
    *,
    mode: str,
    start: float,
    end: float,
    master_cpu_s: float,
    workers_started: int,
) -> None:
    """Finish locust's outputs, write the result file (atomically) and tell fwbench."""
    csvs, html = outputs.finish()
    total = env.stats.total
    offset = time.monotonic() - time.time()
    result = {
        "schema": RESULT_SCHEMA,
        "mode": mode,
        "window_start": start,
        "window_end": end,
        "window_start_monotonic": start + offset,
        "window_end_monotonic": end + offset,
        "reports": [r.to_dict() for r in reports],
        "master_cpu_s": master_cpu_s,
        "workers_started": workers_started,
        "workers_finished": len(reports) if mode == "distributed" else 0,
        "locust_requests": round(count_in_window(total.num_reqs_per_sec, start, end)),
        "locust_failures": round(count_in_window(total.num_fail_per_sec, start, end)),
        "locust_requests_total": int(total.num_requests),
        "csv": csvs,
        "html": html,
    }
    tmp = result_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, sort_keys=True)
    os.replace(tmp, result_path)
    emit("done", result=result_path)
