# The two front doors: `make bench` (set up, build every target, verify, measure, report)
# and `make test` (set up, lint, type-check, run the tests). `make test-fast` is the quick lane:
# the tests not marked e2e (no server, no load, no environment build), no lint, under a minute.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fwbench-installed

.PHONY: bench test test-fast setup lint clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade uv
	$(BIN)/uv pip install -q -p $(BIN)/python -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

bench: $(STAMP)
	$(BIN)/fwbench bench

lint: $(STAMP)
	$(BIN)/ruff check commands loadgen analysis benchmarks tests
	$(BIN)/ruff format --check commands loadgen analysis benchmarks tests
	$(BIN)/mypy

# Debian packages the tests use: Chromium renders the HTML report in the browser test;
# valgrind (with callgrind_control) counts instructions per request (fwbench cost, its tests);
# PostgreSQL's server programs make the private cluster of [database] kind = "postgres";
# h2load (nghttp2-client) is the reference of `fwbench calibrate --protocol h2c`.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
	      || echo "warning: could not install chromium: the browser test will be skipped"; \
	  else \
	    echo "chromium is not installed (and this is not root): the browser test will be skipped"; \
	  fi; \
	fi
	@if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind) \
	      || echo "warning: could not install valgrind: the cost tests will be skipped"; \
	  else \
	    echo "valgrind is not installed (and this is not root): the cost tests will be skipped;" \
	         "sudo apt-get install valgrind"; \
	  fi; \
	fi
	@if ! command -v h2load >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nghttp2-client) \
	      || echo "warning: could not install nghttp2-client: calibrate --protocol h2c runs without h2load"; \
	  else \
	    echo "h2load is not installed (and this is not root): calibrate --protocol h2c runs without" \
	         "it; sudo apt-get install nghttp2-client"; \
	  fi; \
	fi

	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql) \
	      || echo "warning: could not install postgresql: the PostgreSQL tests will be skipped"; \
	  else \
	    echo "postgresql is not installed (and this is not root): the PostgreSQL tests will be" \
	         "skipped; sudo apt-get install postgresql"; \
	  fi; \
	fi

test: lint system-deps
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" -n 2

clean:
	rm -rf $(VENV) .envs
