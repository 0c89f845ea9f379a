# Two fresh-machine entry points (see README): `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint typecheck check clean

$(BIN)/eduflow: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

install: $(BIN)/eduflow  ## create .venv and install from the lock file

# `make run PORT=8001`: another port (the EDUFLOW_PORT setting; unset: 8000 or .env's).
PORT ?=

run: install  ## run the API on the embedded default (SQLite, no Redis)
	$(if $(PORT),EDUFLOW_PORT=$(PORT) )$(BIN)/eduflow serve

test: install  ## run the test suite against local PostgreSQL + Redis
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy eduflow

check: lint typecheck test

clean:
	rm -rf $(VENV) *.egg-info build dist
