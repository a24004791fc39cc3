# BWC Evidence: `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
# pipefail: a failing pip or pytest must fail its recipe even when piped through a filter.
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint venv clean

venv: $(STAMP)

# Reinstall only when the pinned requirements or the package metadata change.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 \
		| { grep -v 'is ignored: it is neither a file nor a directory' || true; }
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 \
		| { grep -v 'is ignored: it is neither a file nor a directory' || true; }
	@touch $(STAMP)

run: venv
	$(BIN)/bwc init
	$(BIN)/bwc demo
	exec bash scripts/run-with-demo-footage.sh

test: venv
	bash scripts/provision-test-services.sh
	set -a && . ./.test-env && set +a && $(BIN)/pytest
	$(MAKE) --no-print-directory lint

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Keeps var/ (local data from `make run`).
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info .test-env
	find . -path ./var -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
