PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test reproduce reproduce-quick

# A virtual environment with fd3d installed in editable mode (torch comes from the local wheel cache here).
$(VENV)/.installed: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[dev,deploy]"
	touch $@

setup: $(VENV)/.installed

# The main job on built-in synthetic data.
demo: setup
	$(PY) tools/demo.py --out work/demo

# The paper's Tables 2-3 on synthetic data (hours on a CPU; resumable), and its 10-minute version.
reproduce: setup
	$(PY) tools/reproduce.py --out work/reproduce

reproduce-quick: setup
	$(PY) tools/reproduce.py --quick --out work/reproduce_quick

# Lint, then the whole test suite.
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
