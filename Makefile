# `make demo` and `make test` work on a fresh machine: they create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Arguments go through to `firebreak demo`: make demo ARGS="--no-browser --port 8500"
ARGS ?=

demo: $(STAMP)
	$(BIN)/firebreak demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check bot handlers tests bench

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider
