# The two front doors: `make bench` (set up, build every target, verify, measure, report)
# and `make test` (set up, lint, type-check, run the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fwbench-installed

.PHONY: bench test setup lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	$(BIN)/uv pip install -q -p $(BIN)/python -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

bench: $(STAMP)
	$(BIN)/fwbench bench

lint: $(STAMP)
	$(BIN)/ruff check loadgen analysis tests
	$(BIN)/ruff format --check loadgen analysis tests
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .envs
