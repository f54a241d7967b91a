# Quick start: `make run` (routes a sample prompt on rules/default.yaml) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROMPT ?= The three primary colours are
CONFIG ?= rules/default.yaml

.PHONY: install run serve test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama-cpp-python builds from source once (~10 min); pip keeps the wheel in its cache.
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/router run $(CONFIG) "$(PROMPT)" --explain

serve: $(STAMP)
	$(BIN)/router serve $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check router tests bench examples
	$(BIN)/ruff format --check router tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/decision.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
