# target-pardot: development tasks. Run from the repository root (Meltano finds meltano.yml in
# the working directory). Needs only python3 (3.10+), pip and make; the rest is installed here.
#
#   make test    lint, install the Meltano plugins, run the test suite (what CI runs)
#   make demo    the Meltano pipeline tap-jsonl -> target-pardot against the local emulator
#   make data    regenerate demo/data/*.jsonl and demo/seed-prospects.jsonl
#   make clean   remove Meltano's plugin installs and state (.meltano) and demo/out

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
MELTANO := $(BIN)/meltano

# No telemetry from any meltano call made here (meltano.yml says so too).
export MELTANO_SEND_ANONYMOUS_USAGE_STATS := false

.DEFAULT_GOAL := help

.PHONY: help venv test lint meltano-install pytest demo data clean

help:
	@echo "make test | make demo | make data | make clean   (VENV=$(VENV))"

# The virtualenv, with the project installed editable with its dev extras (pytest, ruff,
# meltano). Rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

# In this order, also under `make -j`.
test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/make_sample_data.py --check
	$(MELTANO) install
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/make_sample_data.py --check

# Installs tap-jsonl and target-pardot into .meltano/ for the Meltano pipeline test; quick
# when they are already installed.
meltano-install: $(VENV)/.installed
	$(MELTANO) install

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

data: $(VENV)/.installed
	$(BIN)/python scripts/make_sample_data.py

clean:
	rm -rf .meltano demo/out
