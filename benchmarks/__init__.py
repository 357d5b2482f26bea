"""The tools that measure the tool: benchmarks of fwbench itself, out of the production packages.

Nothing here runs in a benchmark run of targets; these measure the instrument and the report,
and make the synthetic data their tests use:

- :mod:`benchmarks.calibrate` (``fwbench calibrate``): the raw client against wrk on a fast
  reference server, with :mod:`~benchmarks.calibrate_reference` (the server),
  :mod:`~benchmarks.calibrate_trials` (the trials, the noise, the open-loop check) and
  :mod:`~benchmarks.calibrate_report` (medians, ratios, the text).
- :mod:`benchmarks.locust_compare` (``python -m benchmarks.locust_compare``): the raw client and
  locust side by side on this machine.
- :mod:`benchmarks.synthrun` and :mod:`benchmarks.synthetic`: seeded synthetic run directories
  and nightly histories (for the report tests and the history gate's measured behaviour).
- :mod:`benchmarks.bench_render`: how long ``fwbench report`` takes on a big run.

benchmarks may import loadgen and analysis; nothing in loadgen or analysis imports benchmarks.
"""
