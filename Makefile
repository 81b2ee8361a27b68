# fpload — the two commands of the quickstart:
#   make demo   set up (.venv) and run `fpload demo` on synthetic fingerprints
#   make test   set up (.venv) and run the test suite
# PYTHON picks the interpreter (>= 3.11). The venv sees the system's packages, so a torch you
# already have is kept; with none, the CPU build torch==2.13.0 is installed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.fpload-setup

.PHONY: setup demo test test-all bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv --system-site-packages $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then \
	  echo "keeping torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
	  echo "no torch found: installing the CPU build torch==2.13.0"; \
	  $(PIP) install -q torch==2.13.0; \
	fi
	$(PIP) install -q -e '.[test]'
	@if $(PY) -c "import fpload.ops._build" 2>/dev/null; then $(VENV)/bin/fpload ops build; fi
	@touch $@

demo: setup
	$(VENV)/bin/fpload demo

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ''

clean:
	rm -rf $(VENV) build fpload-demo bench-results .pytest_cache
