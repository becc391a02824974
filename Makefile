# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLES := $(wildcard examples/*/pyproject.toml)

.PHONY: demo test lint typecheck pytest system-deps bench clean

$(STAMP): pyproject.toml $(EXAMPLES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[server,postgres,dev]' $(foreach e,$(EXAMPLES),-e $(dir $(e)))
	touch $(STAMP)

## system-deps: Debian packages the tests need (PostgreSQL server, Chromium), installed if missing
system-deps:
	bash scripts/system-deps.sh

## test: lint, type checks and every test (PostgreSQL and a real browser included)
test: $(STAMP) system-deps lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples scripts
	$(BIN)/ruff format --check src tests bench examples scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# The long fuzz, soak and property runs (marked slow, bounded) run second, in CI too.
pytest: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

## demo: start a collector, drive the three example tools as simulated users, publish, report
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## bench: the benchmarks (not part of the tests)
bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-data site .pytest_cache .mypy_cache .ruff_cache
