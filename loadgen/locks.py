"""Locks and channels: a target's full lock resolved by uv from its ``requirements.in``.

- :func:`resolve_channel` re-resolves a target's ``requirements.in`` to the newest releases
  for the ``latest`` channel (``pre``: pre-releases allowed), with its ``==`` pins relaxed to
  ``>=`` (the pinned version stays a lower bound: a channel never goes back in time) and every
  other specifier kept. The resolved lock is written into the run folder (``locks/``), so any
  night can be rebuilt exactly from it, and :func:`channel_target` makes the target that is
  built and measured from it, named ``<target>@<channel>``.
- :func:`relock` is ``fwbench lock``'s engine: re-resolve the committed lock (keeping its pins
  where ``requirements.in`` allows; ``upgrade``: to the newest releases, bumping the ``==``
  pins of ``requirements.in`` too) and say which packages changed.

Every uv call gets the config's package sources (:func:`loadgen.envs.index_args`).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from loadgen.config import Config
from loadgen.envs import EnvError, index_args, installer_env, uv_path
from loadgen.records.packages import LOCKS_DIR as LOCKS_DIR  # re-exported (the runner's)
from loadgen.records.packages import (
    PackageChange,
    diff_packages,
    norm_name,
    parse_lock,
    series_name,
)
from loadgen.targets import Target

RESOLVE_TIMEOUT = 600.0


def lock_file(locks_dir: Path, series: str) -> Path:
    """Where a run folder keeps the lock a series was built from."""
    return locks_dir / f"{series}.txt"


_PIN = re.compile(r"^(\s*[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*)==(\s*[^\s;#,]+)(.*)$")
_PATH_OPTION = re.compile(r"^(-e|--editable|-r|--requirement|-c|--constraint)(\s+|=)(\S+)(.*)$")


def relax(text: str, base: Path) -> str:
    """``requirements.in`` for a channel: ``name==1.2`` becomes ``name>=1.2``; relative paths
    of ``-e``/``-r``/``-c`` lines become absolute (from ``base``), so the file works anywhere."""
    out = []
    for line in text.splitlines():
        m = _PIN.match(line)
        if m and not line.lstrip().startswith("#"):
            line = f"{m.group(1).rstrip()}>={m.group(2).strip()}{m.group(3)}"
        else:
            line = _absolute_paths(line, base)
        out.append(line)
    return "\n".join(out) + "\n"


def _absolute_paths(line: str, base: Path) -> str:
    m = _PATH_OPTION.match(line.strip())
    if not m or "://" in m.group(3):
        return line
    path = Path(m.group(3))
    if not path.is_absolute():
        path = (base / path).resolve()
    return f"{m.group(1)} {path}{m.group(4)}"


def compile_lock(
    requirements_in: Path,
    out: Path,
    *,
    python_version: str,
    cfg: Config,
    upgrade: bool = False,
    prerelease: bool = False,
    cwd: Path | None = None,
) -> None:
    """``uv pip compile``: the full lock of ``requirements_in`` into ``out``; an existing
    ``out`` is kept as the preferred versions unless ``upgrade``. Raises :class:`EnvError`."""
    argv = [
        uv_path(),
        "pip",
        "compile",
        "-q",
        str(requirements_in),
        "-o",
        str(out),
        "--python-version",
        python_version,
        "--no-header",
        *index_args(cfg),
    ]
    if upgrade:
        argv.append("--upgrade")
    if prerelease:
        argv += ["--prerelease", "allow"]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=installer_env(),
            timeout=RESOLVE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EnvError(f"could not resolve {requirements_in}: timed out") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise EnvError(f"could not resolve {requirements_in} (exit {done.returncode})", detail)


def resolve_channel(
    target: Target, channel: str, locks_dir: Path, cfg: Config, *, series: str = ""
) -> Path:
    """The resolved lock of ``target`` on ``channel`` (``latest`` or ``pre``) for its
    ``python``, written to ``locks_dir/<series>.txt`` (default ``<target>@<channel>``) next to
    the relaxed input it came from."""
    if channel not in ("latest", "pre"):
        raise ValueError(f"no resolution for channel {channel!r}")
    src = target.dir / "requirements.in"
    if not src.is_file():
        raise EnvError(f"{target.name}: no requirements.in to resolve the {channel} channel from")
    locks_dir.mkdir(parents=True, exist_ok=True)
    series = series or series_name(target.name, channel)
    relaxed = locks_dir / f"{series}.in"
    relaxed.write_text(relax(src.read_text(encoding="utf-8"), target.dir), encoding="utf-8")
    out = lock_file(locks_dir, series)
    out.unlink(missing_ok=True)
    compile_lock(
        relaxed,
        out,
        python_version=target.python,
        cfg=cfg,
        upgrade=True,
        prerelease=channel == "pre",
        cwd=locks_dir,
    )
    return out


def channel_target(target: Target, channel: str, lock: Path) -> Target:
    """The target built from ``lock`` and measured as its own series ``<target>@<channel>``."""
    return replace(target, name=series_name(target.name, channel), channel=channel, lock=lock)


# --- fwbench lock ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Relock:
    """What re-resolving one target's lock gave: the changes, and the new texts."""

    target: str
    changes: tuple[PackageChange, ...]
    lock_text: str  # the new requirements.txt
    in_text: str  # the new requirements.in (pins bumped by an upgrade)
    in_changed: bool


def relock(target: Target, cfg: Config, *, upgrade: bool = False) -> Relock:
    """Re-resolve ``target``'s lock from its ``requirements.in`` (nothing is written).

    Without ``upgrade`` the committed lock's versions are kept wherever ``requirements.in``
    still allows them, so the result differs only when the lock is stale. With ``upgrade`` the
    ``==`` pins are relaxed, everything goes to the newest release, and the pins of
    ``requirements.in`` are bumped to the versions chosen."""
    src = target.dir / "requirements.in"
    if not src.is_file():
        raise EnvError(f"{target.name}: no requirements.in")
    in_text = src.read_text(encoding="utf-8")
    current = target.dir / "requirements.txt"
    old_text = current.read_text(encoding="utf-8") if current.is_file() else ""
    with tempfile.TemporaryDirectory(prefix="fwbench-lock-") as tmp:
        work = Path(tmp) / target.dir.parent.name
        folder = work / target.dir.name
        folder.mkdir(parents=True)
        if upgrade:
            relaxed = folder / "relaxed.in"
            relaxed.write_text(relax(in_text, target.dir), encoding="utf-8")
            newest = folder / "newest.txt"
            compile_lock(
                relaxed, newest, python_version=target.python, cfg=cfg, upgrade=True, cwd=work
            )
            in_text = bump_pins(in_text, parse_lock(newest.read_text(encoding="utf-8")))
        # Resolved from a copy laid out as targets/NAME/, so the "# via -r NAME/requirements.in"
        # annotations read as in the committed lock; -e/-r paths made absolute for the copy.
        (folder / "requirements.in").write_text(_for_copy(in_text, target.dir), encoding="utf-8")
        out = folder / "requirements.txt"
        if old_text and not upgrade:
            out.write_text(old_text, encoding="utf-8")
        compile_lock(
            folder / "requirements.in",
            out,
            python_version=target.python,
            cfg=cfg,
            upgrade=upgrade,
            cwd=work,
        )
        lock_text = _restore_paths(out.read_text(encoding="utf-8"), target.dir)
    changes = diff_packages(parse_lock(old_text), parse_lock(lock_text))
    original = src.read_text(encoding="utf-8")
    return Relock(target.name, changes, lock_text, in_text, in_text != original)


def bump_pins(in_text: str, resolved: dict[str, str]) -> str:
    """``requirements.in`` with each ``name==old`` pin set to the resolved version."""
    out = []
    for line in in_text.splitlines():
        m = _PIN.match(line)
        if m and not line.lstrip().startswith("#"):
            name = re.sub(r"\[.*$", "", m.group(1).strip())
            new = resolved.get(norm_name(name))
            if new:
                line = f"{m.group(1)}=={new}{m.group(3)}"
        out.append(line)
    return "\n".join(out) + "\n"


def _for_copy(in_text: str, target_dir: Path) -> str:
    return "\n".join(_absolute_paths(line, target_dir) for line in in_text.splitlines()) + "\n"


def _restore_paths(lock_text: str, target_dir: Path) -> str:
    """Absolute ``-e`` paths of the target's own folder back to ``.`` as committed."""
    here = str(target_dir.resolve())
    return "\n".join(
        re.sub(rf"^(-e\s+){re.escape(here)}(?=\s|$)", r"\1.", line)
        for line in lock_text.splitlines()
    ) + ("\n" if lock_text.endswith("\n") else "")
