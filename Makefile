# The two set-up commands of the README: `make demo` and `make test`.
PY ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck unit migration browser

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

# `make demo PORT=8001` when 8000 is taken.
demo: install
	$(BIN)/claimflow demo --port $(PORT)

LINTED := claimflow tests examples $(wildcard bench)

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: install
	$(BIN)/mypy

# Two processes, one test file each at a time (a file's fixtures stay in one process): most
# tests wait on servers, browsers and sub-processes, so two halve the run on a 2-core machine.
TEST_PROCESSES ?= 2

unit: install
	$(BIN)/pytest -q -n $(TEST_PROCESSES) --dist loadfile

test: lint typecheck unit

# Regenerate the initial migration from claimflow/store/tables.py (pre-release only).
migration: install
	rm -f claimflow/store/migrations/versions/*.py /tmp/claimflow-migration.db
	$(BIN)/alembic -c claimflow/store/migrations/alembic.ini revision --autogenerate -m initial --rev-id 0001
	$(BIN)/ruff format claimflow/store/migrations
