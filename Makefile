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

.PHONY: run test install lint bench services help up down logs shell migrate createsuperuser

# Docker: the seed's commands. `make up` runs docker-compose.yml; `make up ENV=prod` adds
# docker-compose.prod.yml over it (TLS, rate limits, tuned PostgreSQL, replicas): docs/deploy.md.
ENV ?= dev
COMPOSE_FILES := -f docker-compose.yml $(if $(filter prod,$(ENV)),-f docker-compose.prod.yml)
COMPOSE ?= docker compose $(COMPOSE_FILES)
SERVICE ?=

help:
	@echo "make run    start Tidelog (command API :8000, query API :8001, workers, projections)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make bench  run loadtest/bench_ingest.py against a fresh private stack"
	@echo "docker (ENV=prod adds docker-compose.prod.yml):"
	@echo "make up | down | logs [SERVICE=…] | shell [SERVICE=…] | migrate | createsuperuser"

up:
	$(COMPOSE) up -d --build --wait

down:
	$(COMPOSE) down

logs:
	$(COMPOSE) logs -f --tail=200 $(SERVICE)

shell:
	$(COMPOSE) exec $(or $(SERVICE),query-api) python manage.py shell

migrate:
	$(COMPOSE) run --rm migrate

createsuperuser:
	$(COMPOSE) exec query-api python manage.py createsuperuser

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
