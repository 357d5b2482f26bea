"""``fwbench calibrate --protocol h2c``'s pure parts: h2load's summary read, medians, text."""

from __future__ import annotations

import math

import pytest

from benchmarks.calibrate_reference import CalibrateError
from benchmarks.calibrate_report import render, summarize
from benchmarks.calibrate_trials import Trial, parse_h2load

H2LOAD_OUT = """\
starting benchmark...
spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 2s of \
main duration for measurements.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 51234.50 req/s, 4.21MB/s
requests: 102469 total, 102509 started, 102469 done, 102400 succeeded, 69 failed, 0 errored, \
0 timeout
status codes: 102400 2xx, 0 3xx, 0 4xx, 69 5xx
traffic: 8.42MB (8825678) total, 1.06MB (1107852) headers (space savings 92.61%), 6.20MB \
(6500000) data
                     min         max         mean         sd        +/- sd
time for request:       45us      5.31ms       773us       212us    81.02%
time for connect:      118us       180us       151us        26us    50.00%
time to 1st byte:      398us       512us       451us        47us    50.00%
req/s           :   12784.86    12836.06    12808.63       21.82    50.00%
"""


def test_h2loads_summary_is_read() -> None:
    seconds, good, bad, mean_ms = parse_h2load(H2LOAD_OUT)
    assert (seconds, good, bad) == (2.0, 102400, 69)
    assert mean_ms == pytest.approx(0.773)
    with pytest.raises(CalibrateError, match="cannot read h2load"):
        parse_h2load("connect: Connection refused\n")


def trial(client: str, streams: int, rnd: int, rps: float, cpu_s: float) -> Trial:
    return Trial(
        client=client,
        connections=8,
        round=rnd,
        requests=int(rps),
        seconds=1.0,
        rps=rps,
        p50_ms=1.0,
        p99_ms=float("nan") if client == "h2load" else 2.0,
        cpu_s=cpu_s,
        cpu_us_per_request=cpu_s * 1e6 / rps,
        errors=0,
        streams=streams,
    )


def test_medians_per_connections_and_streams_side_by_side() -> None:
    trials = [
        trial("raw", 1, 1, 1000, 0.5),
        trial("h2load", 1, 1, 2000, 0.25),
        trial("raw", 10, 1, 3000, 1.0),
        trial("h2load", 10, 1, 3000, 0.5),
        trial("raw", 10, 2, 5000, 1.0),
        trial("h2load", 10, 2, 4000, 0.5),
    ]
    rows = summarize(trials, [8], [1, 10], "h2load")
    assert [(r["connections"], r["streams"]) for r in rows] == [(8, 1), (8, 10)]
    assert rows[0]["rps_ratio"] == 0.5 and rows[0]["raw"]["rps_per_cpu"] == 2000
    assert rows[0]["h2load"]["rps_per_cpu"] == 8000
    assert rows[1]["raw"]["rps"] == 4000 and rows[1]["rps_ratio_range"] == [1.0, 1.25]
    assert math.isnan(rows[1]["h2load"]["p99_ms"])
    report = {
        "reference": "h2load",
        "server": "nginx/1.22.1",
        "server_cpus": "0",
        "client_cpu": 1,
        "duration": 1.0,
        "warmup": 0.5,
        "repeat": 2,
        "trials": [t.__dict__ for t in trials],
        "summary": rows,
        "open_loop": None,
        "others_cpu_pct_median": 0.0,
        "notes": [],
    }
    text = render(report)
    assert "h2load req/CPU-s" in text and "8x10" in text and "no percentiles" in text
