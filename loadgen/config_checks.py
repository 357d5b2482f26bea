"""The semantic checks of a :class:`~loadgen.config.Config`, after the structural walk.

Each check names the dotted key and the reason (:class:`~loadgen.config.ConfigError`); the
ones that need the machine (CPUs that exist) read it here. :func:`loadgen.config.load_config`
and :meth:`~loadgen.config.Config.override` run :func:`check` on every config they return.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from loadgen.config import (
    LOCUST_SCENARIOS,
    MAX_MESSAGE_SIZE,
    MAX_SECONDS,
    MAX_STREAMS,
    MIN_RATE,
    RAW_SCENARIOS,
    Config,
    ConfigError,
    LoadSetting,
    Profile,
    Run,
    _ranges,
    available_cpus,
)


def check(cfg: Config) -> None:
    have = available_cpus()
    for side in ("server", "client"):
        cpus: tuple[int, ...] = getattr(cfg.cpus, side)
        if not cpus:
            raise ConfigError(f"cpus.{side}", "needs at least one CPU")
        for i, cpu in enumerate(cpus):
            if cpu not in have:
                raise ConfigError(
                    f"cpus.{side}[{i}]",
                    f"CPU {cpu} does not exist here (usable CPUs: {_ranges(have)})",
                )
    for i, cpu in enumerate(cfg.cpus.database):
        if cpu not in have:
            raise ConfigError(
                f"cpus.database[{i}]",
                f"CPU {cpu} does not exist here (usable CPUs: {_ranges(have)})",
            )
    _seconds("database.startup_timeout", cfg.database.startup_timeout, positive=True)
    if cfg.database.bindir and not Path(cfg.database.bindir).is_absolute():
        raise ConfigError("database.bindir", f"{cfg.database.bindir!r} must be an absolute path")
    both = set(cfg.cpus.server) & set(cfg.cpus.client)
    if both:
        raise ConfigError(
            "cpus.client", f"shares CPU {min(both)} with cpus.server; keep them apart"
        )
    s = cfg.server
    _check_workers(cfg)
    if not 0 <= s.port <= 65535:
        raise ConfigError("server.port", f"{s.port} is out of range 0..65535")
    if 0 < s.port < 1024:
        raise ConfigError("server.port", f"{s.port} is a privileged port; use 1024..65535 or 0")
    _seconds("server.startup_timeout", s.startup_timeout, positive=True)
    _seconds("server.stop_grace", s.stop_grace, positive=False)
    from loadgen.safety import check_host  # local: safety has no config dependency

    problem = check_host(s.host, cfg.network.allow_hosts)
    if problem:
        raise ConfigError("server.host", problem)
    for section in ("run", "nightly"):
        _check_run(getattr(cfg, section), section, cfg)
    c = cfg.check
    if not 0 < c.min_drop_pct <= 100:
        raise ConfigError("check.min_drop_pct", f"must be in (0, 100], got {c.min_drop_pct}")
    _positive("check.cost_min_change_pct", c.cost_min_change_pct)
    if c.cost_min_change_pct >= 100:
        raise ConfigError(
            "check.cost_min_change_pct", f"must be < 100, got {c.cost_min_change_pct}"
        )
    if not 0 < c.alpha < 1:
        raise ConfigError("check.alpha", f"must be between 0 and 1, got {c.alpha}")
    if not 0 < c.cp_max_pvalue < 1:
        raise ConfigError("check.cp_max_pvalue", f"must be between 0 and 1, got {c.cp_max_pvalue}")
    if c.min_trials < 2:
        raise ConfigError("check.min_trials", "must be at least 2")
    _positive("check.cp_window", c.cp_window)
    _positive("check.nights_held", c.nights_held)
    _seconds("check.bisect_budget", c.bisect_budget, positive=True)
    if c.bisect_trials < 2:
        raise ConfigError("check.bisect_trials", "must be at least 2 (7 or more to gate)")
    _check_envs(cfg)
    for i, pair in enumerate(c.pairs):
        if not pair.baseline or not pair.candidate:
            raise ConfigError(f"check.pairs[{i}]", "needs both baseline and candidate")
        if pair.baseline == pair.candidate:
            raise ConfigError(f"check.pairs[{i}].candidate", "is the same as the baseline")
    for i, ack in enumerate(c.acknowledge):
        if not ack.target:
            raise ConfigError(f"check.acknowledge[{i}].target", "is missing")
        if ack.metric not in ("rps", "p50", "cost"):
            raise ConfigError(f"check.acknowledge[{i}].metric", "must be 'rps', 'p50' or 'cost'")
        if ack.until and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", ack.until):
            raise ConfigError(f"check.acknowledge[{i}].until", "must be YYYY-MM-DD")
    k = cfg.cost
    for name in ("requests", "repeats", "startup_timeout", "request_timeout"):
        _positive(f"cost.{name}", getattr(k, name))
    _nonneg("cost.warmup", k.warmup)
    if not 0 <= k.interval_ms <= 60_000:
        raise ConfigError("cost.interval_ms", f"{k.interval_ms} is out of range 0..60000")
    if not 0 <= k.pace_factor <= 100:
        raise ConfigError("cost.pace_factor", f"{k.pace_factor} is out of range 0..100")
    if k.repeats < 2:
        raise ConfigError("cost.repeats", "must be at least 2 (the spread needs two windows)")
    if not k.valgrind.strip():
        raise ConfigError("cost.valgrind", "is empty; name the valgrind program")
    _check_profile(cfg.profile)
    _positive("sampler.interval", cfg.sampler.interval)
    if not 0.01 <= cfg.sampler.interval <= 60:
        raise ConfigError("sampler.interval", f"must be 0.01 to 60 s, got {cfg.sampler.interval}")
    _positive("sampler.uss_every", cfg.sampler.uss_every)
    if not 0 < cfg.sampler.saturation_pct <= 100:
        raise ConfigError(
            "sampler.saturation_pct", f"must be in (0, 100], got {cfg.sampler.saturation_pct}"
        )


def _check_workers(cfg: Config) -> None:
    """A worker count runs on its own CPUs (one each): a sweep larger than the CPUs it may use
    is refused here, before any environment is built or any load is sent."""
    workers, shared = cfg.server.workers, cfg.server.worker_cpus == "shared"
    if not workers or len(set(workers)) != len(workers):
        raise ConfigError("server.workers", "needs worker counts, each listed once")
    have = len(cfg.cpus.server) + (len(cfg.cpus.client) if shared else 0)
    for i, n in enumerate(workers):
        if not 1 <= n <= 4096:
            raise ConfigError(f"server.workers[{i}]", f"{n} is out of range 1..4096")
        if n > have:
            where = "cpus.server and cpus.client have" if shared else "cpus.server has"
            hint = "" if shared else (
                '; list more CPUs in cpus.server, or set server.worker_cpus = "shared" to '
                "let larger counts share the client's CPUs"
            )  # fmt: skip
            raise ConfigError(
                f"server.workers[{i}]",
                f"{n} workers need {n} server CPUs (one each) but {where} {have} "
                f"({len(available_cpus())} usable on this machine){hint}",
            )


def _check_envs(cfg: Config) -> None:
    e = cfg.envs
    for key, url in [("envs.index_url", e.index_url)] + [
        (f"envs.extra_index_urls[{i}]", u) for i, u in enumerate(e.extra_index_urls)
    ]:
        if url and not re.match(r"^(https?|file)://\S+$", url):
            raise ConfigError(key, f"{url!r} is not an http(s):// or file:// URL")
    for i, folder in enumerate(cfg.find_links()):
        if not folder.is_dir():
            raise ConfigError(f"envs.find_links[{i}]", f"{folder} is not a folder")
    if e.no_index and not e.find_links:
        raise ConfigError("envs.no_index", "needs envs.find_links: with no index, from where?")


def _check_profile(p: Profile) -> None:
    _seconds("profile.duration", p.duration, positive=True)
    _seconds("profile.warmup", p.warmup, positive=False)
    if not 1 <= p.rate <= 10_000:
        raise ConfigError("profile.rate", f"{p.rate} is out of range 1..10000 (samples/s)")
    if not 1 <= p.connections <= 100_000:
        raise ConfigError("profile.connections", f"{p.connections} is out of range 1..100000")
    if not p.py_spy.strip():
        raise ConfigError("profile.py_spy", "is empty; name the py-spy program")


def _check_run(run: Run, section: str, cfg: Config) -> None:
    _positive(f"{section}.trials", run.trials)
    if not run.channels:
        raise ConfigError(f"{section}.channels", 'is empty; list "pinned", "latest" or "pre"')
    if len(set(run.channels)) != len(run.channels):
        raise ConfigError(f"{section}.channels", "lists a channel twice")
    if not run.targets:
        raise ConfigError(f"{section}.targets", 'is empty; list target names or "all"')
    if not run.load:
        raise ConfigError(f"{section}.load", "needs at least one load setting")
    seen: set[str] = set()
    for i, ld in enumerate(run.load):
        k = f"{section}.load[{i}]"
        if ld.name in seen:
            raise ConfigError(f"{k}.name", f"{ld.name!r} is used twice")
        seen.add(ld.name)
        if not ld.connections:
            raise ConfigError(f"{k}.connections", "needs at least one connection count")
        for j, c in enumerate(ld.connections):
            if not 1 <= c <= 100_000:
                raise ConfigError(f"{k}.connections[{j}]", f"{c} is out of range 1..100000")
        _seconds(f"{k}.duration", ld.duration, positive=True)
        _seconds(f"{k}.warmup", ld.warmup, positive=False)
        _seconds(f"{k}.timeout", ld.timeout, positive=True)
        _positive(f"{k}.check_every", ld.check_every)
        _nonneg(f"{k}.procs", ld.procs)
        if ld.procs > len(cfg.cpus.client):
            raise ConfigError(
                f"{k}.procs", f"{ld.procs} processes but only {len(cfg.cpus.client)} client CPU(s)"
            )
        if ld.model == "open" and not ld.rate >= MIN_RATE:
            raise ConfigError(
                f"{k}.rate", f"the open model needs a rate >= {MIN_RATE:g} (requests/s)"
            )
        if ld.model == "closed" and ld.rate:
            raise ConfigError(f"{k}.rate", 'is only for model = "open"')
        _nonneg(f"{k}.users", ld.users)
        _nonneg(f"{k}.spawn_rate", ld.spawn_rate)
        _nonneg(f"{k}.locust_workers", ld.locust_workers)
        _nonneg(f"{k}.locust_external_workers", ld.locust_external_workers)
        if not 0 <= ld.locust_master_port <= 65535:
            raise ConfigError(f"{k}.locust_master_port", "is out of range 0..65535")
        if ld.client == "raw" and ld.scenario not in RAW_SCENARIOS:
            raise ConfigError(
                f"{k}.scenario",
                f"the raw client runs {', '.join(RAW_SCENARIOS)}; {ld.scenario} is locust's",
            )
        if ld.client == "locust" and ld.scenario not in LOCUST_SCENARIOS:
            raise ConfigError(
                f"{k}.scenario",
                f"the locust client runs {' and '.join(LOCUST_SCENARIOS)}; use the raw client",
            )
        if not 1 <= ld.queries <= 500:
            raise ConfigError(f"{k}.queries", f"{ld.queries} is out of range 1..500")
        _check_protocol(ld, k)


def _check_protocol(ld: LoadSetting, k: str) -> None:
    """HTTP/2 and ws-echo: the raw client only; streams with HTTP/2 only; ws-echo over
    HTTP/1.1 only (its upgrade is an HTTP/1.1 request)."""
    if ld.client == "locust" and ld.protocol != "http1":
        raise ConfigError(
            f"{k}.protocol",
            f"the locust client speaks HTTP/1.1 only; {ld.protocol} needs the raw client",
        )
    if not 1 <= ld.streams <= MAX_STREAMS:
        raise ConfigError(f"{k}.streams", f"{ld.streams} is out of range 1..{MAX_STREAMS}")
    if ld.streams > 1 and ld.protocol == "http1":
        raise ConfigError(
            f"{k}.streams",
            f'{ld.streams} streams need HTTP/2 (protocol = "h2c" or "h2"); '
            "HTTP/1.1 has one request in flight per connection",
        )
    if ld.scenario == "ws-echo" and ld.protocol != "http1":
        raise ConfigError(
            f"{k}.protocol",
            f"ws-echo runs over HTTP/1.1 (its upgrade is an HTTP/1.1 request), not {ld.protocol}",
        )
    if not 1 <= ld.message_size <= MAX_MESSAGE_SIZE:
        raise ConfigError(
            f"{k}.message_size", f"{ld.message_size} is out of range 1..{MAX_MESSAGE_SIZE} (16 MiB)"
        )


def _positive(key: str, v: float) -> None:
    if not (v > 0 and math.isfinite(v)):
        raise ConfigError(key, f"must be > 0, got {v}")


def _nonneg(key: str, v: float) -> None:
    if not (v >= 0 and math.isfinite(v)):
        raise ConfigError(key, f"must be >= 0, got {v}")


def _seconds(key: str, v: float, positive: bool) -> None:
    """A duration or timeout: finite, > 0 (or >= 0), at most :data:`MAX_SECONDS`."""
    (_positive if positive else _nonneg)(key, v)
    if v > MAX_SECONDS:
        raise ConfigError(key, f"must be at most {MAX_SECONDS:g} s (a week), got {v}")
