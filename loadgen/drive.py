"""One trial's load, by the client its setting names: the raw client or locust.

The runner (:mod:`loadgen.runner`) starts the server and the sampler; a drive here builds the
client's spec from the trial's plan (the setting, the connection count, the target's path for
the scenario, the protocol), runs the load and returns a :class:`Driven`, or a string saying why
the client could not run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadgen.config import Config
from loadgen.launcher import Server
from loadgen.records import LoadResult
from loadgen.records.scenarios import WS_SCENARIOS

if TYPE_CHECKING:
    from loadgen.runner import TrialPlan


@dataclass(frozen=True)
class Driven:
    """What one client's drive of a trial gave: its result and how it was set up."""

    result: LoadResult  # both clients return one
    settings: dict[str, Any]
    client_cpus: int  # CPUs the client could use: the base of its saturation share
    one_process_full: bool = False
    workers_finished: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def drive_raw(
    cfg: Config, p: TrialPlan, server: Server, live: Callable[[int], None]
) -> Driven | str:
    """The raw client over the setting's protocol (HTTP/1.1, h2c, h2) or scenario (ws-echo)."""
    from loadgen.rawclient import LoadSpec, run_load

    ld = p.load
    cpus = cfg.cpus.client
    procs = ld.procs or len(cpus)
    spec = LoadSpec(
        host=server.host,
        port=server.port,
        path=p.target.path_for(ld.scenario, ld.queries),
        connections=p.connections,
        duration=ld.duration,
        warmup=ld.warmup,
        rate=ld.rate if ld.model == "open" else None,
        procs=procs,
        cpus=cpus,
        timeout=ld.timeout,
        kind=p.target.kind,
        check_every=ld.check_every,
        keepalive=p.target.keepalive,
        scenario=ld.scenario,
        queries=ld.queries if ld.scenario == "queries" else 1,
        protocol=ld.protocol,
        streams=ld.streams,
        message_size=ld.message_size,
        message_binary=ld.message_binary,
        server_name=None,  # h2: the TLS server name is the host (the certificate is not checked)
    )
    settings: dict[str, Any] = {
        "procs": procs,
        "cpus": list(cpus),
        "timeout": ld.timeout,
        "check_every": ld.check_every,
        "keepalive": p.target.keepalive,
        "path": spec.path,
    }
    if ld.scenario in WS_SCENARIOS:  # the record holds protocol, streams and message_size
        settings["message_binary"] = ld.message_binary
    # One client process uses one CPU at most: saturation is judged on the CPUs it can use.
    return Driven(run_load(spec, progress=live), settings, spec.client_cpus)


def drive_locust(
    cfg: Config, run_dir: Path, p: TrialPlan, server: Server, live: Callable[[int], None]
) -> Driven | str:
    """Locust (HTTP/1.1 only: the config refuses it other protocols and ws-echo)."""
    from loadgen.locust.client import LocustError, LocustSpec, run_locust

    ld = p.load
    cpus = cfg.cpus.client
    out_dir = run_dir / "locust" / p.trial_id.replace("/", "__")
    spec = LocustSpec(
        host=server.host,
        port=server.port,
        path=p.target.hello_path,
        scenario=ld.scenario,
        users=ld.users or p.connections,
        spawn_rate=ld.spawn_rate,
        duration=ld.duration,
        warmup=ld.warmup,
        workers=ld.locust_workers,
        cpus=cpus,
        kind=p.target.kind,
        check_every=ld.check_every,
        timeout=ld.timeout,
        out_dir=out_dir,
        allow_hosts=cfg.network.allow_hosts,
        expect_external_workers=ld.locust_external_workers,
        master_bind_port=ld.locust_master_port,
    )
    try:
        result, info = run_locust(spec, progress=live)
    except LocustError as exc:
        return f"locust ({exc.stage}): {exc.reason}"
    settings = {
        "users": spec.users,
        "spawn_rate": spec.spawn_rate,
        "locust_workers": info.workers_started,
        "cpus": list(cpus),
        "timeout": ld.timeout,
        "check_every": ld.check_every,
        "locust_outputs": str(out_dir.relative_to(run_dir)),
    }
    threshold = cfg.sampler.saturation_pct
    # A locust process is one gevent thread: it saturates at one core, whatever the set.
    full = any(proc.cpu_pct >= threshold for proc in info.processes if proc.local)
    return Driven(
        result,
        settings,
        spec.client_cpus,
        one_process_full=full,
        workers_finished=info.workers_finished if info.mode == "distributed" else None,
        extra={"locust": info.to_dict()},
    )
