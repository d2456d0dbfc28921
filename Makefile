# longshort: two commands on a fresh machine.
#   make demo   create .venv, install longshort, train an LSTM on bundled real data
#   make test   install the test extras (torch 2.13.0 CPU as the oracle, pytest, ruff), run the suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_DIRS := $(wildcard src tests benchmarks examples scripts)

.PHONY: demo test lint clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/longshort demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/python -m pytest -q -n 2 tests

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_lstm.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
