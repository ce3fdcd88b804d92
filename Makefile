# chuangwei 创卫: `make run` runs everything locally, `make test` is what CI runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-installs when pyproject.toml changes.
STAMP := $(VENV)/.installed
# Type-checked folders: those that exist and hold Python files.
TYPED := $(foreach d,contracts services tests bench,$(if $(shell find $(d) -name '*.py' -print -quit 2>/dev/null),$(d)))
BENCHES ?= bench/projector_throughput.py bench/reminders_delay.py bench/notifier_burst.py
PYTEST_ARGS ?=
# pytest-xdist workers, each with its own nats-server and databases (tests/conftest.py). The tests
# mostly wait (servers, processes, deadlines), so more workers than cores pay: see bench/README.md.
# 0: one process, as before.
PYTEST_WORKERS ?= 4
ARGS ?=

.PHONY: all install run test test-unit test-integration test-e2e pytest lint typecheck format bench \
	faults clean

all: install

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

## run: NATS + PostgreSQL (found or started, data in .cw/) + the services; Ctrl-C stops
run: $(STAMP)
	$(BIN)/cw dev $(ARGS)

## test: lint, type-check, then every test tier
test: lint typecheck pytest

pytest: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

## test-unit, test-integration, test-e2e: one tier (its folder and its marker), nothing else
test-unit test-integration test-e2e: test-%: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --dist worksteal -m $* tests/$* $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(TYPED)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@ran=0; for b in $(BENCHES); do \
		if [ -f "$$b" ]; then echo "$(BIN)/python $$b"; $(BIN)/python "$$b" || exit $$?; ran=1; fi; \
	done; [ $$ran = 1 ] || echo "no benchmarks yet ($(BENCHES))"

## faults: the fault suite at full size against servers of its own; figures to bench/faults.md
faults: $(STAMP)
	$(BIN)/python bench/faults.py $(ARGS)

## clean: remove .venv and what cw dev keeps (.cw/); stops nothing, refuses while it is in use
clean:
	$(PYTHON) -m services.devstack.cleanup .
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
