# The verbs people expect. `make run` sets everything up on a fresh machine and starts the
# service with embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RENTAL_HOME ?= ./var
ROWS ?= 1000000
PORT ?= 8000
export RENTAL_HOME

.PHONY: install run test lint bench clean

$(BIN)/rental: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/rental

install: $(BIN)/rental

run: install
	@test -f $(RENTAL_HOME)/base/CURRENT || $(BIN)/rental base generate --rows $(ROWS) --seed 1
	$(BIN)/rental demo-accounts
	$(BIN)/rental serve --host 127.0.0.1 --port $(PORT)

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
