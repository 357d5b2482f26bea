"""The e2e rule's self-checks (the rule and the guard are in tests/conftest.py): a test that
starts a child process without the ``e2e`` marker fails, saying to mark it; one marked
``child_process`` may start its own helpers but not the suite's processes; and no test builds
environments in the user's ``.envs/``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# A test file run by a pytest of its own, under a copy of our conftest.
PROBE = """
import subprocess, sys
import pytest

def start():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

SUITE = {"__name__": "loadgen.probe"}  # a function of the suite's, as the stack sees it
exec("import subprocess, sys\\ndef start():\\n    subprocess.run([sys.executable, '-c', 'pass'])",
     SUITE)

@pytest.fixture
def server():
    start()

def test_unmarked():
    start()

def test_unmarked_fixture(server):
    pass

@pytest.mark.e2e
def test_e2e():
    start()
    SUITE["start"]()

@pytest.mark.child_process
def test_own_helper():
    start()

@pytest.mark.child_process
def test_suite_process():
    SUITE["start"]()

def test_uvloop():
    import uvloop
    uvloop.new_event_loop().close()

def test_git():
    subprocess.run(["git", "--version"], check=True, capture_output=True)

def test_pure():
    pass
"""


@pytest.mark.child_process  # a pytest of its own, which runs nothing but `python -c pass`
def test_guard_fails_unmarked_tests_that_start_processes(tmp_path: Path) -> None:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    e2e: probe\n")
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "1000"}  # whole failure reasons
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-vv", "-rA", "test_probe.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.findall(
        r"^(PASSED|FAILED|ERROR) test_probe\.py::(\w+)(?: - (.*))?$", out.stdout, re.M
    )
    outcomes = {name: (word, reason) for word, name, reason in found}
    assert {n: w for n, (w, _) in outcomes.items()} == {
        "test_unmarked": "FAILED",
        "test_unmarked_fixture": "ERROR",
        "test_e2e": "PASSED",
        "test_own_helper": "PASSED",
        "test_suite_process": "FAILED",
        "test_uvloop": "FAILED",
        "test_git": "PASSED",
        "test_pure": "PASSED",
    }, out.stdout[-3000:] + out.stderr[-3000:]
    for name in ("test_unmarked", "test_unmarked_fixture", "test_suite_process", "test_uvloop"):
        assert "this test starts a server: mark it e2e" in outcomes[name][1], outcomes[name]
    assert "loadgen.probe" in outcomes["test_suite_process"][1]


def test_envs_go_to_a_temporary_folder(envs_dir: Path) -> None:
    if not os.environ.get("FWBENCH_TEST_ENVS_DIR"):
        assert envs_dir != ROOT / ".envs" and not envs_dir.is_relative_to(ROOT)
    named = [
        p.name
        for p in sorted(TESTS.glob("*.py"))
        if p.name != "test_markers.py" and re.search(r"""["']\.envs["']""", p.read_text())
    ]
    assert named == [], f"these tests name the user's .envs/: use the envs_dir fixture ({named})"
