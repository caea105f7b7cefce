# Two commands: `make run` (serve on the embedded default, in development mode: a generated
# JWT secret) and `make test` (gates + suite).
# Both create the virtual environment on first use, from the pinned requirements.lock.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit install migrate bench clean

# The OpenID provider the integration tests run, pinned by its package-lock.json.
OIDC := tests/integrations/oidc

$(STAMP): pyproject.toml requirements.lock $(OIDC)/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	cd $(OIDC) && npm ci --no-audit --no-fund --silent
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/hubbub serve --dev

migrate: $(STAMP)
	$(BIN)/hubbub migrate

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench.fanout

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
