# wafertwin: two commands for a newcomer, `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-all bench lint nightly clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/twin run scenarios/hall.toml

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

# The nightly batch on ./nightly.db; `twin nightly` exits 3 when a watched KPI
# regressed (make then reports "Error 3"): a scheduler should call it directly.
nightly: $(STAMP)
	$(BIN)/twin nightly nightly.toml --db sqlite:///nightly.db

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check twin storage cli bench tests
	$(BIN)/mypy twin storage cli

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
