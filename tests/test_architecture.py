"""The import layering of docs/architecture.md, checked on the source (``ast``), not by hand.

    commands/   the front door: the only layer that joins loadgen and analysis
    loadgen/    orchestration and the instrument; never imports analysis, commands, benchmarks
    analysis/   reports, history, gates; from loadgen only the schema modules
    benchmarks/ the tools that measure the tool; nothing in production imports them

``python -m pytest tests/test_architecture.py`` shows a violation with its file and line.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What analysis may import from loadgen: the shapes that cross files and processes, the config,
# the histogram format and the table formatter. Nothing that starts a process or sends load.
ANALYSIS_MAY_IMPORT = ("loadgen.records", "loadgen.config", "loadgen.hist", "loadgen.table")
HEAVY = ("pandas", "matplotlib", "scipy", "locust", "gevent")
LARGEST_MODULE_LINES = 650


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from loadgen import runner` imports loadgen.runner
                yield node.lineno, f"{module}.{alias.name}"


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _violations(
    package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    out = []
    for path in _sources(package):
        for line, module in _imports(path):
            hit = any(module == f or module.startswith(f + ".") for f in forbidden)
            ok = any(module == a or module.startswith(a + ".") for a in allowed)
            if hit and not ok:
                out.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    return out


def test_the_packages_are_there() -> None:
    for package in ("commands", "loadgen", "analysis", "benchmarks"):
        assert _sources(package), f"{package}/ has no Python file"


def test_loadgen_never_imports_analysis_commands_or_benchmarks() -> None:
    assert _violations("loadgen", ("analysis", "commands", "benchmarks")) == []


def test_analysis_imports_only_the_schema_from_loadgen() -> None:
    found = _violations("analysis", ("loadgen", "commands", "benchmarks"), ANALYSIS_MAY_IMPORT)
    assert found == []


def test_nothing_in_production_imports_the_benchmarks_but_the_front_door() -> None:
    assert _violations("analysis", ("benchmarks",)) == []
    assert _violations("loadgen", ("benchmarks",)) == []


def test_benchmarks_never_import_the_front_door() -> None:
    assert _violations("benchmarks", ("commands",), ("commands.cli",)) == []


def test_every_command_in_the_registry_has_its_module() -> None:
    from commands import COMMANDS

    for cmd in COMMANDS:
        path = ROOT / (cmd.module.replace(".", "/") + ".py")
        assert path.is_file(), f"{cmd.name}: {path} is missing"
        names = {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert {"add_arguments", "run"} <= names, f"{path}: needs add_arguments() and run()"


@pytest.mark.child_process  # a fresh interpreter that only prints help
@pytest.mark.child_process
@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["check", "--help"]])
def test_help_does_not_import_the_heavy_libraries(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from commands.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_no_module_is_a_house_of_many_rooms() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for package in ("commands", "loadgen", "analysis", "benchmarks")
        for p in _sources(package)
    }
    big = {name: n for name, n in sizes.items() if n > LARGEST_MODULE_LINES}
    assert big == {}, f"modules over {LARGEST_MODULE_LINES} lines: {big}"
