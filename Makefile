# toneflow: `make demo` runs the main job, `make test` runs the suite. Both set up .venv if missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to one release and installed first: on this project's machines `torch==2.13.0`
# resolves to a local CPU build; elsewhere it is PyPI's default build (CUDA on Linux x86_64).
# A looser spec would pull several GB of CUDA packages on a CPU-only machine.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean-data schemas browser

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/toneflow demo

# ruff (rules in pyproject.toml), mypy on every package, the layer contract (import-linter) and no
# import circles between modules (scripts/check_cycles.py).
PACKAGES := foundation schemas teacher warehouse editor streams trainer serving console toneflow
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy $(PACKAGES)
	$(VENV)/bin/lint-imports
	$(PY) scripts/check_cycles.py

test: $(STAMP) browser
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

# The console's browser test drives Debian's chromium (Playwright cannot download browsers here).
# Installed when this machine can (root with apt-get); otherwise that one test skips.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } ; } || \
		echo "chromium not installed: tests/test_console.py's browser test will skip"

schemas: $(STAMP)
	$(VENV)/bin/toneflow schemas generate

clean-data:
	-$(VENV)/bin/toneflow broker stop
	rm -rf data
