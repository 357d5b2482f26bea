"""The schema room: every shape that crosses a file or a process, typed and versioned here.

Submodules:
- :mod:`loadgen.records.trial`: ``TrialRecord`` (``trials.jsonl``), ``Latency``, ``ProcStats``,
  error kinds.
- :mod:`loadgen.records.run`: ``RunHeader`` (``run.json``).
- :mod:`loadgen.records.result`: ``LoadResult``, what a load client measured (both clients).
- :mod:`loadgen.records.jsonl`: the one JSON-lines reader (a torn last line skipped with a
  warning, any other bad line refused naming the file and line) and ``RecordError``.
- :mod:`loadgen.records.samples`: the sampler's time series (``samples/<trial>.jsonl``).
- :mod:`loadgen.records.cost`: ``CostRecord`` (``cost.jsonl``): instructions per request
  counted under callgrind, one per target, and ``COST_LIMITS``, what that figure is not.
- :mod:`loadgen.records.profile`: ``ProfileRecord`` (``profiles.jsonl``): a profiled trial
  per target sampled by py-spy, and ``parse_collapsed``, the reader of its collapsed stacks.
- :mod:`loadgen.records.packages`: package sets and their diffs, channels and series names.
- :mod:`loadgen.records.bisect`: ``BisectRecord`` (``bisect.json``, ``fwbench.bisect/1``):
  which changed package reproduces a drop.

Readers and writers elsewhere import from here, never define a shape of their own.
"""

from loadgen.records.cost import (
    COST_FILE,
    COST_LIMITS,
    COST_SCHEMA,
    CostProcess,
    CostRecord,
    append_cost,
    read_costs,
    run_costs,
    spread_pct,
)
from loadgen.records.jsonl import RecordError, json_objects
from loadgen.records.profile import (
    PROFILE_FILE,
    PROFILE_SCHEMA,
    PROFILES_DIR,
    ProfileRecord,
    Stacks,
    append_profile,
    format_collapsed,
    parse_collapsed,
    read_profiles,
    run_profiles,
    stacks_path,
)
from loadgen.records.result import LoadResult, Window
from loadgen.records.run import (
    FINGERPRINT_KEYS,
    KNOWN_RUN_SCHEMAS,
    RUN_SCHEMA,
    RunHeader,
    read_header,
)
from loadgen.records.samples import ROLES, Role, RoleSample, Sample, cpu_pct_series, read_samples
from loadgen.records.samples import SCHEMA as SAMPLES_SCHEMA
from loadgen.records.trial import (
    ERROR_KINDS,
    KNOWN_SCHEMAS,
    LATENCY_KEYS,
    ROW_COLUMNS,
    SCHEMA,
    Latency,
    ProcStats,
    TrialRecord,
    TrialStatus,
    append_record,
    read_records,
    trial_row,
)

__all__ = [
    "COST_FILE",
    "COST_LIMITS",
    "COST_SCHEMA",
    "ERROR_KINDS",
    "FINGERPRINT_KEYS",
    "KNOWN_RUN_SCHEMAS",
    "KNOWN_SCHEMAS",
    "LATENCY_KEYS",
    "PROFILES_DIR",
    "PROFILE_FILE",
    "PROFILE_SCHEMA",
    "ROLES",
    "ROW_COLUMNS",
    "RUN_SCHEMA",
    "SAMPLES_SCHEMA",
    "SCHEMA",
    "CostProcess",
    "CostRecord",
    "Latency",
    "LoadResult",
    "ProcStats",
    "ProfileRecord",
    "RecordError",
    "Role",
    "RoleSample",
    "RunHeader",
    "Sample",
    "Stacks",
    "TrialRecord",
    "TrialStatus",
    "Window",
    "append_cost",
    "append_profile",
    "append_record",
    "cpu_pct_series",
    "format_collapsed",
    "json_objects",
    "parse_collapsed",
    "read_costs",
    "read_header",
    "read_profiles",
    "read_records",
    "read_samples",
    "run_costs",
    "run_profiles",
    "spread_pct",
    "stacks_path",
    "trial_row",
]
