"""Isolated, pinned environments: one per target, built by uv with the target's own Python.

An environment lives in ``<envs_dir>/<target>-<hash>``, where the hash covers everything that
goes into it (the lock file, the setup commands, the interpreter's exact version and path, the
uv version). It is reused while the hash matches and rebuilt when any input changes. A build
writes into a temporary folder and renames it into place only once every step succeeded, so a
half-built environment is never taken for a good one.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadgen.config import Config
from loadgen.procs import child_env
from loadgen.records.series import parse_series
from loadgen.targets import Target

READY = ".fwbench-env.json"
ENV_FORMAT = "2"  # bump when the way environments are built changes (2: no pip seeded)


class EnvError(RuntimeError):
    """An environment could not be built; ``detail`` holds the installer's own words."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Env:
    target: str
    path: Path
    python: Path  # the environment's interpreter
    python_version: str  # e.g. "3.11.7"
    packages: tuple[tuple[str, str], ...]  # (name, version) of everything installed
    size_bytes: int
    build_s: float  # seconds the build took (0.0 when reused)
    cached: bool

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def version_of(self, package: str) -> str:
        want = _norm(package)
        for name, version in self.packages:
            if _norm(name) == want:
                return version
        return ""


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def uv_path() -> str:
    """uv from the suite's own environment, else from PATH."""
    here = Path(sys.executable).parent / "uv"
    if here.exists():
        return str(here)
    found = shutil.which("uv")
    if not found:
        raise EnvError("uv is not installed (make setup installs it into .venv)")
    return found


def find_python(version: str) -> Path:
    """An interpreter on disk for ``X.Y``: pyenv's versions first, then ``pythonX.Y`` on PATH."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    candidates: list[Path] = []
    for root in filter(None, roots):
        for p in glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")):
            m = re.search(rf"{re.escape(version)}\.(\d+)/bin/python$", p)
            if m and os.access(p, os.X_OK):
                candidates.append(Path(p))
    if candidates:
        return max(candidates, key=lambda p: int(p.parent.parent.name.rsplit(".", 1)[1]))
    found = shutil.which(f"python{version}")
    if found:
        return Path(found)
    if sys.version_info[:2] == tuple(int(x) for x in version.split(".")):
        return Path(sys.executable)
    raise EnvError(f"no Python {version} on this machine (looked in pyenv and on PATH)")


def interpreter_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


def _uv_version(uv: str) -> str:
    return subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout


def env_hash(target: Target, python: Path, python_version: str, uv_version: str) -> str:
    h = hashlib.sha256()
    h.update(target.requirements.read_bytes())
    h.update(json.dumps([list(c) for c in target.setup]).encode())
    h.update(f"{ENV_FORMAT}|{python}|{python_version}|{uv_version}|{sys.platform}".encode())
    return h.hexdigest()[:12]


def env_name(target: Target) -> str:
    """The environment's name: the series' without its worker count (``flask@w4`` runs in
    ``flask``'s environment; ``flask@latest`` and ``flask@py3.13`` have their own)."""
    return parse_series(target.name).without_workers


def env_path(envs_dir: Path, target: Target, digest: str) -> Path:
    return envs_dir / f"{env_name(target)}-{digest}"


def index_args(cfg: Config) -> list[str]:
    """uv's package-source options from ``[envs]``."""
    e = cfg.envs
    args: list[str] = []
    if e.index_url:
        args += ["--index-url", e.index_url]
    for url in e.extra_index_urls:
        args += ["--extra-index-url", url]
    for folder in cfg.find_links():
        args += ["--find-links", str(folder)]
    if e.no_index:
        args.append("--no-index")
    return args


def say_building(target: Target) -> None:
    """The default word before a real build (minutes on a cold cache): on stderr."""
    print(f"fwbench: building env {target.name} (uv) ...", file=sys.stderr, flush=True)


def ensure_env(
    target: Target,
    envs_dir: Path,
    *,
    rebuild: bool = False,
    starting: Callable[[Target], None] | None = say_building,
    sources: Sequence[str] = (),
) -> Env:
    """The target's environment, built if missing or stale; raises :class:`EnvError`.

    ``starting`` is called just before a real build begins (never for a cached environment);
    None says nothing. ``sources``: uv's package-source options (:func:`index_args`)."""
    envs_dir = envs_dir.resolve()  # servers run with the target folder as cwd
    uv = uv_path()
    python = find_python(target.python)
    version = interpreter_version(python)
    digest = env_hash(target, python, version, _uv_version(uv))
    path = env_path(envs_dir, target, digest)
    marker = path / READY
    if marker.is_file() and not rebuild:
        info = json.loads(marker.read_text())
        return Env(
            target=target.name,
            path=path,
            python=path / "bin" / "python",
            python_version=version,
            packages=tuple((p[0], p[1]) for p in info["packages"]),
            size_bytes=int(info["size_bytes"]),
            build_s=0.0,
            cached=True,
        )
    envs_dir.mkdir(parents=True, exist_ok=True)
    with _lock(envs_dir / f".{env_name(target)}.lock"):
        if marker.is_file() and not rebuild:  # another process built it while we waited
            return ensure_env(target, envs_dir, starting=None, sources=sources)
        if starting is not None:
            starting(target)
        return _build(target, uv, python, version, digest, path, sources)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(
    target: Target,
    uv: str,
    python: Path,
    version: str,
    digest: str,
    path: Path,
    sources: Sequence[str] = (),
) -> Env:
    # Built in place (a venv's scripts name their own path, so it cannot be moved afterwards);
    # the ready marker is written last, so a build that dies half-way is never reused.
    marker = path / READY
    shutil.rmtree(path, ignore_errors=True)
    started = time.monotonic()
    env_python = path / "bin" / "python"
    try:
        _step([uv, "venv", "-q", "-p", str(python), str(path)], "create the venv")
        _step(
            [
                *(uv, "pip", "sync", "-q", "-p", str(env_python)),
                *(str(target.requirements), *sources),
            ],
            "install the pinned requirements",
            cwd=target.dir,
        )
        for argv in target.setup_argvs(python=str(env_python)):
            _step(argv, f"run setup {' '.join(argv)}", cwd=target.dir, env=env_vars(path, target))
        packages = freeze(uv, env_python)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    build_s = time.monotonic() - started
    size = dir_size(path)
    marker.write_text(
        json.dumps({"packages": packages, "size_bytes": size, "build_s": build_s, "hash": digest})
    )
    _remove_stale(path.parent, target, keep=path)
    return Env(
        target=target.name,
        path=path,
        python=env_python,
        python_version=version,
        packages=tuple((p[0], p[1]) for p in packages),
        size_bytes=size,
        build_s=build_s,
        cached=False,
    )


def env_vars(path: Path, target: Target) -> dict[str, str]:
    """The process environment a target's server (or setup step) runs with.

    Clean (:func:`loadgen.procs.child_env`: PATH, HOME, the locale... never fwbench's secrets
    nor the user's Python settings), the environment's ``bin/`` first on PATH, then the
    target's own ``env``.
    """
    base = child_env()
    return child_env(
        {
            "PATH": f"{path / 'bin'}{os.pathsep}{base['PATH']}",
            "VIRTUAL_ENV": str(path),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            **dict(target.env),
        }
    )


def freeze(uv: str, python: Path) -> list[tuple[str, str]]:
    out = subprocess.run(
        [uv, "pip", "list", "--format", "json", "-p", str(python)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise EnvError("could not list the installed packages", out.stderr[-2000:])
    return sorted((p["name"], p["version"]) for p in json.loads(out.stdout or "[]"))


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(root, f))
            except OSError:
                continue
            total += st.st_size
    return total


def installer_env() -> dict[str, str]:
    """uv's environment: ours (its proxy, ``UV_*`` and cache settings) without fwbench's own
    ``FWBENCH_*`` variables (the webhook secret): building an sdist runs third-party code."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FWBENCH_")}


def _step(
    argv: list[str], what: str, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    env = installer_env() if env is None else env
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        raise EnvError(f"could not {what}: timed out after 900 s") from None
    except OSError as exc:
        raise EnvError(f"could not {what}: {exc}") from None
    if out.returncode != 0:
        detail = (out.stderr or out.stdout).strip()
        raise EnvError(f"could not {what} (exit {out.returncode})", detail[-4000:])


def _remove_stale(envs_dir: Path, target: Target, keep: Path) -> None:
    name = env_name(target)
    for p in envs_dir.glob(f"{name}-*"):
        if p != keep and p.is_dir() and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{12}}", p.name):
            shutil.rmtree(p, ignore_errors=True)


@dataclass(frozen=True)
class BuildOutcome:
    target: str
    env: Env | None
    error: str = ""
    detail: str = ""


def build_one(
    target: Target,
    envs_dir: Path,
    *,
    rebuild: bool = False,
    starting: Callable[[Target], None] | None = say_building,
    sources: Sequence[str] = (),
) -> BuildOutcome:
    """The target's environment, built or reused; a failure is an outcome, not an exception.
    ``starting``, ``sources``: as :func:`ensure_env`'s."""
    try:
        env = ensure_env(target, envs_dir, rebuild=rebuild, starting=starting, sources=sources)
    except EnvError as exc:
        return BuildOutcome(target.name, None, str(exc), exc.detail)
    return BuildOutcome(target.name, env)


def build_all(
    targets: list[Target],
    envs_dir: Path,
    *,
    rebuild: bool = False,
    report: Callable[[int, int, BuildOutcome], None] | None = None,
    starting: Callable[[int, int, Target], None] | None = None,
    sources: Sequence[str] = (),
) -> list[BuildOutcome]:
    """Build every target's environment; a failure is recorded and the others go on.

    ``starting(i, n, target)`` is called just before a real build begins (not for a cached
    environment); without it, :func:`say_building` says so on stderr. ``report(i, n,
    outcome)`` after each target. ``sources``: as :func:`ensure_env`'s."""
    outcomes: list[BuildOutcome] = []
    n = len(targets)
    for i, t in enumerate(targets, 1):

        def announce(target: Target, i: int = i) -> None:
            if starting is None:
                say_building(target)
            else:
                starting(i, n, target)

        outcome = build_one(t, envs_dir, rebuild=rebuild, starting=announce, sources=sources)
        outcomes.append(outcome)
        if report:
            report(i, n, outcome)
    return outcomes
