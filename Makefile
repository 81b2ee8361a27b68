# fpload — the two commands of the quickstart:
#   make demo   set up (.venv) and run `fpload demo` on synthetic fingerprints
#   make test   set up (.venv) and run the test suite
# PYTHON picks the interpreter (>= 3.11). The venv sees the system's packages, so a torch you
# already have is kept; with none, the CPU build torch==2.13.0 is installed. fpload is installed
# editable (pure Python, no CMake at install) and the operator plugin is built by `fpload ops build`
# into fpload/ops/_lib/, again whenever a file under csrc/ changes.
#
# `make clean-install` proves what a user gets from the wheel: `pip wheel .` (scikit-build-core
# builds the plugin into the wheel), a fresh venv WITHOUT system packages, the wheel plus the CPU
# torch, then `fpload --help`, `fpload doctor` and a small `fpload demo` from an empty folder.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.fpload-setup
PLUGIN := fpload/ops/_lib/libfpload_ops.so
CSRC   := $(shell find csrc -type f \( -name '*.h' -o -name '*.cc' -o -name '*.cu' -o -name '*.cuh' -o -name CMakeLists.txt \) -not -path 'csrc/tests/*')

.PHONY: setup demo test bench clean clean-install

setup: $(STAMP) $(PLUGIN)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv --system-site-packages $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then \
	  echo "keeping torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
	  echo "no torch found: installing the CPU build torch==2.13.0"; \
	  $(PIP) install -q torch==2.13.0; \
	fi
	$(PIP) install -q "scikit-build-core>=0.11,<2"
	$(PIP) install -q --no-build-isolation -Cwheel.cmake=false -e '.[test]'
	@touch $@

$(PLUGIN): $(CSRC) $(STAMP)
	$(VENV)/bin/fpload ops build

demo: setup
	$(VENV)/bin/fpload demo

test: setup
	$(PY) -m pytest -q

clean-install:
	bash .ci/clean-install

clean:
	rm -rf $(VENV) build dist fpload-demo bench-results .pytest_cache fpload/ops/_lib/*.so fpload/ops/_lib/*.json
