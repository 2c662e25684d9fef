# Two commands a new user needs: `make dev` and `make test`. Everything else is optional.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOCK := requirements.lock
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
	--python-version 3.11 --quiet -o $(LOCK)

.PHONY: dev test test-browser lint typecheck unit suite bench bench-quick db-reset clean fuzz install \
	lock lock-upgrade parity parity-supabase supabase-cli clients-ts api-check

# Install once, from the lock (pip checks every hash); reinstall when the lock or
# pyproject.toml changes. The project itself goes in editable, without dependencies.
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Rewrite the lock after a change to pyproject.toml (keeps every pin that still fits) ...
lock: $(STAMP)
	$(UV_COMPILE)

# ... or move every pin to the newest release pyproject.toml allows.
lock-upgrade: $(STAMP)
	$(UV_COMPILE) --upgrade

dev: $(STAMP)
	$(BIN)/fnkit dev

lint: $(STAMP)
	$(BIN)/ruff check shared functions fnkit tests
	$(BIN)/ruff format --check shared functions fnkit

typecheck: $(STAMP)
	$(BIN)/mypy shared fnkit
	@for f in functions/*/main.py; do $(BIN)/mypy --scripts-are-modules "$$f" || exit 1; done

# The pure modules' tests: seconds, no services.
unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

# The Supabase CLI from the npm registry, at the version and hashes tools/supabase-cli locks; the
# suite runs it on supabase/ (tests/test_supabase_cli.py).
SUPABASE_CLI := tools/supabase-cli/node_modules/.bin/supabase
$(SUPABASE_CLI): tools/supabase-cli/package-lock.json
	npm ci --prefix tools/supabase-cli --no-audit --no-fund --loglevel=error
	@touch $(SUPABASE_CLI)

supabase-cli: $(SUPABASE_CLI)

# openapi-typescript, openapi-fetch, TypeScript (and supabase-js for the typed invoke example) at
# the versions tools/clients-ts locks: `fnkit client typescript` and tests/test_clients.py use them.
CLIENTS_TS := tools/clients-ts/node_modules/.bin/openapi-typescript
$(CLIENTS_TS): tools/clients-ts/package-lock.json
	npm ci --prefix tools/clients-ts --no-audit --no-fund --loglevel=error
	@touch $(CLIENTS_TS)

clients-ts: $(CLIENTS_TS)

# The API documents against the released ones (api/released/): fails listing breaking changes.
api-check: $(STAMP)
	$(BIN)/fnkit api check

# Everything but the browser: the unit tests and the integration suite (real Postgres, Redis, HTTP).
suite: $(STAMP) $(SUPABASE_CLI) $(CLIENTS_TS)
	$(BIN)/pytest --ignore=tests/browser

test: lint typecheck suite

# Tests that drive a real browser (Debian's chromium; `.ci/run` installs it and runs this too).
test-browser: $(STAMP)
	$(BIN)/pytest tests/browser

# The long, randomized property-based fuzz of every function (about 22 minutes on 2 cores);
# `make test` runs a bounded, deterministic one (25 examples per operation and mode).
fuzz: $(STAMP)
	FNKIT_FUZZ_EXAMPLES=$${FNKIT_FUZZ_EXAMPLES:-500} $(BIN)/pytest tests/test_hostile_fuzz.py -q

# upstash-redis's own test suite against the Upstash bridge (Redis DB 3, flushed). Its sdist
# ships no tests: name a checkout (CLIENT_TESTS=dir) or a git mirror (CLIENT_MIRROR=gitdir,
# CLIENT_REF=tag) of upstash/redis-py; CLIENT=installed runs the locked client instead of the
# release the tests were written for. See docs/deploy.md, "Local stand-ins".
parity: $(STAMP)
	$(BIN)/python -m fnkit.local.upstash.parity $(if $(CLIENT_TESTS),--tests $(CLIENT_TESTS)) \
		$(if $(CLIENT_MIRROR),--mirror $(CLIENT_MIRROR)) $(if $(CLIENT_REF),--ref $(CLIENT_REF)) \
		$(if $(CLIENT),--client $(CLIENT))

# supabase-py's own Auth, Storage and Realtime suites against the local services (a throwaway
# database each; ports 9996-9999 for Auth's). Name a checkout (SUPABASE_PY=dir) or a git mirror
# (SUPABASE_PY_MIRROR=gitdir, SUPABASE_PY_REF=tag) of supabase/supabase-py. See docs/deploy.md.
parity-supabase: $(STAMP)
	$(BIN)/python -m fnkit.local.suites $(if $(SUPABASE_PY),--checkout $(SUPABASE_PY)) \
		$(if $(SUPABASE_PY_MIRROR),--mirror $(SUPABASE_PY_MIRROR)) \
		$(if $(SUPABASE_PY_REF),--ref $(SUPABASE_PY_REF))

bench: $(STAMP)
	$(BIN)/fnkit bench
	$(BIN)/python -m fnkit.local.realtime.bench

bench-quick: $(STAMP)
	$(BIN)/fnkit bench --quick

db-reset: $(STAMP)
	$(BIN)/fnkit db reset

# The embedded Postgres outlives `make dev`: stop it before deleting its data folder.
clean:
	-@test -x $(BIN)/fnkit && $(BIN)/fnkit db stop
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .fnkit tools/supabase-cli/node_modules \
		tools/clients-ts/node_modules
