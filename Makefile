# Quick start: `make demo` (install + the main job) and `make test` (install + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip -q
	$(PY) -m pip install -q torch==2.13.0

install: $(PY)
	$(PY) -m pip install -q -e ".[dev]"

demo: install
	$(VENV)/bin/litepose demo --output runs/demo

test: install
	$(PY) -m pytest -q --durations=20 tests
	$(VENV)/bin/ruff check litepose tests benchmarks

lint: install
	$(VENV)/bin/ruff check litepose tests benchmarks
