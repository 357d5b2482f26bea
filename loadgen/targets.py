"""Target metadata: one folder per (framework, server) pair under ``targets/``.

Each folder holds ``target.toml`` (see docs/targets.md). :func:`discover` reads them all; a
folder whose metadata is missing or malformed is returned as a :class:`Skipped` with the reason
instead of stopping the others.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loadgen.checks import KINDS, Kind

METADATA = "target.toml"
PLACEHOLDERS = frozenset({"host", "port", "workers", "python", "target_dir", "certfile", "keyfile"})
"""``{certfile}`` and ``{keyfile}``: the run's certificate and key (PEM files made by
:func:`loadgen.tls.make_certificate`), for a server speaking ``h2``."""
SETUP_PLACEHOLDERS = frozenset({"python", "target_dir"})
_FORMATTER = string.Formatter()
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PY = re.compile(r"^3\.\d{1,2}$")


class TargetError(ValueError):
    pass


NOT_DECLARED = "does not declare the scenario"
"""Why a target is not applicable to a scenario it neither serves nor explains."""
NOT_SPOKEN = "does not declare the protocol {protocol} (target.toml: protocols)"
"""Why a target is not applicable to a load setting of a protocol it does not speak."""


@dataclass(frozen=True)
class Target:
    name: str
    dir: Path
    framework: str
    framework_package: str
    kind: Kind
    python: str
    server: str
    server_package: str
    command: tuple[str, ...]
    hello_path: str = "/hello/"
    server_worker: str = ""
    template: str = ""
    keepalive: bool = True
    notes: str = ""
    setup: tuple[tuple[str, ...], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    startup_timeout: float = 0.0  # 0: the config's server.startup_timeout
    channel: str = "pinned"  # "latest"/"pre": built from ``lock``, named "<folder>@<channel>"
    lock: Path | None = None  # the resolved lock of a channel target (in the run folder)
    pythons: tuple[str, ...] = ()  # every interpreter the target declares, ``python`` first
    # [scenarios]: scenario -> path (json, db, queries, fortunes; loadgen.records.scenarios)
    scenarios: tuple[tuple[str, str], ...] = ()
    # [not_applicable]: scenario -> why this framework cannot serve it
    not_applicable: tuple[tuple[str, str], ...] = ()
    workers: int = 0  # a worker count of the sweep; 0: the config's first
    maintained: bool = True  # false: no release for years (kept, marked in reports)
    last_release: str = ""  # YYYY-MM-DD of the framework's last release, for unmaintained ones
    protocols: tuple[str, ...] = ("http1",)  # what the server speaks (records.scenarios.PROTOCOLS)
    # [commands]: a protocol (h2c, h2) or a scenario (ws-echo) -> the server's command for it
    commands: tuple[tuple[str, tuple[str, ...]], ...] = ()
    certfile: str = ""  # the run's certificate and key ({certfile}, {keyfile}); set by the runner
    keyfile: str = ""

    @property
    def requirements(self) -> Path:
        """The full lock the environment is built from."""
        return self.lock or self.dir / "requirements.txt"

    @property
    def folder_name(self) -> str:
        """The target's folder under ``targets/`` (its name without ``@channel``)."""
        return self.dir.name

    @property
    def label(self) -> str:
        worker = f" ({self.server_worker})" if self.server_worker else ""
        return f"{self.framework} on {self.server}{worker}"

    def path_for(self, scenario: str, queries: int = 1) -> str:
        """The path a trial of ``scenario`` requests (``?n=queries`` for ``queries``);
        ``hello_path`` for hello and browse. KeyError when the target does not serve it."""
        if scenario in ("hello", "browse"):
            return self.hello_path
        path = dict(self.scenarios)[scenario]
        return f"{path}?n={queries}" if scenario == "queries" else path

    def not_applicable_reason(self, scenario: str, protocol: str = "http1") -> str | None:
        """None when the target serves ``scenario`` over ``protocol``; else why not (the
        protocol it does not declare, its ``[not_applicable]`` reason, or
        :data:`NOT_DECLARED`)."""
        if protocol not in self.protocols:
            return NOT_SPOKEN.format(protocol=protocol)
        if scenario in ("hello", "browse") or scenario in dict(self.scenarios):
            return None
        return dict(self.not_applicable).get(scenario) or NOT_DECLARED

    @staticmethod
    def command_key(scenario: str, protocol: str = "http1") -> str:
        """The ``[commands]`` key a trial's server is started with: the scenario for ws-echo,
        else the protocol (``http1``: always ``command``)."""
        from loadgen.records.scenarios import WS_SCENARIOS

        return scenario if scenario in WS_SCENARIOS else protocol

    def serving(self, scenario: str, protocol: str = "http1") -> Target:
        """This target with the command that serves ``scenario`` over ``protocol``: its
        ``[commands]`` entry, else ``command``."""
        command = dict(self.commands).get(self.command_key(scenario, protocol))
        return self if command is None else replace(self, command=command)

    def with_certificate(self, certfile: str, keyfile: str) -> Target:
        """This target with the run's certificate for ``{certfile}`` and ``{keyfile}``."""
        return replace(self, certfile=certfile, keyfile=keyfile)

    def needs_certificate(self) -> bool:
        """Whether a command of the target names ``{certfile}`` or ``{keyfile}``."""
        argvs = [self.command, *(argv for _, argv in self.commands)]
        return any("{certfile}" in part or "{keyfile}" in part for a in argvs for part in a)

    def argv(self, *, host: str, port: int, workers: int, python: str) -> list[str]:
        values = {
            "host": host,
            "port": str(port),
            "workers": str(workers),
            "python": python,
            "target_dir": str(self.dir),
            "certfile": self.certfile,
            "keyfile": self.keyfile,
        }
        uses_tls = any("{certfile}" in p or "{keyfile}" in p for p in self.command)
        if uses_tls and not (self.certfile and self.keyfile):
            raise TargetError(f"{self.name}: the command needs the run's certificate; none made")
        return [part.format(**values) for part in self.command]

    def setup_argvs(self, *, python: str) -> list[list[str]]:
        values = {"python": python, "target_dir": str(self.dir)}
        return [[p.format(**values) for p in cmd] for cmd in self.setup]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "framework": self.framework,
            "framework_package": self.framework_package,
            "kind": self.kind,
            "python": self.python,
            "server": self.server,
            "server_package": self.server_package,
            "server_worker": self.server_worker,
            "command": list(self.command),
            "hello_path": self.hello_path,
            "template": self.template,
            "keepalive": self.keepalive,
            "notes": self.notes,
            "channel": self.channel,
            "pythons": list(self.pythons or (self.python,)),
            "scenarios": dict(self.scenarios),
            "not_applicable": dict(self.not_applicable),
            "maintained": self.maintained,
            "last_release": self.last_release,
            "workers": self.workers,
            "protocols": list(self.protocols),
            "commands": {key: list(argv) for key, argv in self.commands},
        }


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    targets: tuple[Target, ...]
    skipped: tuple[Skipped, ...] = field(default=())

    def names(self) -> set[str]:
        return {t.name for t in self.targets}

    def select(self, names: tuple[str, ...] | list[str]) -> list[Target]:
        """Targets by name in the given order; ``all`` (or nothing) means every target."""
        if not names or "all" in names:
            return list(self.targets)
        by = {t.name: t for t in self.targets}
        missing = [n for n in names if n not in by]
        if missing:
            raise TargetError(f"unknown target(s): {', '.join(missing)}")
        return [by[n] for n in dict.fromkeys(names)]


# The frameworks of the source comparison, in its order: reports list them first.
SEED_ORDER = (
    "django",
    "flask",
    "tornado",
    "falcon",
    "hug",
    "sanic",
    "aiohttp",
    "pyramid",
    "growler",
    "cherrypy",
    "morepath",
    "turbogears2",
    "circuits",
    "watson",
    "pycnic",
    "reahl",
)


def sort_key(name: str) -> tuple[int, str]:
    return (SEED_ORDER.index(name), "") if name in SEED_ORDER else (len(SEED_ORDER), name)


def discover(targets_dir: Path) -> Discovery:
    targets: list[Target] = []
    skipped: list[Skipped] = []
    if not targets_dir.is_dir():
        return Discovery((), (Skipped(str(targets_dir), "targets folder does not exist"),))
    for d in sorted(targets_dir.iterdir(), key=lambda p: sort_key(p.name)):
        if not d.is_dir() or d.name.startswith((".", "_")):
            continue
        try:
            targets.append(load_target(d))
        except TargetError as exc:
            skipped.append(Skipped(d.name, str(exc)))
    return Discovery(tuple(targets), tuple(skipped))


def load_target(d: Path) -> Target:
    meta = d / METADATA
    if not _NAME.match(d.name):
        raise TargetError(f"folder name {d.name!r} is not lowercase a-z, 0-9 and '-'")
    if not meta.is_file():
        raise TargetError(f"no {METADATA}")
    try:
        raw = tomllib.loads(meta.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{METADATA} is not valid TOML: {exc}") from None
    r = _Reader(raw)
    kind = r.text("kind")
    if kind not in KINDS:
        raise TargetError(f"{METADATA}: kind: {kind!r} is not 'html' or 'json'")
    pythons = r.versions("python")
    python = pythons[0]
    command = r.argv("command")
    used = _placeholders("command", command, PLACEHOLDERS)
    for ph in ("host", "port"):
        if ph not in used:
            raise TargetError(f"{METADATA}: command: must use {{{ph}}}")
    hello = r.text("hello_path", "/hello/")
    if not hello.startswith("/"):
        raise TargetError(f"{METADATA}: hello_path: must start with '/'")
    template = r.text("template", "")
    if kind == "html" and not template:
        raise TargetError(f"{METADATA}: template: an html target names its template file")
    if template and not (d / template).is_file():
        raise TargetError(f"{METADATA}: template: {template} does not exist")
    if not (d / "requirements.txt").is_file():
        raise TargetError("no requirements.txt (the full pinned lock)")
    _check_pinned(d / "requirements.txt")
    setup = tuple(tuple(c) for c in r.argv_list("setup"))
    for i, argv in enumerate(setup):
        _placeholders(f"setup[{i}]", argv, SETUP_PLACEHOLDERS)
    env = r.table("env")
    scenarios = _scenarios(r.table("scenarios"), r.table("not_applicable"))
    protocols = _protocols(r.names("protocols"))
    commands = _commands(r.commands("commands"), protocols, dict(scenarios[0]))
    target = Target(
        name=d.name,
        dir=d.resolve(),
        framework=r.text("framework"),
        framework_package=r.text("framework_package"),
        kind=kind,
        python=python,
        pythons=pythons,
        server=r.text("server"),
        server_package=r.text("server_package"),
        server_worker=r.text("server_worker", ""),
        command=tuple(command),
        hello_path=hello,
        template=template,
        keepalive=r.flag("keepalive", True),
        notes=r.text("notes", ""),
        setup=setup,
        env=tuple(sorted(env.items())),
        startup_timeout=r.num("startup_timeout", 0.0),
        scenarios=scenarios[0],
        not_applicable=scenarios[1],
        maintained=r.flag("maintained", True),
        last_release=r.text("last_release", ""),
        protocols=protocols,
        commands=commands,
    )
    if target.last_release and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", target.last_release):
        raise TargetError(f"{METADATA}: last_release: {target.last_release!r} is not YYYY-MM-DD")
    r.done()
    return target


def _scenarios(
    paths: dict[str, str], not_applicable: dict[str, str]
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``[scenarios]`` (name -> path) and ``[not_applicable]`` (name -> reason), checked."""
    from loadgen.records.scenarios import SCENARIOS, WS_SCENARIOS

    known = [s for s in SCENARIOS if s != "hello"] + sorted(WS_SCENARIOS)
    for key, table in (("scenarios", paths), ("not_applicable", not_applicable)):
        for name in table:
            if name not in known:
                raise TargetError(
                    f"{METADATA}: {key}.{name}: unknown scenario (known: {', '.join(known)})"
                )
    for name, path in paths.items():
        if not path.startswith("/") or "?" in path:
            raise TargetError(
                f"{METADATA}: scenarios.{name}: {path!r} must start with '/' and hold no query"
            )
        if name in not_applicable:
            raise TargetError(f"{METADATA}: not_applicable.{name}: the target serves it")
    for name, reason in not_applicable.items():
        if not reason.strip():
            raise TargetError(f"{METADATA}: not_applicable.{name}: say why")
    order = {s: i for i, s in enumerate(known)}
    return (
        tuple(sorted(paths.items(), key=lambda kv: order[kv[0]])),
        tuple(sorted(not_applicable.items(), key=lambda kv: order[kv[0]])),
    )


def _protocols(names: list[str] | None) -> tuple[str, ...]:
    """``protocols``: each one of :data:`~loadgen.records.scenarios.PROTOCOLS`, once; ``http1``
    among them (the hello verification speaks HTTP/1.1)."""
    from loadgen.records.scenarios import PROTOCOLS

    if names is None:
        return ("http1",)
    for name in names:
        if name not in PROTOCOLS:
            raise TargetError(
                f"{METADATA}: protocols: {name!r} is not one of {', '.join(PROTOCOLS)}"
            )
    if len(set(names)) != len(names):
        raise TargetError(f"{METADATA}: protocols: lists a protocol twice")
    if "http1" not in names:
        raise TargetError(
            f"{METADATA}: protocols: must include 'http1' (the verifier's hello checks speak it)"
        )
    return tuple(p for p in PROTOCOLS if p in names)


def _commands(
    table: dict[str, list[str]], protocols: tuple[str, ...], scenarios: dict[str, str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``[commands]``: a protocol the target declares (not http1: that is ``command``) or a
    WebSocket scenario it declares, each an argv using ``{host}`` and ``{port}``."""
    from loadgen.records.scenarios import H2_PROTOCOLS, WS_SCENARIOS

    out: list[tuple[str, tuple[str, ...]]] = []
    for key, argv in table.items():
        if key in H2_PROTOCOLS:
            if key not in protocols:
                raise TargetError(f"{METADATA}: commands.{key}: {key} is not in protocols")
        elif key in WS_SCENARIOS:
            if key not in scenarios:
                raise TargetError(f"{METADATA}: commands.{key}: {key} is not in [scenarios]")
        else:
            known = ", ".join(sorted(H2_PROTOCOLS | WS_SCENARIOS))
            raise TargetError(
                f"{METADATA}: commands.{key}: not a protocol or scenario with its own command "
                f"(known: {known}; http1 is `command`)"
            )
        used = _placeholders(f"commands.{key}", argv, PLACEHOLDERS)
        for ph in ("host", "port"):
            if ph not in used:
                raise TargetError(f"{METADATA}: commands.{key}: must use {{{ph}}}")
        out.append((key, tuple(argv)))
    if "h2" in protocols:
        tls = dict(out).get("h2")
        if tls is None:
            raise TargetError(
                f"{METADATA}: commands.h2: a target speaking h2 needs its TLS command "
                "(with {certfile} and {keyfile})"
            )
        used = _placeholders("commands.h2", tls, PLACEHOLDERS)
        if not {"certfile", "keyfile"} <= used:
            raise TargetError(f"{METADATA}: commands.h2: must use {{certfile}} and {{keyfile}}")
    return tuple(sorted(out))


def _placeholders(key: str, argv: tuple[str, ...] | list[str], allowed: frozenset[str]) -> set[str]:
    """The placeholders ``argv`` uses; raises :class:`TargetError` for a lone brace, an unknown
    placeholder or a format spec, so that a bad command skips its target when it is loaded
    instead of failing when the server starts."""
    used: set[str] = set()
    for part in argv:
        try:
            fields = list(_FORMATTER.parse(part))
        except ValueError:
            raise TargetError(
                f"{METADATA}: {key}: {part!r} has a lone '{{' or '}}': "
                "write a literal brace as '{{' or '}}'"
            ) from None
        for _text, name, spec, conversion in fields:
            if name is None:  # literal text only ('{{' and '}}' included)
                continue
            if name not in allowed:
                known = " ".join("{" + p + "}" for p in sorted(allowed))
                raise TargetError(
                    f"{METADATA}: {key}: unknown placeholder {{{name}}} in {part!r} "
                    f"(known: {known}; a literal brace is written '{{{{' or '}}}}')"
                )
            if spec or conversion:
                raise TargetError(
                    f"{METADATA}: {key}: {part!r}: a placeholder takes no format spec or conversion"
                )
            used.add(name)
    return used


def _check_pinned(req: Path) -> None:
    for n, line in enumerate(req.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith(("-", "\\")):
            continue
        if "==" not in line and " @ " not in line:
            raise TargetError(f"requirements.txt:{n}: {line!r} is not pinned with ==")


class _Reader:
    """Typed reads from a metadata table that remember which keys were used."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.used: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key not in self.raw:
            if default is _REQUIRED:
                raise TargetError(f"{METADATA}: {key}: missing")
            return default
        return self.raw[key]

    def text(self, key: str, default: Any = None) -> str:
        v = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(v, str) or (default is None and not v):
            raise TargetError(f"{METADATA}: {key}: expected a non-empty string")
        return v

    def versions(self, key: str) -> tuple[str, ...]:
        """``"3.11"`` or ``["3.11", "3.13"]``: X.Y interpreters, the first the default."""
        v = self._get(key, _REQUIRED)
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not items:
            raise TargetError(f"{METADATA}: {key}: expected 'X.Y' or a list of them")
        for item in items:
            if not isinstance(item, str) or not _PY.match(item):
                raise TargetError(f"{METADATA}: {key}: {item!r} is not X.Y (e.g. '3.11')")
        if len(set(items)) != len(items):
            raise TargetError(f"{METADATA}: {key}: lists a version twice")
        return tuple(items)

    def flag(self, key: str, default: bool) -> bool:
        v = self._get(key, default)
        if not isinstance(v, bool):
            raise TargetError(f"{METADATA}: {key}: expected true or false")
        return v

    def num(self, key: str, default: float) -> float:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise TargetError(f"{METADATA}: {key}: expected a number >= 0")
        return float(v)

    def argv(self, key: str) -> list[str]:
        v = self._get(key, _REQUIRED)
        if not isinstance(v, list) or not v or not all(isinstance(p, str) for p in v):
            raise TargetError(f"{METADATA}: {key}: expected a non-empty list of strings")
        return v

    def argv_list(self, key: str) -> list[list[str]]:
        v = self._get(key, [])
        if not isinstance(v, list) or not all(
            isinstance(c, list) and c and all(isinstance(p, str) for p in c) for c in v
        ):
            raise TargetError(f"{METADATA}: {key}: expected a list of argument lists")
        return v

    def names(self, key: str) -> list[str] | None:
        """A list of strings, or None when the key is absent."""
        v = self._get(key, None)
        if v is None:
            return None
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise TargetError(f"{METADATA}: {key}: expected a non-empty list of strings")
        return v

    def commands(self, key: str) -> dict[str, list[str]]:
        """A table of argument lists (``[commands]``)."""
        v = self._get(key, {})
        if not isinstance(v, dict) or not all(
            isinstance(c, list) and c and all(isinstance(p, str) for p in c) for c in v.values()
        ):
            raise TargetError(f"{METADATA}: {key}: expected a table of argument lists")
        return dict(v)

    def table(self, key: str) -> dict[str, str]:
        v = self._get(key, {})
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise TargetError(f"{METADATA}: {key}: expected a table of strings")
        return dict(v)

    def done(self) -> None:
        extra = sorted(set(self.raw) - self.used)
        if extra:
            raise TargetError(f"{METADATA}: {extra[0]}: unknown key")


_REQUIRED = object()
