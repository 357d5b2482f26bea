"""``fwbench run``'s engine: the matrix of targets × load settings × trials, one record each.

Order: for every load setting and connection count, trial k of every target runs before trial
k+1 of any (A B C A B C ...), so slow drift of the machine does not favour one target. Every
trial gets a fresh server pinned to the server CPUs; the client, the sampler and this process
stay on the client CPUs. Before the load, the fresh server's answer is checked (status, body,
Content-Type); a target that fails it, crashes or dies mid-trial is recorded as failed and the
run goes on. Records are appended as each trial ends, so Ctrl-C keeps every finished trial; the
``finally`` blocks stop the server and the sampler whatever happens.

Scenarios: a trial of scenario S requests the target's path for S (``queries``: ``path?n=N``,
N the setting's ``queries``); a target that does not declare S is recorded as not applicable
(status ``not_applicable``, the reason from its ``[not_applicable]``), never started. A run
with a db, queries or fortunes setting has a database, made before the first trial
(:meth:`Runner.start_database`): a SQLite file in ``<run>/db/`` or a private PostgreSQL cluster
(:mod:`loadgen.pgcluster`, sampled as the ``database`` role), stopped when the matrix ends,
also on Ctrl-C and errors; every server gets the ``FWBENCH_DB_*`` variables.

Signals are the caller's: ``fwbench`` (:mod:`commands.cli`) turns SIGTERM into Ctrl-C for every
phase; a library caller keeps its own policy (a handler can only be set in the main thread). A
process that dies without cleanup still leaves nothing running: every child is watched by
:mod:`loadgen.reaper`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from loadgen import machine
from loadgen.config import Config, LoadSetting, to_dict
from loadgen.db import Database, open_database
from loadgen.drive import Driven, drive_locust, drive_raw
from loadgen.envs import BuildOutcome, Env, build_all, index_args
from loadgen.launcher import LaunchError, LaunchOptions, Server, start
from loadgen.procs import pinned
from loadgen.records import (
    ERROR_KINDS,
    Latency,
    ProcStats,
    RunHeader,
    TrialRecord,
    append_record,
)
from loadgen.records.scenarios import DB_SCENARIOS, WS_SCENARIOS
from loadgen.targets import Target, TargetError
from loadgen.verify import Verdict, verify_target
from loadgen.verify_protocols import quick_check
from loadgen.verify_scenarios import ScenarioDatabase, run_database


@dataclass(frozen=True)
class TrialPlan:
    target: Target
    load: LoadSetting
    connections: int
    trial: int

    @property
    def trial_id(self) -> str:
        return f"{self.target.name}/{self.load.name}/c{self.connections}/t{self.trial}"


def plan(cfg: Config, targets: list[Target]) -> list[TrialPlan]:
    """The matrix in run order: interleaved across targets within each trial round."""
    out: list[TrialPlan] = []
    for load in cfg.run.load:
        for conns in load.connections:
            for k in range(1, cfg.run.trials + 1):
                out.extend(TrialPlan(t, load, conns, k) for t in targets)
    return out


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Progress:
    """Progress on stderr: current target and trial, live requests/s, time left."""

    total: int
    out: TextIO = sys.stderr
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_count: int = 0
    _last_t: float = 0.0

    def trial(self, p: TrialPlan, est_s: float) -> None:
        left = (self.total - self.done) * est_s
        print(
            f"[{self.done + 1}/{self.total}] {p.trial_id} (~{_clock(left)} left)",
            file=self.out,
            flush=True,
        )
        self._last_count, self._last_t = 0, time.monotonic()

    def live(self, count: int) -> None:
        now = time.monotonic()
        dt = now - self._last_t
        if dt >= 1.0:
            rps = (count - self._last_count) / dt
            self._last_count, self._last_t = count, now
            end = "\r" if self.out.isatty() else "\n"
            print(f"    {rps:10,.0f} requests/s", end=end, file=self.out, flush=True)

    def finished(self, rec: TrialRecord) -> None:
        self.done += 1
        if rec.status == "not_applicable":
            msg = f"    not applicable: {rec.failure}"
        elif rec.status == "ok":
            p99 = rec.latency_ms.p99 if rec.latency_ms else float("nan")
            sat = "  CLIENT SATURATED" if rec.client_saturated else ""
            errs = f"  errors {rec.error_count}" if rec.error_count else ""
            msg = f"    {rec.rps:,.0f} req/s  p99 {p99:.2f} ms{errs}{sat}"
        else:
            msg = f"    FAILED: {rec.failure}"
        print(msg.ljust(60), file=self.out, flush=True)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


class Runner:
    """One run: its folder, its header, the environments and verdicts of its targets."""

    def __init__(self, cfg: Config, targets: list[Target], *, run_dir: Path | None = None) -> None:
        self.cfg = cfg
        self.targets = targets
        self.run_id = run_dir.name if run_dir else new_run_id()
        self.run_dir = run_dir or cfg.path("reports_dir") / "runs" / self.run_id
        self.trials_path = self.run_dir / "trials.jsonl"
        self.machine = machine.fingerprint(cfg.cpus.server, cfg.cpus.client, Path(cfg.root))
        self.launch = LaunchOptions.from_config(cfg)
        self.builds: dict[str, BuildOutcome] = {}
        self.envs: dict[str, Env] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.header: RunHeader | None = None
        self.database: Database | None = None

    # -- run header ---------------------------------------------------------------------------

    def _write_header(self, **changes: Any) -> None:
        assert self.header is not None
        self.header = self.header.updated(**changes)
        self.header.write(self.run_dir)

    def mark_finished(self) -> None:
        """For a caller that ran only a pass (profile, cost) after :meth:`prepare`."""
        if self.header is not None:
            self._write_header(finished_at=now_iso(), interrupted=False)

    def mark_interrupted(self) -> None:
        if self.header is not None:
            self._write_header(interrupted=True, finished_at=now_iso())

    def execute(self) -> int:
        """Prepare, then run the matrix: 0, or 130 when interrupted (finished trials kept)."""
        try:
            self.prepare()
            self.run()
        except KeyboardInterrupt:
            self.mark_interrupted()
            return 130
        return 0

    def prepare(self, out: TextIO | None = None) -> None:
        """Create the run folder, build every environment once and verify every target once."""
        out = out or sys.stderr  # read now: a stream bound at import may be closed
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        self.trials_path.touch()
        unresolved = self._variants(out)
        self._certify()
        warnings = machine.warnings(self.machine)
        self.header = RunHeader(
            run_id=self.run_id,
            started_at=now_iso(),
            config=to_dict(self.cfg),
            machine=self.machine,
            machine_warnings=tuple(warnings),
            targets=tuple(t.to_dict() for t in self.targets),
        )
        self.header.write(self.run_dir)
        for w in warnings:
            print(f"fwbench: machine: {w}", file=out)

        def built(i: int, n: int, o: BuildOutcome) -> None:
            state = (
                f"FAILED: {o.error}"
                if o.env is None
                else ("cached" if o.env.cached else f"built in {o.env.build_s:.1f} s")
            )
            print(f"environment [{i}/{n}] {o.target}: {state}", file=out, flush=True)

        outcomes = build_all(
            [t for t in self.targets if t.name not in unresolved],
            self.cfg.path("envs_dir"),
            report=built,
            sources=index_args(self.cfg),
        )
        self.builds = {**unresolved, **{o.target: o for o in outcomes}}
        database = self._verify_database(out)
        for i, t in enumerate(self.targets, 1):
            v = verify_target(
                t,
                self.cfg.path("envs_dir"),
                log_dir=self.run_dir / "logs",
                opts=self.launch,
                built=self.builds[t.name],
                database=database,
            )
            self.verdicts[t.name] = v
            state = "ok" if v.ok else "FAILED: " + "; ".join(c.reason for c in v.failures)
            bad = [(n, sv.reason) for n, sv in v.protocols if sv.ok is False]
            if v.ok and bad:  # its HTTP/1.1 trials stand; those of these protocols fail
                state += "".join(f"; {n} FAILED: {why}" for n, why in bad)
            print(f"verify [{i}/{len(self.targets)}] {t.name}: {state}", file=out, flush=True)
            env = self.builds[t.name].env
            if v.ok and env is not None:
                self.envs[t.name] = env
        self._write_header(verdicts=tuple(v.to_dict() for v in self.verdicts.values()))

    def _variants(self, out: TextIO) -> dict[str, BuildOutcome]:
        """Every series of the targets (channels × interpreters × worker counts,
        :mod:`loadgen.variants`), their locks in ``locks/``; returns the series whose lock
        could not be resolved (their build failures)."""
        from loadgen.locks import LOCKS_DIR
        from loadgen.variants import expand

        def say(text: str) -> None:
            print(text, file=out, flush=True)

        found = expand(self.targets, self.cfg, self.run_dir / LOCKS_DIR, say)
        self.targets = list(found.targets)
        return found.failed

    def _certify(self) -> None:
        """The run's TLS certificate, made once in ``<run>/tls/`` when a target's command
        needs one (it speaks ``h2``), its paths given to those targets' ``{certfile}`` and
        ``{keyfile}``."""
        if not any(t.needs_certificate() for t in self.targets):
            return
        from loadgen.tls import make_certificate

        cert, key = make_certificate(self.run_dir / "tls", self.cfg.server.host)
        self.targets = [
            t.with_certificate(str(cert), str(key)) if t.needs_certificate() else t
            for t in self.targets
        ]

    # -- the matrix -----------------------------------------------------------------------------

    def run(self, out: TextIO | None = None) -> Path:
        out = out or sys.stderr  # read now: a stream bound at import may be closed
        trials = plan(self.cfg, self.targets)
        progress = Progress(len(trials), out)
        interrupted = False
        try:
            self._verify_database(out)  # made by prepare() already; again: nothing to do
            with pinned(self.cfg.cpus.client):
                for p in trials:
                    est = p.load.duration + p.load.warmup + 3.0
                    progress.trial(p, est)
                    rec = self.trial(p, progress.live)
                    append_record(self.trials_path, rec)
                    progress.finished(rec)
                if self.cfg.run.cost:
                    self.cost(out)
                if self.cfg.run.profile:
                    self.profile(out)
        except KeyboardInterrupt:
            interrupted = True
            print("\nfwbench: interrupted; finished trials are kept", file=out, flush=True)
            raise
        finally:
            self.stop_database(out)
            self._write_header(finished_at=now_iso(), interrupted=interrupted)
        return self.run_dir

    # -- the scenario database -------------------------------------------------------------------

    def start_database(self, out: TextIO | None = None) -> Database:
        """Make the run's database once (:func:`loadgen.db.open_database`); every server
        started from now on gets its ``FWBENCH_DB_*`` variables."""
        if self.database is None:
            self.database = open_database(self.cfg, self.run_dir / "db", out or sys.stderr)
            extra = tuple(self.launch.extra_env) + tuple(self.database.env.items())
            self.launch = replace(self.launch, extra_env=extra)
        return self.database

    def _verify_database(self, out: TextIO) -> ScenarioDatabase | None:
        """A run with database scenarios makes its database before verifying, so targets are
        verified against the engine they are measured on; else the verifier makes its own."""
        if not any(ld.scenario in DB_SCENARIOS for ld in self.cfg.run.load):
            return None
        return run_database(self.start_database(out))

    def stop_database(self, out: TextIO | None = None) -> None:
        """Stop the PostgreSQL cluster, if one runs (again: nothing to do)."""
        if self.database is not None:
            self.database.stop(out or sys.stderr)

    def _pass_targets(self) -> list[tuple[Target, Env | None, str]]:
        """A pass's work after the matrix: each target, its environment, or why it has none."""
        ok = {n for n, v in self.verdicts.items() if v.ok}
        return [(t, self.envs.get(t.name), "") if t.name in ok else
                (t, None, "verification failed") for t in self.targets]  # fmt: skip

    def cost(self, out: TextIO | None = None) -> None:
        """The cost pass after the matrix (``run.cost``): ``cost.jsonl``, one record a target."""
        out = out or sys.stderr  # read now: a stream bound at import may be closed
        from loadgen.cost import cost_pass
        from loadgen.records import COST_FILE, append_cost

        path = self.run_dir / COST_FILE
        path.touch()
        todo = self._pass_targets()

        def say(text: str) -> None:
            print(text, file=out, flush=True)

        cost_pass(
            self.cfg,
            todo,
            work_dir=self.run_dir,
            run_id=self.run_id,
            machine=self.machine,
            on_record=lambda rec: append_cost(path, rec),
            say=say,
        )

    def profile(self, out: TextIO | None = None) -> None:
        """The profile pass after the matrix (``run.profile``): a profiled trial per target,
        never ranked nor gated; ``profiles.jsonl`` and ``profiles/<target>.collapsed``."""
        out = out or sys.stderr  # read now: a stream bound at import may be closed
        from loadgen.profile import profile_pass
        from loadgen.records import PROFILE_FILE, append_profile

        path = self.run_dir / PROFILE_FILE
        path.touch()
        todo = self._pass_targets()
        profile_pass(
            self.cfg,
            todo,
            run_dir=self.run_dir,
            run_id=self.run_id,
            on_record=lambda rec: append_profile(path, rec),
            say=lambda text: print(text, file=out, flush=True),
        )

    def trial(self, p: TrialPlan, live: Callable[[int], None]) -> TrialRecord:
        t = p.target
        v = self.verdicts.get(t.name)
        env = self.envs.get(t.name)
        base = self._base(p, v)
        why_not = t.not_applicable_reason(p.load.scenario, p.load.protocol)
        if why_not:
            return replace(base, status="not_applicable", failure=why_not, database={})
        db = self.database if p.load.scenario in DB_SCENARIOS else None
        if db is not None and db.error:
            return self._failed(base, f"database: {db.error}")
        if db is not None and db.cluster is not None and not db.cluster.alive():
            code = db.cluster.proc.returncode
            return self._failed(base, f"database: the PostgreSQL server exited with code {code}")
        if v is None or not v.ok or env is None:
            why = "; ".join(c.reason for c in v.failures) if v else "not verified"
            return self._failed(base, f"verification failed: {why}")
        ld = p.load
        if v.protocol_ok(ld.protocol) is False:
            why = v.protocol_failure(ld.protocol)
            return self._failed(base, f"verification failed for {ld.protocol}: {why}")
        serving = t.serving(ld.scenario, ld.protocol)
        opts = replace(self.launch, protocol=ld.protocol)
        try:
            server = start(serving, env, log_dir=self.run_dir / "logs", opts=opts)
        except LaunchError as exc:
            return self._failed(base, f"start: {exc.reason}")
        except TargetError as exc:  # a command naming a certificate that was not made
            return self._failed(base, f"start: {exc}")
        try:
            problem = quick_check(serving, server, ld.scenario, ld.protocol, ld.queries)
            if problem:
                return self._failed(base, f"answer check: {problem}", startup_s=server.startup_s)
            return self._measure(p, server, base, live)
        finally:
            report = server.stop(self.launch.stop_grace)
            if report.left:  # never expected: say so loudly, the PIDs were killed by PID already
                print(f"fwbench: processes left after stop: {report.left}", file=sys.stderr)

    def _measure(
        self, p: TrialPlan, server: Server, base: TrialRecord, live: Callable[[int], None]
    ) -> TrialRecord:
        """Sample while the trial's client drives the server; assemble the record."""
        from loadgen.sampler import SamplerError, SamplerProcess, is_saturated, summarize

        client_cpus = self.cfg.cpus.client
        trial_name = p.trial_id.replace("/", "__")
        db = self.database if p.load.scenario in DB_SCENARIOS else None
        cluster = db.cluster if db is not None else None
        sampler = SamplerProcess(
            target_pid=server.proc.pid,
            client_pid=os.getpid(),
            out=self.run_dir / "samples" / (trial_name + ".jsonl"),
            interval=self.cfg.sampler.interval,
            uss_every=self.cfg.sampler.uss_every,
            cpus=client_cpus,
            database_pid=cluster.pid if cluster is not None else None,
        )
        try:
            sampler.start()
        except SamplerError as exc:
            return self._failed(base, f"sampler: {exc}", startup_s=server.startup_s)
        try:
            outcome = self._drive(p, server, live)
        except Exception as exc:  # one trial's fault must not end the run
            outcome = f"client: {type(exc).__name__}: {exc}"
        finally:
            samples = sampler.stop()
        if isinstance(outcome, str):
            return self._failed(base, outcome, startup_s=server.startup_s)
        result = outcome.result
        summary = summarize(samples, result.window_start, result.window_end, outcome.client_cpus)
        threshold = self.cfg.sampler.saturation_pct
        client_pct = summary.client_cpu_pct if samples else result.client_cpu_pct
        rec = replace(
            base,
            client_settings=outcome.settings,
            duration_s=result.duration_s,
            requests=result.requests,
            rps=result.rps,
            errors={k: int(result.errors.get(k, 0)) for k in ERROR_KINDS},
            reconnects=result.reconnects,
            late=result.late,
            latency_ms=result.latency_or_none,
            latency_uncorrected_ms=_some(result.latency_uncorrected),
            hist=result.hist,
            hist_uncorrected=result.hist_uncorrected or "",
            target_stats=summary.target,
            client_stats=summary.client,
            database_stats=summary.database,
            sampler_cpu_pct=summary.sampler_cpu_pct,
            cpu_s_per_1k=(summary.target_cpu_s / result.requests * 1000)
            if result.requests
            else None,
            client_cpu_pct=client_pct,
            client_saturated=is_saturated(client_pct, threshold) or outcome.one_process_full,
            other_cpu_pct=summary.other_cpu_pct,
            startup_s=server.startup_s,
            idle_rss_bytes=server.idle_rss_bytes,
            workers_finished=outcome.workers_finished,
            extra=outcome.extra,
        )
        if not server.alive():
            code = server.proc.returncode
            why = f"server exited with code {code} during the trial"
            return replace(rec, status="failed", failure=why)
        if result.requests == 0:
            return replace(rec, status="failed", failure="no good answer in the measured window")
        return rec

    def _drive(self, p: TrialPlan, server: Server, live: Callable[[int], None]) -> Driven | str:
        if p.load.client == "locust":
            return drive_locust(self.cfg, self.run_dir, p, server, live)
        return drive_raw(self.cfg, p, server, live)

    def _base(self, p: TrialPlan, v: Verdict | None) -> TrialRecord:
        """The trial's record before any measurement: what and how, nothing measured yet."""
        t, ld = p.target, p.load
        return TrialRecord(
            run_id=self.run_id,
            trial_id=p.trial_id,
            trial=p.trial,
            started_at=now_iso(),
            status="ok",
            failure="",
            target=t.name,
            framework=t.framework,
            framework_version=v.framework_version if v else "",
            server=t.server + (f" ({t.server_worker})" if t.server_worker else ""),
            server_version=v.server_version if v else "",
            python=v.python if v else t.python,
            kind=t.kind,
            keepalive=bool(v.keepalive) if v else t.keepalive,
            workers=t.workers or self.cfg.server.workers[0],
            client=ld.client,
            client_settings={},
            load=ld.name,
            scenario=ld.scenario,
            model=ld.model,
            protocol=ld.protocol,
            streams=ld.streams,
            message_size=ld.message_size if ld.scenario in WS_SCENARIOS else None,
            connections=p.connections,
            rate=ld.rate if ld.model == "open" else None,
            duration_s=0.0,
            warmup_s=ld.warmup,
            requests=0,
            rps=0.0,
            errors=dict.fromkeys(ERROR_KINDS, 0),
            reconnects=0,
            late=0,
            latency_ms=None,
            latency_uncorrected_ms=None,
            hist="",
            hist_uncorrected="",
            target_stats=None,
            client_stats=None,
            sampler_cpu_pct=None,
            cpu_s_per_1k=None,
            client_cpu_pct=None,
            client_saturated=False,
            other_cpu_pct=None,
            startup_s=None,
            idle_rss_bytes=None,
            machine=self.machine,
            database=dict(self.database.info)
            if self.database is not None and ld.scenario in DB_SCENARIOS
            else {},
        )

    @staticmethod
    def _failed(base: TrialRecord, why: str, startup_s: float | None = None) -> TrialRecord:
        return replace(base, status="failed", failure=why, startup_s=startup_s)


def _some(latency: Latency | None) -> Latency | None:
    return latency if latency is not None and latency.count else None


def override_loads(cfg: Config, **changes: Any) -> Config:
    """Apply CLI load flags (client, connections, rate, duration, warmup, protocol...) to every
    setting. ``protocol`` leaves ws-echo settings alone (a WebSocket runs over HTTP/1.1) and
    sets HTTP/1.1 settings to one stream per connection."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return cfg
    loads = []
    for ld in cfg.run.load:
        upd = dict(changes)
        if "rate" in upd:
            upd["model"] = "open" if upd["rate"] else "closed"
        if upd.get("scenario", ld.scenario) in WS_SCENARIOS:
            upd.pop("protocol", None)
        elif upd.get("protocol") == "http1":
            upd["streams"] = 1
        loads.append(replace(ld, **upd))
    return cfg.override(**{"run.load": [to_dict(ld) for ld in loads]})


__all__ = ["ProcStats", "Runner", "TrialPlan", "override_loads", "plan"]
