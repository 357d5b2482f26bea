"""One typed, validated configuration object, loaded from ``bench.toml``.

Theory of operation: the file is parsed with :mod:`tomllib`, then walked against the frozen
dataclasses below using their type hints. Every value is checked where it is read, so an error
names the dotted key (``run.load[0].connections``) and the reason, and nothing half-valid ever
reaches the rest of the suite. Checks that need the machine or the targets folder (CPUs that
exist, target names) run in :func:`load_config` after the structural walk. CLI flags override
values through :meth:`Config.override`, which re-runs the same checks.

Every number must be finite (TOML has ``nan`` and ``inf``; so has Python's ``float()`` for a
flag): the walk refuses them for every float key, and each key has its range (durations and
timeouts at most :data:`MAX_SECONDS`), so a bad value stops a run before any target is touched.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

MAX_SECONDS = 7 * 24 * 3600.0
"""The longest duration, warm-up or timeout anything accepts: a week."""
MIN_RATE = 0.001
"""The lowest open-loop rate, requests/s (one request in 1000 s)."""

ClientKind = Literal["raw", "locust"]
Channel = Literal["pinned", "latest", "pre"]  # as loadgen.records.packages.CHANNELS
LoadModel = Literal["closed", "open"]
Scenario = Literal["hello", "json", "db", "queries", "fortunes", "browse", "ws-echo"]
RAW_SCENARIOS = ("hello", "json", "db", "queries", "fortunes", "ws-echo")  # browse: locust only
Protocol = Literal["http1", "h2c", "h2"]  # as loadgen.records.scenarios.PROTOCOLS
MAX_STREAMS = 1000
"""The most concurrent HTTP/2 streams a load setting opens per connection."""
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
"""The largest ws-echo message, bytes (16 MiB)."""
LOCUST_SCENARIOS = ("hello", "browse")
DatabaseKind = Literal["sqlite", "postgres"]


class ConfigError(ValueError):
    """A bad bench.toml or flag: ``key`` is the dotted key, ``reason`` says what is wrong."""

    def __init__(self, key: str, reason: str, source: str = "bench.toml") -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class Paths:
    targets_dir: str = "targets"
    envs_dir: str = ".envs"
    reports_dir: str = "reports"
    history: str = "reports/history.sqlite"


@dataclass(frozen=True)
class Envs:
    """Where packages come from, for every environment build and every resolution (uv).

    ``find_links`` folders are taken from the config's folder when relative. ``no_index``:
    only the ``find_links`` folders (an offline mirror of wheels)."""

    index_url: str = ""  # empty: uv's default (PyPI, or UV_INDEX_URL)
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False


@dataclass(frozen=True)
class Cpus:
    """Disjoint CPU sets: the target's server runs on ``server``, clients on ``client``; a
    PostgreSQL database (``[database] kind = "postgres"``) on ``database``."""

    server: tuple[int, ...] = (0,)
    client: tuple[int, ...] = (1,)
    database: tuple[int, ...] = ()  # the PostgreSQL server's; empty: the server's CPUs


@dataclass(frozen=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port is picked for every start
    # Worker processes; a list is a sweep: each count is its own series ("<target>@w4" for all
    # but the first) on the first N CPUs of cpus.server (one CPU per worker).
    workers: tuple[int, ...] = (1,)
    # "own": a count needs that many CPUs in cpus.server (refused otherwise, before any load);
    # "shared": counts beyond cpus.server also take cpus.client's CPUs, sharing them with the
    # client (for a small machine; the report says which counts shared).
    worker_cpus: Literal["own", "shared"] = "own"
    startup_timeout: float = 60.0
    stop_grace: float = 5.0


@dataclass(frozen=True)
class Database:
    """The database of the db, queries and fortunes scenarios (made by the suite for a run).

    ``sqlite``: a file in the run folder, embedded in the target's process. ``postgres``: a
    private PostgreSQL cluster (``initdb`` into the run folder, a free loopback port, pinned to
    ``cpus.database``), stopped when the run ends; ``bindir`` holds its programs (``initdb``,
    ``postgres``), empty: the newest ``/usr/lib/postgresql/*/bin``."""

    kind: DatabaseKind = "sqlite"
    bindir: str = ""
    startup_timeout: float = 60.0  # initdb, start and data load of the PostgreSQL cluster


@dataclass(frozen=True)
class Network:
    """Hosts other than loopback that load may be sent to. Empty: loopback only."""

    allow_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadSetting:
    """One load setting of the matrix; a list of connection counts makes a sweep."""

    name: str = "default"
    client: ClientKind = "raw"
    model: LoadModel = "closed"
    scenario: Scenario = "hello"
    connections: tuple[int, ...] = (64,)
    rate: float = 0.0  # requests/s for the open model
    duration: float = 5.0
    warmup: float = 2.0
    procs: int = 0  # raw client processes; 0: one per client CPU
    timeout: float = 10.0
    check_every: int = 100  # body check on one answer in N
    queries: int = 20  # the queries scenario's ?n= (1..500)
    protocol: Protocol = "http1"  # h2c: HTTP/2 prior knowledge; h2: HTTP/2 over TLS (raw client)
    streams: int = 1  # concurrent streams per connection (h2c and h2 only)
    message_size: int = 64  # ws-echo: bytes per message (1..16 MiB)
    message_binary: bool = False  # ws-echo: binary messages instead of text
    users: int = 0  # locust users; 0: the connection count
    spawn_rate: float = 0.0  # locust users/s; 0: all at once
    locust_workers: int = 0  # 0: one local locust process; N: a master and N local workers
    locust_external_workers: int = 0  # workers joining from other machines (fwbench locust-worker)
    locust_master_port: int = 0  # the master's port for external workers; 0: locust's 5557


@dataclass(frozen=True)
class Run:
    targets: tuple[str, ...] = ("all",)
    trials: int = 3
    load: tuple[LoadSetting, ...] = (LoadSetting(),)
    cost: bool = False  # after the load matrix, a cost pass (instructions per request)
    # pinned: the committed lock; latest: requirements.in re-resolved to the newest releases
    # at run time (series "<target>@latest"); pre: pre-releases too ("<target>@pre")
    channels: tuple[Channel, ...] = ("pinned",)
    profile: bool = False  # after the load matrix, a profiled trial per target (py-spy)


@dataclass(frozen=True)
class Cost:
    """The cost pass: each target under callgrind, R windows of K requests (loadgen.cost)."""

    requests: int = 1000  # K: requests per counted window
    repeats: int = 3  # R: counted windows per fresh server
    warmup: int = 500  # requests with counting off before the first window
    startup_timeout: float = 300.0  # for the first good answer under valgrind
    request_timeout: float = 60.0  # for one answer under valgrind
    valgrind: str = "valgrind"  # the program (a path, or a name found on PATH)
    # A fixed pace for the counted requests: each starts this many ms after the previous one
    # started (0: as soon as the answer is in). Work a server does per second of wall-clock
    # time (timers, idle loop turns) then adds the same count on every server, however busy
    # the machine; set it above the slowest answer under callgrind (README, cost gate).
    interval_ms: float = 0.0
    pace_factor: float = 0.0  # > 0: pace each target at factor x its probed time (cost.py)


@dataclass(frozen=True)
class Profile:
    """The profiled trial: py-spy samples the server under load (loadgen.profile)."""

    duration: float = 10.0  # seconds of load while py-spy samples
    rate: int = 100  # samples per second (py-spy's default)
    connections: int = 64
    warmup: float = 2.0  # seconds of load before py-spy attaches
    gil: bool = True  # sample only the thread holding the GIL (idle pool threads left out)
    py_spy: str = "py-spy"  # "py-spy": the one beside fwbench's Python, else on PATH; or a path


@dataclass(frozen=True)
class Sampler:
    interval: float = 0.25
    uss_every: int = 8  # read USS (costly) on one sample in N
    saturation_pct: float = 90.0  # client CPU share at which a trial is flagged client_saturated


@dataclass(frozen=True)
class Pair:
    """A within-run comparison: ``candidate`` measured interleaved against ``baseline``."""

    baseline: str = ""
    candidate: str = ""


@dataclass(frozen=True)
class Ack:
    """A known change, silenced: no alert for this target and metric (until the date, if set)."""

    target: str = ""
    metric: str = "rps"
    reason: str = ""
    until: str = ""  # YYYY-MM-DD; empty: for good


@dataclass(frozen=True)
class Check:
    """Regression gates (see docs/regressions.md)."""

    min_drop_pct: float = 3.0  # both gates: smallest median drop (or change point) that alerts
    cost_min_change_pct: float = 1.0  # both gates: the rise in instructions/request to catch
    alpha: float = 0.01  # within-run gate: Welch's p-value, after correction across tests
    correction: Literal["holm", "bh"] = "holm"
    min_trials: int = 7  # within-run gate: trials per side
    pairs: tuple[Pair, ...] = ()
    cp_max_pvalue: float = 0.001  # history gate: E-Divisive t-test threshold
    cp_window: int = 50  # history gate: points per window
    nights_held: int = 3  # history gate: nights a drop must hold before it alerts
    acknowledge: tuple[Ack, ...] = ()
    auto_bisect: bool = False  # nightly: bisect the packages of a new history alert
    bisect_budget: float = 3600.0  # seconds all of one night's bisects may take
    bisect_trials: int = 7  # trials per side and per candidate environment in a bisect


@dataclass(frozen=True)
class Config:
    paths: Paths = field(default_factory=Paths)
    envs: Envs = field(default_factory=Envs)
    cpus: Cpus = field(default_factory=Cpus)
    server: Server = field(default_factory=Server)
    network: Network = field(default_factory=Network)
    database: Database = field(default_factory=Database)
    run: Run = field(default_factory=Run)
    sampler: Sampler = field(default_factory=Sampler)
    nightly: Run = field(default_factory=Run)  # the profile `fwbench nightly` runs
    check: Check = field(default_factory=Check)
    cost: Cost = field(default_factory=Cost)
    profile: Profile = field(default_factory=Profile)
    root: str = "."  # the folder bench.toml lives in; relative paths are taken from it

    def path(self, name: str) -> Path:
        """An absolute path for one of :class:`Paths`' entries."""
        value = getattr(self.paths, name)
        p = Path(value)
        return p if p.is_absolute() else Path(self.root) / p

    def find_links(self) -> tuple[Path, ...]:
        """``envs.find_links`` as absolute folders (relative ones from the config's folder)."""
        return tuple(
            p if p.is_absolute() else Path(self.root) / p for p in map(Path, self.envs.find_links)
        )

    def override(self, **changes: Any) -> Config:
        """A copy with dotted keys replaced (``run.trials=5``), validated like the file."""
        data = to_dict(self)
        for dotted, value in changes.items():
            parts = dotted.split(".")
            node = data
            for part in parts[:-1]:
                node = node[part]
            node[parts[-1]] = value
        root = data.pop("root")
        try:
            cfg = _build(Config, data, "")
        except ConfigError as exc:  # a flag's value, not bench.toml's
            raise ConfigError(exc.key, exc.reason, source="flag") from None
        return _finish(cfg, root, source="flag")


def to_dict(obj: Any) -> Any:
    """Plain dict/list form of a config object (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    return obj


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate ``bench.toml``; ``None`` means built-in defaults rooted at the cwd."""
    if path is None:
        return _finish(Config(), os.getcwd(), source="defaults")
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("(file)", f"{p} does not exist", source=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(syntax)", str(exc), source=p.name) from None
    try:
        cfg = _build(Config, raw, "")
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.reason, source=p.name) from None
    return _finish(cfg, str(p.resolve().parent), source=p.name)


# --- structural walk ------------------------------------------------------------------------

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _build(cls: type, table: Any, prefix: str) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(prefix or "(top)", f"expected a table, got {_tname(table)}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name != "root" or prefix}
    unknown = sorted(set(table) - names)
    if unknown:
        key = _join(prefix, unknown[0])
        near = _near(unknown[0], names)
        hint = f" (did you mean {near!r}?)" if near else ""
        raise ConfigError(key, f"unknown key{hint}; known keys: {', '.join(sorted(names))}")
    kwargs = {}
    for name in names:
        if name in table:
            kwargs[name] = _value(hints[name], table[name], _join(prefix, name))
    return cls(**kwargs)


def _value(hint: Any, value: Any, key: str) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, key)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(key, f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is tuple:
        item = get_args(hint)[0]
        if not isinstance(value, list):
            if item in (str, int) and isinstance(value, item) and not isinstance(value, bool):
                value = [value]  # a lone value where a list is expected
            else:
                raise ConfigError(key, f"expected a list, got {_tname(value)}")
        return tuple(_value(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"config field {key} uses a union")  # pragma: no cover - design guard
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {_tname(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected a whole number, got {_tname(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {_tname(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise ConfigError(key, "is too large a number") from None
        if not math.isfinite(number):
            raise ConfigError(key, f"must be a finite number, got {value}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {_tname(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {key}")  # pragma: no cover


# --- semantic checks ------------------------------------------------------------------------


def _finish(cfg: Config, root: str, source: str) -> Config:
    from loadgen.config_checks import check  # local: the checks import this module's types

    cfg = dataclasses.replace(cfg, root=root)
    try:
        check(cfg)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.reason, source=source) from None
    return cfg


def available_cpus() -> set[int]:
    return set(os.sched_getaffinity(0))


def check_target_names(cfg: Config, known: set[str], key: str = "run.targets") -> None:
    """Unknown target names are an error naming the key (needs the targets folder read)."""
    for i, name in enumerate(cfg.run.targets):
        if name == "all":
            continue
        if name not in known:
            near = _near(name, known)
            hint = f" (did you mean {near!r}?)" if near else ""
            raise ConfigError(f"{key}[{i}]", f"unknown target {name!r}{hint}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _tname(v: Any) -> str:
    return {list: "a list", dict: "a table", str: "a string", bool: "a boolean"}.get(
        type(v), type(v).__name__
    )


def _near(word: str, choices: set[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _ranges(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def parse_cpus(text: str) -> tuple[int, ...]:
    """``"0-2,5"`` -> ``(0, 1, 2, 5)``; raises ValueError on bad text."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    if not out:
        raise ValueError(f"no CPUs in {text!r}")
    return tuple(dict.fromkeys(out))
