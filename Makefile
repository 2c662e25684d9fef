# Two commands a new user needs: `make dev` and `make test`. Everything else is optional.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint typecheck unit bench bench-quick db-reset clean fuzz install

# Install once; reinstall only when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/fnkit dev

lint: $(STAMP)
	$(BIN)/ruff check shared functions fnkit tests
	$(BIN)/ruff format --check shared functions fnkit

typecheck: $(STAMP)
	$(BIN)/mypy shared fnkit
	@for f in functions/*/main.py; do $(BIN)/mypy --scripts-are-modules "$$f" || exit 1; done

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# The long, randomized property-based fuzz of every function (about 22 minutes on 2 cores);
# `make test` runs a bounded, deterministic one (25 examples per operation and mode).
fuzz: $(STAMP)
	FNKIT_FUZZ_EXAMPLES=$${FNKIT_FUZZ_EXAMPLES:-500} $(BIN)/pytest tests/test_hostile_fuzz.py -q

bench: $(STAMP)
	$(BIN)/fnkit bench

bench-quick: $(STAMP)
	$(BIN)/fnkit bench --quick

db-reset: $(STAMP)
	$(BIN)/fnkit db reset

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .fnkit
