"""The psutil sampler: the target's process tree and the client's processes, off the target's CPUs.

Theory of operation
-------------------
While a trial runs, a process of its own (a thread would take the GIL from a load client running
in the fwbench process), pinned to the client's CPUs, never the target's, samples two roles every
``interval``: ``target`` (the server's process tree) and ``client`` (the fwbench process and its
descendants, without the target's tree and without the sampler). Each sample is a JSON line of
cumulative counters (CPU, context switches) and instant readings (RSS, USS, threads, processes)
in the trial's samples file. Afterwards the samples are summarised over the measured window.

The package has one module per side of that story:
- :mod:`loadgen.sampler.handle`: fwbench's side. :class:`SamplerProcess` starts the process,
  waits for its first sample, stops it (bounded) and reads the file back.
- :mod:`loadgen.sampler.child`: the process itself (``python -m loadgen.sampler <config>``):
  finding each role's processes, reading ``/proc`` cheaply, writing the samples; its docstring
  says what it costs and what it cannot see.
- :mod:`loadgen.sampler.summary`: pure functions from samples to a trial's figures
  (:func:`summarize`, :func:`is_saturated`); no I/O, no processes.

The samples format, its reader and the per-interval CPU % formula live in the schema room,
:mod:`loadgen.records.samples`, shared with the report.
"""

from loadgen.sampler.handle import SamplerError, SamplerProcess
from loadgen.sampler.summary import CLIENT_SATURATED_PCT, Summary, is_saturated, summarize

__all__ = [
    "CLIENT_SATURATED_PCT",
    "SamplerError",
    "SamplerProcess",
    "Summary",
    "is_saturated",
    "summarize",
]
