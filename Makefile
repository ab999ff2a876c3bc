# learnloop: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "learnloop needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[all]'
	@touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.all

demo: $(VENV)/.all
	$(BIN)/learnloop demo

lint: $(VENV)/.dev
	$(BIN)/ruff check core connectors webapp tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

CHROMIUM ?= $(shell command -v chromium || echo /usr/bin/chromium)

test: lint
	@test -x "$(CHROMIUM)" || echo "NOTE: Debian's chromium is not installed (sudo apt-get install chromium): the browser tests in tests/browser will be SKIPPED."
	$(BIN)/pytest -n 2 -q

bench: $(VENV)/.dev
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
