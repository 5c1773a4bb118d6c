# Tidelog's two commands: `make run` starts everything on this machine, `make test` runs the
# whole suite. Both install what is missing first (a virtualenv from requirements.lock).

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= $(shell command -v python3.12 2>/dev/null || ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
# Two pytest-xdist workers, a test file's tests on one (each worker its own database and Redis
# prefix: tests/conftest.py): 12 to 7 minutes on this machine kind. PYTEST_ARGS= runs serially.
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: run test install lint bench services help

help:
	@echo "make run    start Tidelog (command API :8000, query API :8001, workers, projections)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make bench  run loadtest/bench_ingest.py against a fresh private stack"

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "Tidelog needs Python 3.12 (Django 6): none found" >&2; exit 1; fi
	@echo "== installing into $(VENV) with $(PYTHON)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# This machine kind's pip config names local indexes that may be absent: drop that noise.
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 \
		| { grep -v '^WARNING: Location' || true; }
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	@$(BIN)/python bin/tidelog-run

test: $(STAMP)
	@echo "== ruff"
	@$(BIN)/ruff check .
	@echo "== mypy (every package, strict)"
	@$(BIN)/mypy
	@echo "== import boundaries"
	@$(BIN)/lint-imports
	@bash bin/ensure-test-tools
	@echo "== pytest"
	@eval "$$(bash bin/ensure-services)" && $(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@$(BIN)/python loadtest/bench_ingest.py
