PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test

# A virtual environment with fd3d installed in editable mode (torch comes from the local wheel cache here).
$(VENV)/.installed: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# The main job on built-in synthetic data.
demo: setup
	$(PY) tools/demo.py --out work/demo

# Lint, then the whole test suite.
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
