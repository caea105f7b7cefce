# Two commands: `make run` (serve on the embedded default, in development mode: a generated
# JWT secret) and `make test` (gates + suite).
# Both create the virtual environment on first use, from the pinned requirements.lock.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit install migrate bench bench-smoke clean contract

# The OpenID provider the integration tests run, pinned by its package-lock.json.
OIDC := tests/integrations/oidc
# The JavaScript SDK, whose tests (run by tests/e2e/test_js_sdk.py) need its devDependencies.
JS_SDK := clients/js
# The AsyncAPI parser that checks docs/contract/asyncapi.json (tests/contract_docs).
ASYNCAPI := tools/asyncapi

$(STAMP): pyproject.toml requirements.lock $(OIDC)/package-lock.json $(JS_SDK)/package-lock.json \
		$(ASYNCAPI)/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c requirements.lock -e '.[dev]'
	cd $(OIDC) && npm ci --no-audit --no-fund --silent
	cd $(JS_SDK) && npm ci --no-audit --no-fund --silent
	cd $(ASYNCAPI) && npm ci --no-audit --no-fund --silent
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

# Regenerate docs/contract/ from the types (tests/contract_docs fails while they differ).
contract: $(STAMP)
	$(BIN)/python -m hubbub.contract

bench: $(STAMP)
	$(BIN)/python -m bench.fanout

# CI's benchmark smoke: one short run of ../shared/bench, hubbub's ratio to Node `ws`.
bench-smoke: $(STAMP)
	$(BIN)/python -m bench.smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
