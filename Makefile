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

# LD_BIND_NOW: symbols resolved at load, not lazily inside a signal handler. The suite runs ~450 tests
# in one process; once torch's DataLoader has set its SIGCHLD handler, a child's exit ran Python's
# handler on a small alternate signal stack, where the lazy resolver's AVX-512 register save
# overflowed it (SIGSEGV, seen in gdb: _dl_runtime_resolve_xsavec <- trip_signal(17)).
test: install
	LD_BIND_NOW=1 $(PY) -m pytest -q tests
	$(VENV)/bin/ruff check litepose tests benchmarks

lint: install
	$(VENV)/bin/ruff check litepose tests benchmarks
