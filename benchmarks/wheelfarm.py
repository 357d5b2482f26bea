"""A local wheel farm and a fixture target for bisect's tests and demo (no network for these).

- :func:`write_wheel` writes a pure-Python wheel directly (a wheel is a zip: the package, and
  ``<name>-<version>.dist-info/`` with ``METADATA``, ``WHEEL`` and a ``RECORD`` of sha256
  hashes). The bytes are reproducible (fixed timestamps), so a rebuilt farm is the same farm.
- :func:`build_farm` writes the four wheels of the farm: ``fwb-slowpkg`` 1.0 and 2.0 (2.0 runs
  a loop ten times longer on every call: a known slowdown) and ``fwb-neutralpkg`` 1.0 and 2.0
  (the same work in both: a change that changes nothing).
- :func:`make_fixture` lays out a folder with a ``bench.toml`` (``[envs] find_links`` = the
  farm; PyPI stays the index for everything else) and ``targets/fixture/``: Starlette on
  uvicorn (held at the versions of ``targets/starlette``'s lock through a constraints file, so
  an upgrade moves only the farm's packages), whose JSON handler calls both packages once per
  request; ``requirements.in`` pins both at 1.0, and the lock is resolved with uv.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from loadgen.config import load_config
from loadgen.locks import relock
from loadgen.records.packages import parse_lock
from loadgen.targets import load_target

ROOT = Path(__file__).resolve().parent.parent
SERVER_LOCK = ROOT / "targets" / "starlette" / "requirements.txt"
FIXTURE = "fixture"
SLOW = "fwb-slowpkg"
NEUTRAL = "fwb-neutralpkg"
# Loop iterations per call: fwb-slowpkg 2.0 does ten times the work of 1.0.
LOOPS = {(SLOW, "1.0"): 400, (SLOW, "2.0"): 4000, (NEUTRAL, "1.0"): 400, (NEUTRAL, "2.0"): 400}
_EPOCH = (1980, 1, 1, 0, 0, 0)

MODULE = '''"""{name} {version}: a stand-in dependency for fwbench's bisect tests."""

__version__ = "{version}"
LOOPS = {loops}


def work(seed: int = 1) -> int:
    """A fixed amount of CPU work: LOOPS rounds of integer arithmetic."""
    acc = seed
    for i in range(LOOPS):
        acc = (acc * 31 + i) % 1000003
    return acc
'''


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(folder: Path, name: str, version: str, module_source: str) -> Path:
    """A pure-Python wheel of ``name`` (its import name: ``-`` → ``_``) into ``folder``."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": module_source.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Summary: {name}, a stand-in dependency for fwbench's bisect tests\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: fwbench-wheelfarm\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},{_digest(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return wheel


def build_farm(folder: Path) -> list[Path]:
    """The farm's four wheels in ``folder``."""
    return [
        write_wheel(folder, name, version, MODULE.format(name=name, version=version, loops=loops))
        for (name, version), loops in LOOPS.items()
    ]


APP = '''"""fixture: Starlette on uvicorn; every request calls both of the farm's packages."""

import fwb_neutralpkg
import fwb_slowpkg
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request):
    fwb_slowpkg.work()
    fwb_neutralpkg.work()
    return JSONResponse({"message": "Hello world!"})


app = Starlette(routes=[Route("/hello/", hello)])
'''

TARGET_TOML = """framework = "Starlette"
framework_package = "starlette"
kind = "json"
python = "3.11"
server = "uvicorn"
server_package = "uvicorn"
server_worker = "uvloop+httptools"
command = ["uvicorn", "app:app", "--host", "{host}", "--port", "{port}", "--workers", "{workers}",
           "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
hello_path = "/hello/"
notes = "bisect fixture: calls fwb-slowpkg and fwb-neutralpkg (benchmarks/wheelfarm.py)"
"""

REQUIREMENTS_IN = f"""# the server and framework held at targets/starlette's versions
-c server-pins.txt
starlette
uvicorn
uvloop
httptools
{SLOW}==1.0
{NEUTRAL}==1.0
"""


@dataclass(frozen=True)
class Fixture:
    root: Path  # holds bench.toml
    config: Path  # bench.toml
    target_dir: Path  # targets/fixture
    wheels: Path


def make_fixture(root: Path, *, envs_dir: Path | None = None, trials: int = 7) -> Fixture:
    """The farm in ``root/wheels``, ``root/bench.toml`` and ``root/targets/fixture`` with its
    lock resolved (uv, with the farm as ``find_links``). Short load: 1 s trials, 16 connections."""
    wheels = root / "wheels"
    build_farm(wheels)
    target_dir = root / "targets" / FIXTURE
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / "app.py").write_text(APP, encoding="utf-8")
    (target_dir / "target.toml").write_text(TARGET_TOML, encoding="utf-8")
    (target_dir / "requirements.in").write_text(REQUIREMENTS_IN, encoding="utf-8")
    pins = parse_lock(SERVER_LOCK.read_text(encoding="utf-8"))
    (target_dir / "server-pins.txt").write_text(
        "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())), encoding="utf-8"
    )
    (target_dir / "requirements.txt").write_text("", encoding="utf-8")
    envs = envs_dir or root / ".envs"
    config = root / "bench.toml"
    config.write_text(
        f"""# bisect fixture (benchmarks/wheelfarm.py)
[paths]
targets_dir = "targets"
envs_dir = "{envs}"
reports_dir = "reports"
history = "reports/history.sqlite"

[envs]
find_links = ["{wheels}"]

[run]
targets = ["{FIXTURE}"]
trials = {trials}

[[run.load]]
name = "bisect"
connections = [16]
duration = 1.0
warmup = 0.5

[check]
bisect_trials = {trials}

[profile]  # fwbench bisect --profile: a short profiled trial of each side
duration = 3
warmup = 0.5
connections = 16
""",
        encoding="utf-8",
    )
    cfg = load_config(config)
    lock = relock(load_target(target_dir), cfg)
    (target_dir / "requirements.txt").write_text(lock.lock_text, encoding="utf-8")
    return Fixture(root, config, target_dir, wheels)
