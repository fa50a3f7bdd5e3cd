# Sentinel's front door. `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/sentinel.toml
PYTEST_ARGS ?=
QUICK ?=

.PHONY: run test lint typecheck unit e2e bench system-deps clean hub-screenshots local-monitoring

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[hub]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,hub]'
	touch $@ $(VENV)/.installed-run

## run: set up and run the agent and a local hub (SQLite) over loopback on the shipped config;
## prints the hub's URL and a first login (Ctrl-C stops both; state in var/run-local)
run: $(VENV)/.installed-run
	PYTHON=$(BIN)/python bash scripts/run-local.sh

## local-monitoring: a real Prometheus and Alertmanager on loopback with the shipped rules,
## scraping the agent of `make run` (Ctrl-C stops them; state in var/local-monitoring)
local-monitoring:
	PYTHON=$(PYTHON) bash scripts/local-monitoring.sh

## system-deps: Debian packages the end-to-end tests use (when root with apt-get)
system-deps:
	@bash scripts/install-system-deps.sh

lint: $(VENV)/.installed-test
	$(BIN)/ruff check sentinel tests bench deploy
	$(BIN)/ruff format --check sentinel tests bench deploy

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

## test: set up and run lint, type checks and the whole test suite
test: $(VENV)/.installed-test system-deps lint typecheck
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

## hub-screenshots: retake the pictures of the hub's pages in docs/img (headless Chromium)
hub-screenshots: $(VENV)/.installed-test
	$(BIN)/python -m tests.hub.web.screenshots docs/img

## bench: side-by-side benchmarks against the real peers (not part of `make test`)
bench: $(VENV)/.installed-test
	@bash scripts/install-system-deps.sh bench
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
