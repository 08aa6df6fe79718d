# The register. `make run` serves it with demo data on SQLite; `make test` checks the layers and runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install run test migrate openapi lock messages clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)

# clients/register_verifier is installed from its path, never an index: the register imports its Merkle tree and
# signed notes from it (pyproject.toml [tool.importlinter] "verifier-core"), so a look-alike package must not stand in.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' -e clients/register_verifier -e 'clients/register_client[cli,keys]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

PORT ?= 8000

run: install
	$(BIN)/register demo --port $(PORT)

migrate: install
	$(BIN)/register db upgrade

# The layering contracts first (pyproject.toml [tool.importlinter], docs/ARCHITECTURE.md), then every test, in one
# process a core (pytest-xdist; TEST_PROCESSES=1 for one). Each process has its own databases (tests/conftest.py).
TEST_PROCESSES ?= $(shell nproc 2>/dev/null || echo 2)

test: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n $(TEST_PROCESSES)

# The OpenAPI document as checked in (tests/api/test_openapi.py fails when it drifts from the code).
openapi: install
	$(BIN)/register openapi --output openapi.json

# requirements.lock: exact versions of the runtime dependencies, for the Docker image.
lock: install
	$(BIN)/python scripts/lock.py --output requirements.lock

# The person's pages: bring every language's catalogue in step with the templates (then translate what is new;
# tests/web/test_i18n.py fails until every message is translated).
messages: install
	$(BIN)/python -m register.web.messages

clean:
	rm -rf $(VENV) .register .pytest_cache .hypothesis
