"""The machine fingerprint recorded with every result: two runs compare only when it matches.

Records what is visible and says what is not (this VM, for one, exposes no cpufreq: no
governor or turbo state to read).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

from loadgen.records import FINGERPRINT_KEYS

__all__ = ["FINGERPRINT_KEYS", "fingerprint", "fingerprint_id", "warnings"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def governor() -> str:
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "not visible"


def turbo() -> str:
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    if no_turbo is not None:
        return "off" if no_turbo == "1" else "on"
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    if boost is not None:
        return "on" if boost == "1" else "off"
    return "not visible"


def isolated_cpus() -> str:
    return _read("/sys/devices/system/cpu/isolated") or ""


def suite_commit(root: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty.strip() else "")


def memory_bytes() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def fingerprint(
    server_cpus: tuple[int, ...], client_cpus: tuple[int, ...], root: Path
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 0,
        "server_cpus": list(server_cpus),
        "client_cpus": list(client_cpus),
        "governor": governor(),
        "turbo": turbo(),
        "isolated_cpus": isolated_cpus(),
        "kernel": platform.release(),
        "memory_bytes": memory_bytes(),
        "python": platform.python_version(),
        "suite_commit": suite_commit(root),
    }
    info["fingerprint"] = fingerprint_id(info)
    return info


def fingerprint_id(info: dict[str, Any]) -> str:
    key = {k: info.get(k) for k in FINGERPRINT_KEYS}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def warnings(info: dict[str, Any]) -> list[str]:
    """Machine tuning worth doing, as found (printed before a run and kept in the report)."""
    out = []
    if info.get("governor") not in ("performance", "not visible"):
        out.append(f"CPU governor is {info['governor']!r}; 'performance' gives steadier figures")
    if info.get("turbo") == "on":
        out.append("turbo is on; turning it off gives steadier figures")
    if info.get("governor") == "not visible":
        out.append("no cpufreq here: governor and turbo cannot be read or set")
    if not info.get("isolated_cpus"):
        out.append("no isolated CPUs (isolcpus=); other processes may share the measured cores")
    return out
